"""Every tool through a real MCP client session (in-process), in both protocol eras."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.errors import ModelTimeout, ProviderServerError
from chorus_mcp.strategies.models.catalog import map_version_text
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    KEY_ENV,
    fake_provider_config,
    http_server,
    server_env,
    stdio_server,
    write_config,
)

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]


def _factory(*clients: ScriptedClient) -> Any:
    by_name = {c.name: c for c in clients}
    return lambda alias, _entry: by_name[alias]


def _text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def _cascade_reply(answer: str, confidence: int) -> str:
    return f"{answer}\nConfidence: {confidence}%"


@pytest.fixture
def clients() -> dict[str, ScriptedClient]:
    return {
        "cheap": ScriptedClient("cheap", "The answer is (B)."),
        "mid": ScriptedClient("mid", "B"),
        "strong": ScriptedClient("strong", "The answer is C.", delay_s=0.3),
        "coder": ScriptedClient("coder", "def f(): pass"),
        "broken": ScriptedClient("broken", ProviderServerError("broken", "HTTP 500", 500)),
    }


@pytest.mark.parametrize("mode", MODES)
async def test_tools_list_every_tool_with_an_output_schema(server_config: ChorusConfig, mode: str) -> None:
    server = build_server(server_config, _factory())
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {
        "ensemble_vote",
        "cascade_ask",
        "route_specialist",
        "run_pipeline",
        "list_models",
        "list_strategies",
    } <= set(tools)
    for name in ("ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"):
        schema = tools[name].output_schema
        assert schema is not None and "calls" in schema["properties"] and "decisions" in schema["properties"]


@pytest.mark.parametrize("mode", MODES)
async def test_ensemble_vote_returns_the_majority_with_every_vote(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient], mode: str
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool("ensemble_vote", {"prompt": "Which? A) x B) y C) z"})
    assert not result.is_error
    data = result.structured_content
    assert data is not None
    assert data["answer"] == "B" and data["ok"] is True
    vote = next(d for d in data["decisions"] if d["kind"] == "vote")
    # Two of three agreeing decides the vote: the third member is cancelled, its cost never incurred.
    assert vote["counts"] == {"B": 2} and vote["consensus"] is True and vote["early_stop"] is True
    assert {(c["model"], c["status"]) for c in data["calls"]} == {
        ("cheap", "ok"),
        ("mid", "ok"),
        ("strong", "cancelled"),
    }
    assert data["session_id"]
    assert _text(result).startswith("B")


async def test_ensemble_vote_with_inline_models_overrides_the_strategy(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        result = await client.call_tool(
            "ensemble_vote",
            {"prompt": "Which? A) x B) y C) z", "models": ["strong", "coder"], "extract": "text"},
        )
    assert result.structured_content is not None
    assert {c["model"] for c in result.structured_content["calls"]} == {"strong", "coder"}


async def test_an_unknown_model_is_a_clear_error_naming_it_and_the_known_ones(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "q", "models": ["cheap", "gpt-17"]})
    assert result.is_error
    assert "unknown model 'gpt-17'" in _text(result) and "cheap" in _text(result)
    assert clients["cheap"].requests == []  # nothing was spent on a call that could not be made as asked


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"prompt": "q", "quorum": 0}, "quorum"),
        ({"prompt": "q", "aggregation": "loudest"}, "aggregation"),
        ({"prompt": 42}, "prompt"),
        ({}, "prompt"),
    ],
)
async def test_invalid_arguments_come_back_as_an_error_naming_the_field(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient], arguments: dict[str, Any], field: str
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", arguments)
    assert result.is_error and field in _text(result)


async def test_a_strategy_of_the_wrong_kind_is_rejected_with_its_kind(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "q", "strategy": "cascade"})
    assert result.is_error and "'cascade' is a cascade strategy" in _text(result)


async def test_when_no_model_answers_the_result_is_an_error_naming_each_model_and_reason(
    server_config: ChorusConfig,
) -> None:
    failing = [
        ScriptedClient("cheap", ProviderServerError("cheap", "HTTP 503 from provider", 503)),
        ScriptedClient("mid", ModelTimeout("mid", "no answer within 1.0s")),
        ScriptedClient("strong", ProviderServerError("strong", "HTTP 500 from provider", 500)),
    ]
    server = build_server(server_config, _factory(*failing))
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "q"})
    assert result.is_error
    text = _text(result)
    for model, reason in [("cheap", "503"), ("mid", "no answer within"), ("strong", "500")]:
        assert model in text and reason in text


@pytest.mark.parametrize("mode", MODES)
async def test_cascade_ask_escalates_when_the_cheap_tier_is_unsure(
    server_config: ChorusConfig, mode: str
) -> None:
    cheap = ScriptedClient("cheap", _cascade_reply("Paris?", 40))
    strong = ScriptedClient("strong", _cascade_reply("Paris", 95))
    server = build_server(server_config, _factory(cheap, strong))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool("cascade_ask", {"prompt": "Capital of France?"})
    data = result.structured_content
    assert data is not None and not result.is_error
    assert data["answer"].strip() == "Paris"
    confidences = [d for d in data["decisions"] if d["kind"] == "confidence"]
    assert [d["escalate"] for d in confidences] == [True, False]


async def test_cascade_ask_stops_at_the_cheap_tier_when_it_is_confident(server_config: ChorusConfig) -> None:
    cheap = ScriptedClient("cheap", _cascade_reply("4", 99))
    strong = ScriptedClient("strong", _cascade_reply("4", 99))
    server = build_server(server_config, _factory(cheap, strong))
    async with Client(server) as client:
        result = await client.call_tool("cascade_ask", {"prompt": "2+2?"})
    assert result.structured_content is not None and result.structured_content["answer"].strip() == "4"
    assert strong.requests == []


@pytest.mark.parametrize("mode", MODES)
async def test_route_specialist_routes_by_rule_and_keeps_the_session_history(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient], mode: str
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        first = await client.call_tool("route_specialist", {"prompt": "Write python to add two numbers"})
        assert first.structured_content is not None
        session_id = first.structured_content["session_id"]
        route = next(d for d in first.structured_content["decisions"] if d["kind"] == "route")
        assert route["route"] == "code" and route["method"] == "rule"

        second = await client.call_tool(
            "route_specialist", {"prompt": "Now in python, subtract", "session_id": session_id}
        )
    assert not second.is_error
    sent = clients["coder"].requests[-1].messages
    assert [m.content for m in sent][-3:] == [
        "Write python to add two numbers",
        "def f(): pass",
        "Now in python, subtract",
    ]


async def test_an_unknown_session_id_is_a_clear_error(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        unknown = await client.call_tool(
            "route_specialist", {"prompt": "hi", "session_id": "s_doesnotexist0000"}
        )
        malformed = await client.call_tool(
            "route_specialist", {"prompt": "hi", "session_id": "../../etc/passwd"}
        )
    assert unknown.is_error and "no session" in _text(unknown)
    assert malformed.is_error and "session" in _text(malformed)


@pytest.mark.parametrize("mode", MODES)
async def test_run_pipeline_refines_until_the_reviewer_approves(
    server_config: ChorusConfig, mode: str
) -> None:
    reviews = iter(['{"approved": false, "issues": ["no tests"]}', '{"approved": true, "issues": []}'])
    strong = ScriptedClient(
        "strong", lambda request: next(reviews) if "Review" in request.messages[-1].content else "1. do it"
    )
    coder = ScriptedClient("coder", ["v1 code", "v2 code with tests"])
    server = build_server(server_config, _factory(strong, coder))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool("run_pipeline", {"input": "add numbers"})
    data = result.structured_content
    assert data is not None and not result.is_error
    assert data["answer"] == "v2 code with tests"
    assert [d["approved"] for d in data["decisions"] if d["kind"] == "review"] == [False, True]


async def test_progress_is_reported_as_each_model_finishes(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(server, mode="legacy") as client:
        await client.call_tool(
            "ensemble_vote",
            # Three different answers: no early stop, so every member finishes and reports.
            {"prompt": "A) B) C)?", "models": ["cheap", "strong", "coder"], "extract": "text"},
            progress_callback=on_progress,
        )
    assert [p for p, _, _ in seen] == [1, 2, 3]
    assert all(total == 3 for _, total, _ in seen)


async def test_list_models_says_which_are_usable_and_why_not(
    server_config: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = server_config.model_copy(deep=True)
    config.models["cheap"] = config.models["cheap"].model_copy(
        update={"api_key_env": "CHORUS_TEST_MISSING_KEY"}
    )
    monkeypatch.delenv("CHORUS_TEST_MISSING_KEY", raising=False)
    server = build_server(config, _factory())
    async with Client(server) as client:
        result = await client.call_tool("list_models", {})
    assert result.structured_content is not None
    models = result.structured_content["models"]
    assert models["cheap"]["usable"] is False and "CHORUS_TEST_MISSING_KEY" in models["cheap"]["missing"]
    assert models["mid"]["usable"] is True


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
async def test_list_models_shows_each_models_facts_and_their_source_over_stdio(
    tmp_path: Path, mode: str
) -> None:
    with FakeOpenAI() as fake:
        settings = fake_provider_config(fake)
        settings["models"] |= {
            # A model litellm's map knows, served by the fake, with the config's output price.
            "mapped": {
                "model": "openai/gpt-4o-mini",
                "api_base": fake.base_url,
                "api_key_env": KEY_ENV,
                "output_cost_per_mtok": 2,
            },
            "embedded": {"model": "local/qwen2.5-coder-0.5b", "max_output_tokens": 256},
        }
        config = write_config(tmp_path / "chorus.yaml", settings)
        async with Client(stdio_server(config, server_env("sk-test")), mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool("list_models", {})
    assert result.structured_content is not None
    listed = result.structured_content
    assert listed["model_map"] == map_version_text()
    models = listed["models"]
    assert models["mapped"] | {"usable": None} == {
        "model": "openai/gpt-4o-mini",
        "usable": None,
        "source": "local server",
        "context_window": 128000,
        "max_output": 16384,
        "supports": ["vision", "tools"],
        "usd_per_mtok": {"in": 0.15, "out": 2.0},
        "facts_from": "model map; config: price",
    }
    assert models["alpha"]["facts_from"] == "config: price; unknown to the map"
    assert "context_window" not in models["alpha"] and "supports" not in models["alpha"]
    assert models["alpha"]["usd_per_mtok"] == {"in": 1.0, "out": 2.0}  # the test config prices it
    assert models["embedded"]["context_window"] == 4096
    assert models["embedded"]["supports"] == []
    assert models["embedded"]["facts_from"] == "embedded model; config: max_output"


@contextmanager
def _session(transport: str, config: Path, directory: Path) -> Iterator[Any]:
    """Where a real client connects: the server over stdio, or over streamable HTTP on loopback."""
    if transport == "http":
        with http_server(directory, server_env("sk-test"), config=config) as served:
            yield served.url
    else:
        yield stdio_server(config, server_env("sk-test"))


@pytest.mark.slow
@pytest.mark.parametrize(("transport", "mode"), [("stdio", "auto"), ("stdio", "legacy"), ("http", "auto")])
async def test_a_calls_reasoning_effort_reaches_the_models_that_take_one_over_real_transports(
    tmp_path: Path, transport: str, mode: str
) -> None:
    with FakeOpenAI() as fake:
        fake.script("o3-mini", "B", reasoning_tokens=50)
        fake.script("gpt-4.1-mini", "B")
        served = {"api_base": fake.base_url, "api_key_env": KEY_ENV}
        settings = fake_provider_config(fake)
        settings["models"] = {
            "thinker": {"model": "openai/o3-mini", "reasoning_effort": "low", **served},
            "plain": {"model": "openai/gpt-4.1-mini", **served},
        }
        settings["strategies"]["ensemble"] = {"kind": "ensemble", "members": ["thinker", "plain"]}
        settings["strategies"]["cascade"]["tiers"] = ["thinker"]
        settings["strategies"]["route"]["routes"][0]["target"] = "thinker"
        settings["strategies"]["pipeline"]["stages"][0]["step"] = "thinker"
        config = write_config(tmp_path / "chorus.yaml", settings)
        with _session(transport, config, tmp_path) as where:
            async with Client(where, mode=mode) as client:  # type: ignore[arg-type]
                voted = await client.call_tool(
                    "ensemble_vote", {"prompt": "A or B?", "reasoning_effort": "high", "detail": "full"}
                )
                by_alias = await client.call_tool("cascade_ask", {"prompt": "A or B?", "cache": False})
                listed = await client.call_tool("list_models", {})
                for tool, argument in (("route_specialist", "prompt"), ("run_pipeline", "input")):
                    routed = await client.call_tool(tool, {argument: "A or B?", "reasoning_effort": "medium"})
                    assert routed.structured_content is not None
                    assert routed.structured_content["calls"][0]["reasoning_effort"] == "medium", tool
        sent = [(r.model, r.body.get("reasoning_effort")) for r in fake.requests]
    assert sent[:2] in (
        [("o3-mini", "high"), ("gpt-4.1-mini", None)],
        [("gpt-4.1-mini", None), ("o3-mini", "high")],
    )
    assert sent[2:] == [("o3-mini", "low"), ("o3-mini", "medium"), ("o3-mini", "medium")]
    assert voted.structured_content is not None
    calls = {call["model"]: call for call in voted.structured_content["calls"]}
    assert calls["thinker"]["reasoning_effort"] == "high" and calls["thinker"]["reasoning_tokens"] == 50
    assert "reasoning_effort" not in calls["plain"]
    assert calls["plain"]["reasoning_note"] == (
        "reasoning effort high not sent: openai/gpt-4.1-mini takes none (by the model map)"
    )
    assert voted.structured_content["totals"]["reasoning_tokens"] == 50
    assert by_alias.structured_content is not None
    assert by_alias.structured_content["calls"][0]["reasoning_effort"] == "low"
    assert listed.structured_content is not None
    assert listed.structured_content["models"]["thinker"]["reasoning_effort"] == "low"


async def test_session_resources_are_listed_and_readable(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        first = await client.call_tool("route_specialist", {"prompt": "hello there"})
        assert first.structured_content is not None
        session_id = first.structured_content["session_id"]
        templates = await client.list_resource_templates()
        uris = {t.uri_template for t in templates.resource_templates}
        assert "session://{session_id}{?before,limit}" in uris
        content = await client.read_resource(f"session://{session_id}")
        recent = await client.read_resource("session://recent")
    text = content.contents[0].text  # type: ignore[union-attr]
    assert "hello there" in text
    assert session_id in recent.contents[0].text  # type: ignore[union-attr]
