"""Peer ranking through the real server: `ensemble_vote` with `aggregation: ranking` over streamable HTTP
on loopback, its members real provider clients against the fake OpenAI-compatible server, each answering
and then ranking the others' answers shown without names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.servers import fake_provider_config, http_server, server_env, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECRET = "sk-chorus-test-ranking-0123456789"
ANSWERS = {"alpha": "Jupiter is the largest planet.", "beta": "Saturn is the largest.", "gamma": "Mars."}


def _member(name: str) -> Any:
    def reply(request: RecordedRequest) -> str:
        system = next((str(m.get("content")) for m in request.messages if m.get("role") == "system"), "")
        shown = dict(re.findall(r"Response ([A-Z]):\n(.*)", system))
        if not shown:
            return ANSWERS[name]
        best_first = sorted(
            shown, key=lambda x: [w in shown[x] for w in ("Jupiter", "Saturn", "Mars")].index(True)
        )
        return "FINAL RANKING:\n" + "\n".join(f"{n}. Response {x}" for n, x in enumerate(best_first, 1))

    return reply


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_peer_ranking_over_streamable_http_picks_the_answer_the_others_rank_first(
    fake_openai: FakeOpenAI, tmp_path: Path, mode: str
) -> None:
    for name in ANSWERS:
        fake_openai.script(name, _member(name))
    config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake_openai, deadline_s=120))

    with http_server(tmp_path, server_env(SECRET), config=config, never_logged=SECRET) as served:
        async with Client(served.url, mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool(
                "ensemble_vote",
                {"prompt": "Which planet is the largest?", "aggregation": "ranking", "extract": "text"},
            )

    data: dict[str, Any] = result.structured_content or {}
    assert not result.is_error, result.content
    assert data["answer"] == ANSWERS["alpha"]
    ranking = next(d for d in data["decisions"] if d["kind"] == "ranking")
    assert ranking["winner"] == "member-1" and ranking["counted"] == 3
    assert ranking["scores"] == {"member-1": 2, "member-2": 1, "member-3": 0}
    assert {c["stage"] for c in data["calls"]} >= {"ensemble/rank-1", "ensemble/rank-2", "ensemble/rank-3"}
    text = result.content[0].text  # type: ignore[union-attr]
    assert "ranking (Borda): member-1 (alpha) 2 | member-2 (beta) 1 | member-3 (gamma) 0; 3 of 3" in text
