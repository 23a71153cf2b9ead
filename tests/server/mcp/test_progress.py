"""Progress that keeps a long call alive: heartbeats between model calls, saying what the call waits on,
through a real server process (stdio in both eras, streamable HTTP) and slow models of the fake provider.

Nothing here measures time: the models take far longer than the heartbeat interval, and the claims are
about which notifications arrive and in what order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from tests.fake_openai import FakeOpenAI
from tests.support.servers import fake_provider_config, http_server, server_env, stdio_server, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HEARTBEAT = re.compile(r"^\d+s: (waiting on .+|between model calls); (\d+) of 3 calls done$")
FINISHED = re.compile(r"^(alpha|beta|gamma) ok \(ensemble/member-\d\)")
SLOW_S = 2.5
"""How long each model takes: many heartbeat intervals."""


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[FakeOpenAI, Path]]:
    with FakeOpenAI() as fake:
        # Three different answers: no early stop, every member is waited for.
        fake.script("alpha", "A", latency_s=SLOW_S)
        fake.script("beta", "B", latency_s=SLOW_S)
        fake.script("gamma", "C", latency_s=SLOW_S)
        sections = {"defaults": {"deadline_s": 120, "progress_every_s": 0.2}}
        yield fake, write_config(tmp_path / "chorus.yaml", fake_provider_config(fake, **sections))


async def _notifications(client: Client) -> list[tuple[float, float | None, str]]:
    seen: list[tuple[float, float | None, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message or ""))

    arguments = {"prompt": "A) B) C)?", "extract": "text", "cache": False}
    result = await client.call_tool("ensemble_vote", arguments, progress_callback=on_progress)
    assert result.structured_content is not None  # a three-way tie is no answer, but the call completed
    return seen


def _check(seen: list[tuple[float, float | None, str]]) -> None:
    messages = [message for _, _, message in seen]
    finished = [i for i, message in enumerate(messages) if FINISHED.match(message)]
    assert len(finished) == 3, messages
    beats_before = [m for m in messages[: finished[0]] if HEARTBEAT.match(m)]
    assert len(beats_before) >= 2, messages  # the silence before the first answer was filled
    assert all(HEARTBEAT.match(m) or FINISHED.match(m) for m in messages), messages
    # Each heartbeat names every model still under way with its stage, and how many calls are done.
    first = beats_before[0]
    for alias, member in (("alpha", 1), ("beta", 2), ("gamma", 3)):
        assert f"{alias} (ensemble/member-{member})" in first, first
    assert first.endswith("; 0 of 3 calls done")
    # Values only grow, never past the total; each finished call is a whole number.
    values = [value for value, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert all(total is not None and value <= total for value, total, _ in seen)
    assert [values[i] for i in finished] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_heartbeats_fill_the_silence_of_slow_models_over_stdio_in_both_eras(
    slow: tuple[FakeOpenAI, Path], mode: str
) -> None:
    _, config = slow
    async with Client(stdio_server(config, server_env("sk-test")), mode=mode) as client:  # type: ignore[arg-type]
        _check(await _notifications(client))


async def test_heartbeats_arrive_over_streamable_http(slow: tuple[FakeOpenAI, Path], tmp_path: Path) -> None:
    _, config = slow
    with http_server(tmp_path, server_env("sk-test"), config=config) as served:
        async with Client(served.url) as client:
            _check(await _notifications(client))
