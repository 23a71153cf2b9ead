"""The client's MCP roots as allowed roots for `files`, through real MCP sessions in both protocol eras:
asked mid-call in the handshake era (`legacy`), and in an `InputRequiredResult` round in 2026-07-28
(`auto`); the models are served over real HTTP by the fake OpenAI server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import (
    CallToolResult,
    CreateMessageRequestParams,
    CreateMessageResult,
    ErrorData,
    ListRootsResult,
    Root,
    TextContent,
)

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.client_roots import Carried, names_a_path
from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.servers import KEY_ENV, fake_models, http_server, server_env, stdio_server, write_config

pytestmark = pytest.mark.anyio

SECRET = "sk-roots-test-key-000111222333"
MODES = ["auto", "legacy"]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """`operator` (in inputs.roots), `client` (declared by the client), `elsewhere` (in no root)."""
    made = {}
    for name in ("operator", "client", "elsewhere"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "notes.md").write_text(f"The {name} code word is {name.upper()}-WORD.\n")
        made[name] = folder
    return made


class ClientRoots:
    """The MCP client's roots callback: lists `folders` (or answers `error`), counting its calls."""

    def __init__(self, *folders: Path, error: ErrorData | None = None) -> None:
        self.folders = folders
        self.error = error
        self.asked = 0

    async def __call__(self, context: ClientRequestContext) -> ListRootsResult | ErrorData:
        self.asked += 1
        if self.error is not None:
            return self.error
        return ListRootsResult(roots=[Root(uri=f.as_uri(), name=f.name) for f in self.folders])  # type: ignore[arg-type]


def config(fake: FakeOpenAI, *operator_roots: Path, **extra: Any) -> dict[str, Any]:
    return {
        "models": fake_models(fake),
        "defaults": {"deadline_s": 60},
        "inputs": {"roots": [str(r) for r in operator_roots]},
        **extra,
    }


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def user_text(request: RecordedRequest) -> str:
    content = [m for m in request.messages if m["role"] == "user"][-1]["content"]
    assert isinstance(content, str)
    return content


def ask(path: Path | dict[str, Any]) -> dict[str, Any]:
    item = str(path) if isinstance(path, Path) else path
    return {"prompt": "Code word?", "tiers": ["alpha"], "files": [item]}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
