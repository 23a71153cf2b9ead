"""Bounded debate through the real server: `ensemble_vote` with `aggregation: debate` over stdio and
over streamable HTTP on loopback (both protocol eras), its members real provider clients against the fake
OpenAI-compatible server, one of them persuaded when shown the others' answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.servers import fake_provider_config, http_server, server_env, stdio_server, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECRET = "sk-chorus-test-debate-0123456789"
ASK = {"prompt": "Is 91 a prime number? Answer yes or no.", "aggregation": "debate", "extract": "yes_no"}


def _script(fake: FakeOpenAI) -> None:
    def gamma(request: RecordedRequest) -> str:
        system = next((str(m.get("content")) for m in request.messages if m.get("role") == "system"), "")
        return "No: I see now that 91 = 7 x 13." if "Your previous answer:" in system else "Yes, 91 is prime."

    fake.script("alpha", "No: 91 = 7 x 13.")
    fake.script("beta", "No.")
    fake.script("gamma", gamma)


def _check(result: Any) -> None:
    data: dict[str, Any] = result.structured_content or {}
    assert not result.is_error, result.content
    assert data["answer"] == "no"
    debate = next(d for d in data["decisions"] if d["kind"] == "debate")
    assert debate["stopped"] == "every member agrees after round 1" and debate["changed"] == ["member-3"]
    vote = next(d for d in data["decisions"] if d["kind"] == "vote")
    assert vote["after_debate"] == 1 and vote["consensus"] is False
    stages = {c["stage"] for c in data["calls"]}
    assert {"ensemble/debate-1-1", "ensemble/debate-1-2", "ensemble/debate-1-3"} <= stages
    text = result.content[0].text
    assert "3 of 3 members agree after 1 round of debate (not independent)" in text
    assert "member-3 (gamma) changed yes → no" in text
    assert SECRET not in text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_debate_over_streamable_http_reports_who_changed_and_that_agreement_is_not_independent(
    fake_openai: FakeOpenAI, tmp_path: Path, mode: str
) -> None:
    _script(fake_openai)
    config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake_openai, deadline_s=120))

    with http_server(tmp_path, server_env(SECRET), config=config, never_logged=SECRET) as served:
        async with Client(served.url, mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool("ensemble_vote", ASK)

    _check(result)


async def test_a_debate_over_stdio_gives_the_same_result(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    _script(fake_openai)
    config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake_openai, deadline_s=120))

    async with Client(stdio_server(config, server_env(SECRET))) as client:
        result = await client.call_tool("ensemble_vote", ASK)

    _check(result)
