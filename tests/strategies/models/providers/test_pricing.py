"""The price map read as JSON agrees with litellm's own cost calculation; the pre-call estimate errs high."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.litellm_client import load_litellm
from chorus_mcp.strategies.models.providers.pricing import (
    cost_of,
    estimate_cost_usd,
    estimate_prompt_tokens,
    model_prices,
    prompt_token_bound,
)
from chorus_mcp.strategies.models.tokenizer import load_encoding
from tests.tokens import tokens as o200k_tokens

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("model", "prompt_tokens", "completion_tokens"),
    [
        ("openai/gpt-4o-mini", 1234, 56),
        ("openai/gpt-4.1", 10_000, 2_000),
        ("openai/gpt-5-mini", 300_000, 100),  # above a 272k tier
        ("gemini/gemini-2.5-pro", 10_000, 500),
        ("gemini/gemini-2.5-pro", 250_000, 500),  # above the 200k tier
        ("anthropic/claude-sonnet-4-5", 5_000, 700),
    ],
)
def test_costs_match_litellms_cost_per_token(model: str, prompt_tokens: int, completion_tokens: int) -> None:
    prompt, completion = load_litellm().cost_per_token(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )

    ours = cost_of(ModelEntry(model=model), prompt_tokens, completion_tokens)

    assert ours is not None
    assert float(ours) == pytest.approx(prompt + completion, rel=1e-9)


@pytest.mark.parametrize("model", ["openrouter/openai/gpt-4o-mini", "openai/house-model"])
def test_a_model_litellm_cannot_price_has_no_price_here_either(model: str) -> None:
    with pytest.raises(Exception, match="isn't mapped"):
        load_litellm().cost_per_token(model=model, prompt_tokens=10, completion_tokens=10)

    assert cost_of(ModelEntry(model=model), 10, 10) is None


def test_a_bare_name_is_found_only_under_its_own_provider() -> None:
    assert model_prices("openai/gpt-4o-mini") is not None
    assert model_prices("gpt-4o-mini") is not None
    assert model_prices("anthropic/gpt-4o-mini") is None
    assert model_prices("openai/no-such-model") is None


def test_overrides_win_and_unknown_usage_costs_unknown() -> None:
    entry = ModelEntry(
        model="openai/gpt-4o-mini", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(2)
    )

    assert cost_of(entry, 1_000_000, 1_000_000) == Decimal(3)
    assert cost_of(entry, None, 10) is None


def _texts() -> dict[str, str]:
    rng = random.Random(7)
    return {
        "prose": (REPO / "README.md").read_text()[:20_000],
        "code": (REPO / "strategies" / "engine" / "calling.py").read_text(),
        "yaml": (REPO / "config" / "default.yaml").read_text(),
        "compact-json": json.dumps([{"id": i, "tags": ["a", "b"], "ok": i % 2 == 0} for i in range(200)]),
        "base64": base64.b64encode(rng.randbytes(3000)).decode(),
        "hex": rng.randbytes(1500).hex(),
        "numbers": " ".join(str(rng.randint(0, 10**9)) for _ in range(300)),
        "punctuation": "".join(rng.choice("!@#$%^&*()[]{}<>?/|~`;:") for _ in range(2000)),
        "aligned-columns": "".join(
            f"{'x' * rng.randint(1, 3)}{' ' * rng.randint(2, 12)}" for _ in range(400)
        ),
        "chinese": "我们今天去公园散步，天气很好，然后一起吃午饭。" * 50,
        "emoji": "😀🎉🚀👍🏽" * 100,
        "german": "Übermäßige Größenänderungen führen zu Straßenschäden. " * 40,
    }


@pytest.mark.parametrize("kind", list(_texts()))
def test_the_prompt_bound_is_at_least_what_openais_tokenizers_count(kind: str) -> None:
    text = _texts()[kind]
    cl100k = load_encoding()
    assert cl100k is not None

    bound = prompt_token_bound(text)

    assert bound >= o200k_tokens(text) and bound >= len(cl100k.encode(text, disallowed_special=()))


def test_the_prompt_bound_is_not_wildly_high_for_prose_and_code() -> None:
    texts = _texts()
    for kind in ("prose", "code", "yaml"):
        assert prompt_token_bound(texts[kind]) <= 2 * o200k_tokens(texts[kind]), kind


def test_a_structured_output_schema_counts_as_prompt() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    }
    plain = CompletionRequest.of("Pick one.")
    with_schema = plain.model_copy(update={"response_schema": schema})

    assert estimate_prompt_tokens(with_schema) - estimate_prompt_tokens(plain) >= o200k_tokens(
        json.dumps(schema)
    )


def test_the_cost_estimate_prices_the_prompt_bound_and_max_tokens() -> None:
    entry = ModelEntry(model="openai/house", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(4))
    request = CompletionRequest.of("你好，世界" * 100, max_tokens=50)

    estimate = estimate_cost_usd(entry, request)

    prompt = estimate_prompt_tokens(request)
    assert prompt >= o200k_tokens("你好，世界" * 100)
    assert estimate == (prompt * Decimal(1) + 50 * Decimal(4)) / 1_000_000
