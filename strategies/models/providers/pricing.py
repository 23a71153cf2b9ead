"""What a call cost: the entry's own price overrides, else litellm's bundled price map — read as JSON.

The price map is `model_prices_and_context_window_backup.json`, shipped inside the litellm package
(the same file litellm itself reads with `LITELLM_LOCAL_MODEL_COST_MAP=True`; `models.model_map` reads
it). Reading it with `json` takes ~0.1 s once; importing litellm to ask it takes 3-20 s. So neither
client path imports litellm to price a call, and both price every call with this one function: the fast
OpenAI-compatible path and the litellm path return the same `cost_usd` by construction.

Prices follow litellm's rules for what a chat completion reports (prompt and completion tokens):
the per-token rates, and an `*_above_<N>k_tokens` tier when the prompt is longer than N thousand
tokens (the tier's rate then applies to every token, as litellm and the providers bill it). A model id
is looked up as given (`openrouter/openai/gpt-4o-mini`, `gemini/gemini-2.5-pro`), then without its
provider prefix when that entry belongs to the same provider (`openai/gpt-4o-mini` → `gpt-4o-mini`).
Cached-token discounts, service tiers and off-peak prices are not applied: a result reports the list
price of the tokens the provider counted.

The same map says what a model can do; `supports_response_schema` reads it to decide whether a call may
carry a JSON-schema `response_format` (litellm decides the same way, from the same entry).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models import model_map
from chorus_mcp.strategies.models.catalog import ModelEntry, output_allowance

PRICE_MAP_FILE = model_map.MAP_FILE
_MILLION = Decimal(1_000_000)
_LOWERCASE_PER_TOKEN = 3
"""For the pre-call bound: words average ~4.5 letters a token; 3 lowercase letters a token errs high."""
_MESSAGE_OVERHEAD_TOKENS = 4
"""The role and separators each message adds (OpenAI's chat format adds 3-4), plus 3 for the reply's start."""
_LOWER = bytes(range(ord("a"), ord("z") + 1))
_ASCII = bytes(range(128))
_NON_ASCII = bytes(range(128, 256))
_SPACE_RUN = re.compile(rb"  +")


def price_map_path() -> Path | None:
    """Where litellm's bundled price map is, without importing litellm (None if litellm is not installed)."""
    return model_map.map_path()


def load_prices() -> dict[str, Any]:
    """The price map, read once (blocking, ~0.1 s); an empty map if it cannot be read."""
    return model_map.load_map()


def model_prices(model: str) -> dict[str, Any] | None:
    """The price-map entry for a litellm model id, or None when the map does not know the model."""
    return model_map.lookup(model)


def supports_response_schema(model: str) -> bool:
    """Whether the map says `model` answers to a JSON-schema `response_format` (structured output).

    False when the map does not know the model or does not say so: a provider that rejects a parameter
    it does not know would turn the call into a failure, so only a model known to take it is sent one."""
    info = model_prices(model)
    return info is not None and info.get("supports_response_schema") is True


def rates(model: str, prompt_tokens: int) -> tuple[Decimal, Decimal] | None:
    """USD per token (prompt, completion) for a prompt of this length; None when the map lacks either."""
    info = model_prices(model)
    if info is None:
        return None
    prompt_rate, completion_rate = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if not isinstance(prompt_rate, int | float) or not isinstance(completion_rate, int | float):
        return None
    for threshold, suffix in sorted(_tiers(info)):
        if prompt_tokens > threshold:
            prompt_rate = info.get(f"input_cost_per_token_above_{suffix}_tokens", prompt_rate)
            completion_rate = info.get(f"output_cost_per_token_above_{suffix}_tokens", completion_rate)
    # str() first: Decimal(1.5e-07) would carry the float's binary noise into every sum.
    return Decimal(str(prompt_rate)), Decimal(str(completion_rate))


def _tiers(info: dict[str, Any]) -> list[tuple[float, str]]:
    tiers = []
    for key in info:
        if key.startswith("input_cost_per_token_above_") and key.endswith("_tokens"):
            suffix = key.removeprefix("input_cost_per_token_above_").removesuffix("_tokens")
            number = suffix.removesuffix("k")
            if number.isdigit():
                tiers.append((float(number) * (1000 if suffix.endswith("k") else 1), suffix))
    return tiers


def cost_of(
    entry: ModelEntry,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    reasoning_tokens: int | None = None,
) -> Decimal | None:
    """USD cost of one call: the entry's price overrides, else the price map; None when either is unknown.

    Reasoning tokens are part of `completion_tokens` (every provider counts them there, and litellm adds
    Gemini's in): they cost the output rate, or the map's `output_cost_per_reasoning_token` where it has
    one and the entry sets no output price of its own."""
    if prompt_tokens is None or completion_tokens is None:
        return None
    cost = _cost(entry, prompt_tokens, completion_tokens)
    if cost is None or not reasoning_tokens or entry.output_cost_per_mtok is not None:
        return cost
    info, mapped = model_prices(entry.model), rates(entry.model, prompt_tokens)
    reasoning_rate = info.get("output_cost_per_reasoning_token") if info else None
    if mapped is None or not isinstance(reasoning_rate, int | float) or isinstance(reasoning_rate, bool):
        return cost
    return cost + min(reasoning_tokens, completion_tokens) * (Decimal(str(reasoning_rate)) - mapped[1])


def _cost(entry: ModelEntry, prompt_tokens: int, completion_tokens: int) -> Decimal | None:
    mapped = None
    if entry.input_cost_per_mtok is None or entry.output_cost_per_mtok is None:
        mapped = rates(entry.model, prompt_tokens)
        if mapped is None:
            return None
    prompt_cost = (
        prompt_tokens * entry.input_cost_per_mtok / _MILLION
        if entry.input_cost_per_mtok is not None
        else prompt_tokens * mapped[0]
        if mapped
        else None
    )
    completion_cost = (
        completion_tokens * entry.output_cost_per_mtok / _MILLION
        if entry.output_cost_per_mtok is not None
        else completion_tokens * mapped[1]
        if mapped
        else None
    )
    if prompt_cost is None or completion_cost is None:
        return None
    return prompt_cost + completion_cost


def prompt_token_bound(text: str) -> int:
    """An over-estimate of the tokens `text` costs as a prompt, from its characters alone (no tokenizer).

    What BPE tokenizers merge well is cheap, the rest costs a token each: 3 lowercase ASCII letters a
    token; every capital, digit, punctuation mark, tab and newline a token; a run of 2+ spaces 2 tokens
    and one more per 8; single spaces nothing (they join the next word); every UTF-8 byte of a non-ASCII
    character a token (a token is at least one byte). Against OpenAI's tokenizers (cl100k, o200k) this
    errs high for prose (~1.3-1.6x), code (~1.6-1.75x), JSON (~1.2x), numbers (~2x), base64 and random
    alphanumerics (~1.0-1.1x), CJK and emoji (1.4-4x); only a long run of random lowercase letters, which
    prompts are not made of, is under-counted (~0.6x). The old rule, a token per 3 characters, counted half
    the tokens of JSON and base64 and a quarter of Chinese. Counted on the UTF-8 bytes with C-speed
    `bytes` methods: ~2 ms for 200,000 characters."""
    raw = text.encode()
    non_ascii = len(raw.translate(None, _ASCII))
    ascii_only = raw.translate(None, _NON_ASCII) if non_ascii else raw
    lower = len(ascii_only) - len(ascii_only.translate(None, _LOWER))
    spaces = ascii_only.count(b" ")
    space_runs = sum(2 + len(run) // 8 for run in _SPACE_RUN.findall(ascii_only))
    # Everything else that is ASCII (capitals, digits, punctuation, tabs, newlines) is a token each.
    others = len(ascii_only) - lower - spaces
    return math.ceil(lower / _LOWERCASE_PER_TOKEN) + others + space_runs + non_ascii


def estimate_prompt_tokens(request: CompletionRequest) -> int:
    """An over-estimate of the prompt tokens `request` costs: its messages, their framing, and the JSON
    schema of a structured-output request (providers put it into the prompt)."""
    tokens = sum(prompt_token_bound(m.content) + _MESSAGE_OVERHEAD_TOKENS for m in request.messages) + 3
    tokens += sum(image.tokens for m in request.messages for image in m.images)
    if request.response_schema is not None:
        tokens += prompt_token_bound(json.dumps(request.response_schema))
    return tokens


def estimate_cost_usd(entry: ModelEntry, request: CompletionRequest) -> Decimal | None:
    """The most a call may cost before it is sent: its prompt tokens over-estimated
    (`estimate_prompt_tokens`), plus `max_tokens` (else the entry's `max_output_tokens` and the thinking
    budget of its reasoning effort, `catalog.output_allowance`) of output.
    None when the price is unknown."""
    output_tokens = request.max_tokens if request.max_tokens is not None else output_allowance(entry, request)
    return cost_of(entry, estimate_prompt_tokens(request), output_tokens)