async def test_over_stdio_a_file_in_a_root_the_client_declares_is_read_and_one_outside_every_root_is_refused(
    fake_openai: FakeOpenAI, folders: dict[str, Path], tmp_path: Path, mode: str
) -> None:
    fake_openai.script("*", "CLIENT-WORD")
    path = write_config(tmp_path / "chorus.yaml", config(fake_openai, folders["operator"]))
    roots = ClientRoots(folders["client"])
    server = stdio_server(path, server_env(SECRET))
    async with Client(server, mode=mode, list_roots_callback=roots) as client:  # type: ignore[arg-type]
        inside = await client.call_tool("cascade_ask", ask(folders["client"] / "notes.md"))
        operator = await client.call_tool("cascade_ask", ask(folders["operator"] / "notes.md"))
        outside = await client.call_tool("cascade_ask", ask(folders["elsewhere"] / "notes.md"))
        inline = await client.call_tool(
            "cascade_ask", ask({"type": "resource", "resource": {"uri": "mem://a", "text": "inline words"}})
        )
    assert not inside.is_error, text_of(inside)
    assert not operator.is_error, text_of(operator)
    sent = [user_text(r) for r in fake_openai.requests_for("alpha")]
    assert "The client code word is CLIENT-WORD." in sent[0]
    assert "The operator code word is OPERATOR-WORD." in sent[1]
    assert outside.is_error
    refusal = text_of(outside)
    where = folders["elsewhere"] / "notes.md"
    # The refusal names the path and every allowed root, the operator's and the client's.
    assert f"files[0]: {str(where)!r} is outside the allowed roots" in refusal
    assert str(folders["operator"]) in refusal and str(folders["client"]) in refusal
    assert "ELSEWHERE-WORD" not in refusal
    assert len(fake_openai.requests_for("alpha")) == 3  # the refused call reached no model
    assert not inline.is_error, text_of(inline)
    # Asked once for each call that named a path; the inline content needed no root.
    assert roots.asked == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_the_roots_capability_gets_the_operators_roots_only(
    fake_openai: FakeOpenAI, folders: dict[str, Path], mode: str
) -> None:
    fake_openai.script("*", "ok")
    server = build_server(parse_config(json.dumps(config(fake_openai, folders["operator"]))))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        allowed = await client.call_tool("cascade_ask", ask(folders["operator"] / "notes.md"))
        refused = await client.call_tool("cascade_ask", ask(folders["client"] / "notes.md"))
    assert not allowed.is_error, text_of(allowed)
    assert refused.is_error
    where = folders["client"] / "notes.md"
    assert text_of(refused).endswith(
        f"files[0]: {str(where)!r} is outside the allowed roots ({folders['operator']})"
    ), text_of(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_with_client_roots_off_the_client_is_not_asked(
    fake_openai: FakeOpenAI, folders: dict[str, Path], mode: str
) -> None:
    cfg = config(fake_openai, folders["operator"])
    cfg["inputs"]["client_roots"] = False
    roots = ClientRoots(folders["client"])
    server = build_server(parse_config(json.dumps(cfg)))
    async with Client(server, mode=mode, list_roots_callback=roots) as client:  # type: ignore[arg-type]
        refused = await client.call_tool("cascade_ask", ask(folders["client"] / "notes.md"))
    assert refused.is_error
    assert "is outside the allowed roots" in text_of(refused)
    assert roots.asked == 0


async def test_a_handshake_era_client_that_cannot_list_its_roots_adds_none(
    fake_openai: FakeOpenAI, folders: dict[str, Path]
) -> None:
    fake_openai.script("*", "ok")
    roots = ClientRoots(error=ErrorData(code=-32603, message="no roots today"))
    server = build_server(parse_config(json.dumps(config(fake_openai, folders["operator"]))))
    async with Client(server, mode="legacy", list_roots_callback=roots) as client:
        allowed = await client.call_tool("cascade_ask", ask(folders["operator"] / "notes.md"))
        refused = await client.call_tool("cascade_ask", ask(folders["client"] / "notes.md"))
    assert roots.asked == 2
    assert not allowed.is_error, text_of(allowed)
    assert refused.is_error
    assert f"is outside the allowed roots ({folders['operator']})" in text_of(refused)


class ClientModel:
    """The MCP client's sampling callback: answers `reply`, remembering the prompts it was sent."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    async def __call__(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult:
        content = params.messages[-1].content
        assert isinstance(content, TextContent)
        self.prompts.append(content.text)
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text=self.reply), model="client-llm"
        )


@pytest.mark.parametrize("mode", MODES)
async def test_a_run_that_also_asks_the_clients_model_asks_for_the_roots_once_and_both_see_the_file(
    fake_openai: FakeOpenAI, folders: dict[str, Path], mode: str
) -> None:
    fake_openai.script("*", "CLIENT-WORD")
    models = fake_models(fake_openai)
    models["me"] = {"model": "mcp/sampling"}
    cfg = {
        "models": models,
        "strategies": {"both": {"kind": "ensemble", "members": ["alpha", "me"], "early_stop": False}},
        "defaults": {"deadline_s": 60},
    }
    roots, model = ClientRoots(folders["client"]), ClientModel("CLIENT-WORD")
    server = build_server(parse_config(json.dumps(cfg)))
    async with Client(server, mode=mode, list_roots_callback=roots, sampling_callback=model) as client:  # type: ignore[arg-type]
        result = await client.call_tool(
            "ensemble_vote",
            {"prompt": "Code word?", "strategy": "both", "files": [str(folders["client"] / "notes.md")]},
        )
    assert not result.is_error, text_of(result)
    assert roots.asked == 1
    (sampled,) = model.prompts
    assert "The client code word is CLIENT-WORD." in sampled
    (sent,) = fake_openai.requests_for("alpha")  # called once, its answer replayed in the later rounds
    assert "The client code word is CLIENT-WORD." in user_text(sent)
    statuses = {c["model"]: c["status"] for c in (result.structured_content or {})["calls"]}
    assert statuses == {"alpha": "ok", "me": "ok"}


@pytest.mark.slow
async def test_over_http_the_clients_roots_are_never_asked_in_either_era(
    fake_openai: FakeOpenAI, folders: dict[str, Path], tmp_path: Path
) -> None:
    path = write_config(tmp_path / "chorus.yaml", config(fake_openai))
    roots = ClientRoots(folders["client"])
    with http_server(tmp_path, server_env(SECRET), config=path, never_logged=SECRET) as served:
        for mode in MODES:
            async with Client(served.url, mode=mode, list_roots_callback=roots) as client:  # type: ignore[arg-type]
                refused = await client.call_tool("cascade_ask", ask(folders["client"] / "notes.md"))
            assert refused.is_error
            assert "over HTTP only the operator's inputs.roots are readable" in text_of(refused)
    assert roots.asked == 0
    assert fake_openai.requests_for("alpha") == []


def test_only_paths_and_resource_links_need_a_root() -> None:
    assert names_a_path(["/a"]) and names_a_path([{"type": "resource_link", "uri": "file:///a"}])
    assert not names_a_path([{"type": "image", "data": "x"}, {"type": "resource", "resource": {}}, 3])


def test_the_sampling_rounds_own_state_is_never_read_as_the_roots_state() -> None:
    sampling_state = json.dumps({"v": 1, "questions": [], "sdk": None, "memo": {}, "started": 1.0})
    with pytest.raises(ValueError):
        Carried.model_validate_json(sampling_state)
