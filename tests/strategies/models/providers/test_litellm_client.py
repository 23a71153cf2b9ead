"""What only the litellm path has: a lazy import, litellm's tokenizer for estimates, and its mapping of a
reasoning effort onto providers that are not OpenAI-shaped (over real HTTP to a loopback recorder)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chorus_mcp.strategies.core.completion import (
    THINKING_BUDGET_TOKENS,
    CompletionRequest,
    Message,
    ReasoningEffort,
)
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import LiteLLMClient, estimate_prompt_tokens

REPO = Path(__file__).resolve().parents[3]


def test_importing_the_provider_package_imports_neither_litellm_nor_the_price_map() -> None:
    code = (
        "import sys, chorus_mcp.strategies.models.providers, "
        "chorus_mcp.strategies.models.providers.pricing, chorus_mcp.strategies.models.model_map as m; "
        "print('litellm' in sys.modules, 'openai' in sys.modules, m._loaded is None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )

    assert result.stdout.split() == ["False", "False", "True"]


def test_prompt_tokens_are_estimated_offline_for_known_and_unknown_models() -> None:
    messages = [Message(role="system", content="be brief"), Message(role="user", content="hello world " * 50)]

    known = estimate_prompt_tokens(ModelEntry(model="openai/gpt-4o-mini"), messages)
    started = time.perf_counter()
    unknown = estimate_prompt_tokens(ModelEntry(model="openai/house-model"), messages)

    assert 100 <= known <= 130
    assert 100 <= unknown <= 130
    assert time.perf_counter() - started < 1


# -- reasoning effort, as litellm maps it per provider -----------------------------------------------

ANTHROPIC_ANSWER = {
    "id": "msg_fake",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "42"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 10, "output_tokens": 20},
}
GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "42"}]}, "finishReason": "STOP"}],
    "usageMetadata": {
        "promptTokenCount": 10,
        "candidatesTokenCount": 2,
        "thoughtsTokenCount": 100,
        "totalTokenCount": 112,
    },
}


@contextmanager
def _provider(answer: dict[str, object]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server answering every POST with `answer`, recording each body it was sent."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            content = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
@pytest.mark.parametrize(("effort", "budget"), [("low", 1024), ("medium", 2048), ("high", 4096)])
async def test_an_anthropic_model_gets_the_efforts_thinking_budget(
    effort: ReasoningEffort, budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_TEST_ANTHROPIC_KEY", "not-a-real-key-0123456789")
    with _provider(ANTHROPIC_ANSWER) as (url, bodies):
        entry = ModelEntry(
            model="anthropic/claude-sonnet-4-5", api_base=url, api_key_env="CHORUS_TEST_ANTHROPIC_KEY"
        )
        request = CompletionRequest.of("6 x 7?", max_tokens=budget + 500, reasoning_effort=effort)
        completion = await LiteLLMClient("claude", entry).complete(request)

    assert completion.text == "42"
    assert bodies[0]["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert budget == THINKING_BUDGET_TOKENS[effort]  # what the cap's reservation allows for


@pytest.mark.anyio
async def test_a_gemini_model_gets_the_efforts_thinking_budget_and_its_thoughts_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHORUS_TEST_GEMINI_KEY", "not-a-real-key-0123456789")
    with _provider(GEMINI_ANSWER) as (url, bodies):
        entry = ModelEntry(
            model="gemini/gemini-2.5-flash", api_base=url, api_key_env="CHORUS_TEST_GEMINI_KEY"
        )
        request = CompletionRequest.of("6 x 7?", reasoning_effort="high")
        completion = await LiteLLMClient("gemini", entry).complete(request)

    assert bodies[0]["generationConfig"]["thinkingConfig"]["thinkingBudget"] == THINKING_BUDGET_TOKENS["high"]
    assert (completion.completion_tokens, completion.reasoning_tokens) == (102, 100)
    # gemini-2.5-flash: $0.30 in, $2.50 out and per reasoning token, per million.
    assert completion.cost_usd == Decimal(10) * Decimal("3e-7") + Decimal(102) * Decimal("2.5e-6")
