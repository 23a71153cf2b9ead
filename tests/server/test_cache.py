"""The response cache end to end: the real server over streamable HTTP on loopback, real provider clients
against the fake OpenAI-compatible server, the default SQLite store (in this test's data directory), and
the `chorus-mcp cache` commands reading the same store afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import TextContent, TextResourceContents

from chorus_mcp.server.cli.main import main
from tests.fake_openai import FakeOpenAI
from tests.support.servers import KEY_ENV, http_server, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MEMBERS = ("alpha", "beta", "gamma")
KEY = "sk-cache-test-key-0123456789abcdef"


def _config(fake: FakeOpenAI, path: Path) -> Path:
    models = {
        alias: {
            "model": f"openai/{alias}",
            "api_base": fake.base_url,
            "api_key_env": KEY_ENV,
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "timeout_s": 30,
        }
        for alias in MEMBERS
    }
    ensemble = {"kind": "ensemble", "members": list(MEMBERS), "extract": "choice", "early_stop": False}
    config = {"models": models, "strategies": {"ensemble": ensemble}, "defaults": {"deadline_s": 90}}
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def served(fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    fake_openai.script("alpha", "The answer is B.")
    fake_openai.script("beta", "B")
    fake_openai.script("gamma", "C")
    config = _config(fake_openai, tmp_path / "chorus.yaml")
    with http_server(tmp_path, server_env(KEY), config=config, never_logged=KEY) as running:
        yield running.url, config


async def _cli(*argv: str) -> int:
    """`chorus-mcp ...` in a worker thread (the commands run their own event loop)."""
    return await anyio.to_thread.run_sync(main, list(argv))


async def _usage(client: Client) -> Any:
    contents = (await client.read_resource("usage://summary")).contents[0]
    assert isinstance(contents, TextResourceContents)
    return json.loads(contents.text)


async def test_a_repeated_ensemble_is_answered_from_the_cache_and_cache_false_goes_to_the_provider(
    fake_openai: FakeOpenAI, served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = served
    vote = {"prompt": "Pick one: A) x B) y C) z"}
    async with Client(url) as client:
        first = await client.call_tool("ensemble_vote", vote)
        sent_first = len(fake_openai.requests)
        second = await client.call_tool("ensemble_vote", vote)
        sent_second = len(fake_openai.requests)
        usage = await _usage(client)
        bypassed = await client.call_tool("ensemble_vote", {**vote, "cache": False})
        sent_bypassed = len(fake_openai.requests)

    one, two, three = (r.structured_content or {} for r in (first, second, bypassed))
    paid = Decimal(str(one["totals"]["cost_usd"]))
    assert sent_first == 3 and paid > 0 and "cached_calls" not in one["totals"]

    # The repeat: no request reached the provider, nothing was charged, the saving is reported.
    assert sent_second == 3
    assert two["answer"] == one["answer"] == "B"
    assert all(call["cached"] is True for call in two["calls"]) and len(two["calls"]) == 3
    assert Decimal(str(two["totals"]["cost_usd"])) == 0 and two["totals"]["calls"] == 0
    assert two["totals"]["cached_calls"] == 3 and Decimal(str(two["totals"]["saved_cost_usd"])) == paid
    text = second.content[0]
    assert isinstance(text, TextContent) and "3 cached" in text.text

    assert usage["totals"]["cache_hits"] == 3 and usage["totals"]["cache_misses"] == 3
    assert Decimal(str(usage["totals"]["saved_cost_usd"])) == paid
    assert usage["totals"]["calls"] == 3  # hits are not calls
    assert usage["models"]["alpha"]["cache_hits"] == 1

    # `cache: false` asks the provider again.
    assert sent_bypassed == 6 and not any(call.get("cached") for call in three["calls"])
    assert Decimal(str(three["totals"]["cost_usd"])) > 0

    # The CLI reads the same store (the default SQLite file in this test's data directory).
    capsys.readouterr()
    assert await _cli("cache", "stats", "--json", "--config", str(config)) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["totals"]["entries"] == 3 and stats["totals"]["hits"] == 3
    assert stats["totals"]["misses"] == 3 and stats["models"]["openai/alpha"]["entries"] == 1
    assert await _cli("cache", "clear", "--model", "alpha", "--config", str(config)) == 0
    assert await _cli("cache", "stats", "--json", "--config", str(config)) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["totals"]["entries"] == 2 and "openai/alpha" not in after["models"]
