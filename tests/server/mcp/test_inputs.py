"""Files and images attached to the orchestration tools, through a real MCP client, with the models served
over real HTTP by the fake OpenAI server (so what each model was sent is read from its request body)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.inputs import count_tokens
from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.servers import KEY_ENV, fake_models, http_server, server_env, stdio_server, write_config

SECRET = "sk-inputs-test-key-000111222333"
# A 1x1 PNG: real image bytes, known by their first bytes.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.md").write_text("The launch code word is PELICAN.\n")
    (tmp_path / "outside.txt").write_text("not yours\n")
    return folder


def config(fake: FakeOpenAI, root: Path, **inputs: Any) -> dict[str, Any]:
    models = fake_models(fake)
    models["alpha"]["vision"] = True  # the fake's ids are unknown to the model map: the config says
    models["beta"]["vision"] = False
    return {
        "models": models,
        "strategies": {
            "ensemble": {"kind": "ensemble", "members": ["alpha", "beta", "gamma"], "early_stop": False}
        },
        "defaults": {"deadline_s": 120},
        "inputs": {"roots": [str(root)], **inputs},
        "sessions": {"context": {"windows": {"alpha": 200_000, "gamma": 3000}}},
    }


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def user_content(request: RecordedRequest) -> Any:
    return [m for m in request.messages if m["role"] == "user"][-1]["content"]


async def run(cfg: dict[str, Any], tool: str, arguments: dict[str, Any]) -> CallToolResult:
    server = build_server(parse_config(json.dumps(cfg)))
    async with Client(server) as client:
        return await client.call_tool(tool, {"detail": "full", **arguments})


@pytest.mark.anyio
async def test_a_file_path_within_the_roots_is_sent_to_every_member_with_its_hash(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "PELICAN")
    path = root / "notes.md"
    result = await run(
        config(fake_openai, root), "ensemble_vote", {"prompt": "What is the code word?", "files": [str(path)]}
    )
    assert not result.is_error, text_of(result)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for alias in ("alpha", "beta", "gamma"):
        (sent,) = fake_openai.requests_for(alias)
        content = user_content(sent)
        assert isinstance(content, str)
        assert content.startswith("What is the code word?")
        assert f'<file name="{path}" sha256="{digest[:12]}">' in content
        assert "The launch code word is PELICAN." in content
    structured = result.structured_content or {}
    notes = [d.get("message", "") for d in structured["decisions"] if d.get("stage") == "inputs"]
    tokens = count_tokens(path.read_text())
    assert notes == [f"attached: {path} (text, {tokens:,} tokens, sha256 {digest[:12]})"]


@pytest.mark.anyio
async def test_an_image_goes_only_to_the_member_that_reads_images_and_the_others_are_skipped_saying_why(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "a red dot")
    image = {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    result = await run(
        config(fake_openai, root), "ensemble_vote", {"prompt": "What is this?", "files": [image]}
    )
    assert not result.is_error, text_of(result)
    (sent,) = fake_openai.requests_for("alpha")
    assert user_content(sent) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
    ]
    assert fake_openai.requests_for("beta") == [] and fake_openai.requests_for("gamma") == []
    calls = {c["model"]: c for c in (result.structured_content or {})["calls"]}
    assert calls["alpha"]["status"] == "ok"
    assert calls["beta"]["status"] == "skipped"
    assert calls["beta"]["error"] == (
        "beta: not called: 1 image(s) attached (inline image) and it does not read images (per the config)"
    )
    assert calls["gamma"]["status"] == "skipped"
    assert (
        "whether it reads images is unknown (set models.gamma.vision: true if it does)"
        in calls["gamma"]["error"]
    )
    assert (result.structured_content or {})["answer"] == "a red dot"


WITHHELD = (
    "[Chorus: 1 image(s) attached to the question (inline image) were shown to {who}, not to you; "
    "you have not seen them. Rely on the text and on what they answered.]"
)


@pytest.mark.anyio
async def test_a_judge_that_cannot_see_judges_from_the_text_and_the_members_answers_and_says_so(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("alpha", "a red dot")
    fake_openai.script("gamma", "It is a red dot.")
    cfg = config(fake_openai, root)
    cfg["models"]["gamma"]["vision"] = False
    cfg["strategies"]["judged"] = {
        "kind": "ensemble",
        "members": ["alpha", "beta"],
        "aggregation": "synthesis",
        "judge": "gamma",
    }
    image = {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    result = await run(
        cfg, "ensemble_vote", {"prompt": "What is this?", "strategy": "judged", "files": [image]}
    )
    assert not result.is_error, text_of(result)
    structured = result.structured_content or {}
    assert structured["answer"] == "It is a red dot."
    calls = {c["model"]: c for c in structured["calls"]}
    # A member that cannot see is refused as before; the judge is called, with the text only.
    assert calls["beta"]["status"] == "skipped" and fake_openai.requests_for("beta") == []
    assert calls["gamma"]["status"] == "ok"
    (judged,) = fake_openai.requests_for("gamma")
    content = user_content(judged)
    assert isinstance(content, str)  # no image part
    assert content.startswith("What is this?") and WITHHELD.format(who="the members") in content
    system = next(m["content"] for m in judged.messages if m["role"] == "system")
    assert "a red dot" in system  # the members' answers
    notes = [d.get("message", "") for d in structured["decisions"]]
    assert any(
        n.startswith("gamma: sent without the 1 image(s) the members saw (it does not read images")
        for n in notes
    ), notes


@pytest.mark.anyio
async def test_a_later_pipeline_stage_that_cannot_see_reads_the_earlier_stages_output_told_of_the_images(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("alpha", "a red dot on white")
    fake_openai.script("beta", "A red dot.")
    cfg = config(fake_openai, root)
    cfg["strategies"]["pipeline"] = {
        "kind": "pipeline",
        "stages": [
            {"name": "look", "prompt": "Describe: {input}", "step": "alpha"},
            {"name": "tidy", "prompt": "Tidy up: {look}", "step": "beta"},
        ],
    }
    image = {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    result = await run(cfg, "run_pipeline", {"input": "the picture", "files": [image]})
    assert not result.is_error, text_of(result)
    assert (result.structured_content or {})["answer"] == "A red dot."
    assert user_content(fake_openai.requests_for("alpha")[0])[1]["type"] == "image_url"
    tidy = user_content(fake_openai.requests_for("beta")[0])
    assert isinstance(tidy, str) and tidy.startswith("Tidy up: a red dot on white")
    assert WITHHELD.format(who="the earlier stages") in tidy


@pytest.mark.anyio
async def test_a_ranking_chair_that_cannot_see_writes_the_answer_from_the_ranked_answers_told_of_the_images(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    ranked = "FINAL RANKING:\n1. Response A\n2. Response B"
    for alias in ("alpha", "beta", "gamma"):
        fake_openai.script(alias, ["a red dot", ranked])  # answers as a member, then ranks as one
    fake_openai.script("delta", "It is a red dot.")
    cfg = config(fake_openai, root)
    for alias in ("alpha", "beta", "gamma"):
        cfg["models"][alias]["vision"] = True
    cfg["models"]["delta"] = {**cfg["models"]["alpha"], "model": "openai/delta", "vision": False}
    cfg["sessions"]["context"]["windows"] = {}
    cfg["strategies"]["ranked"] = {
        "kind": "ensemble",
        "members": ["alpha", "beta", "gamma"],
        "aggregation": "ranking",
        "judge": "delta",
    }
    image = {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    result = await run(
        cfg, "ensemble_vote", {"prompt": "What is this?", "strategy": "ranked", "files": [image]}
    )
    assert not result.is_error, text_of(result)
    structured = result.structured_content or {}
    assert structured["answer"] == "It is a red dot."
    for alias in ("alpha", "beta", "gamma"):  # members and rankers see the image
        assert all(user_content(r)[1]["type"] == "image_url" for r in fake_openai.requests_for(alias))
    (chaired,) = fake_openai.requests_for("delta")
    content = user_content(chaired)
    assert isinstance(content, str) and WITHHELD.format(who="the members") in content
    notes = [d.get("message", "") for d in structured["decisions"]]
    assert any(n.startswith("delta: sent without the 1 image(s) the members saw") for n in notes), notes


@pytest.mark.anyio
async def test_a_later_for_each_stage_and_one_with_its_own_context_are_sent_the_text_told_of_the_images(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("alpha", '["red", "round"]')
    fake_openai.script("beta", "noted")
    cfg = config(fake_openai, root)
    cfg["strategies"]["pipeline"] = {
        "kind": "pipeline",
        "stages": [
            {"name": "look", "prompt": "List traits of: {input}", "step": "alpha"},
            {"name": "each", "prompt": "Explain {item}", "step": "beta", "for_each": {"stage": "look"}},
            {"name": "wrap", "prompt": "Sum up: {each}", "step": "beta", "context": "none"},
        ],
    }
    image = {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    result = await run(cfg, "run_pipeline", {"input": "the picture", "files": [image]})
    assert not result.is_error, text_of(result)
    sent = [user_content(r) for r in fake_openai.requests_for("beta")]
    assert len(sent) == 3  # two items, then the wrap-up
    for content in sent:
        assert isinstance(content, str) and WITHHELD.format(who="the earlier stages") in content


@pytest.mark.anyio
async def test_a_long_session_history_yields_to_the_attached_file_which_goes_whole(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    # gamma's window is 3,000 tokens: room for the file or for the earlier turn, not for both.
    fake_openai.script("*", "noted")
    (root / "spec.md").write_text("".join(f"Rule {i}: keep it short.\n" for i in range(120)))
    cfg = config(fake_openai, root)
    server = build_server(parse_config(json.dumps(cfg)))
    async with Client(server) as client:
        first = await client.call_tool(
            "cascade_ask", {"prompt": "Remember: " + "blue " * 1500, "tiers": ["gamma"], "detail": "full"}
        )
        session_id = (first.structured_content or {})["session_id"]
        second = await client.call_tool(
            "cascade_ask",
            {
                "prompt": "Check the spec.",
                "tiers": ["gamma"],
                "session_id": session_id,
                "files": [str(root / "spec.md")],
                "detail": "full",
            },
        )
    assert not second.is_error, text_of(second)
    content = user_content(fake_openai.requests_for("gamma")[-1])
    assert "Rule 119: keep it short." in content and "[cut by Chorus" not in content  # the file, whole
    messages = fake_openai.requests_for("gamma")[-1].messages
    assert not any("blue blue" in str(m["content"]) for m in messages)  # the earlier turn yielded
    notes = [d.get("message", "") for d in (second.structured_content or {})["decisions"]]
    assert any(
        "older turn(s) left out to fit gamma's window" in n and "kept for the attached files" in n
        for n in notes
    ), notes


@pytest.mark.anyio
async def test_a_file_above_its_share_of_a_small_window_is_cut_with_a_marker_and_the_cut_is_reported(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "ok")
    big = root / "big.txt"
    big.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(2000)))
    result = await run(
        config(fake_openai, root), "ensemble_vote", {"prompt": "Summarise.", "files": [str(big)]}
    )
    assert not result.is_error, text_of(result)
    alpha = user_content(fake_openai.requests_for("alpha")[0])
    gamma = user_content(fake_openai.requests_for("gamma")[0])
    assert "line 1999:" in alpha and "[cut by Chorus" not in alpha  # alpha's window (default) holds it
    assert "line 0:" in gamma and "line 1999:" not in gamma
    assert f"[cut by Chorus: {big} is " in gamma and "the rest was not sent]" in gamma
    notes = [d.get("message", "") for d in (result.structured_content or {})["decisions"]]
    assert any(n.startswith(f"gamma: {big} is ") and "gamma's 3,000-token context window" in n for n in notes)


@pytest.mark.anyio
async def test_with_oversize_refuse_a_member_whose_window_is_too_small_is_skipped_naming_file_size_and_window(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "ok")
    big = root / "big.txt"
    big.write_text("word " * 20000)
    cfg = config(fake_openai, root, oversize="refuse")
    result = await run(cfg, "ensemble_vote", {"prompt": "Summarise.", "files": [str(big)]})
    assert not result.is_error, text_of(result)
    gamma = next(c for c in (result.structured_content or {})["calls"] if c["model"] == "gamma")
    assert gamma["status"] == "skipped"
    # Results show a path by its file name only (`server.mcp.shareable`): the caller knows where it is.
    assert gamma["error"].startswith("gamma: not called: big.txt is 20,00")
    assert (
        "tokens, more than its share" in gamma["error"]
        and "gamma's 3,000-token context window" in gamma["error"]
    )
    assert fake_openai.requests_for("gamma") == []


@pytest.mark.anyio
async def test_the_session_stores_the_attachment_by_reference_and_hash_not_its_content(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "PELICAN")
    path = root / "notes.md"
    server = build_server(parse_config(json.dumps(config(fake_openai, root))))
    async with Client(server) as client:
        result = await client.call_tool(
            "cascade_ask", {"prompt": "Code word?", "tiers": ["alpha"], "files": [str(path)]}
        )
        session_id = (result.structured_content or {})["session_id"]
        page = await client.read_resource(f"session://{session_id}")
        second = await client.call_tool(
            "cascade_ask", {"prompt": "And again?", "tiers": ["alpha"], "session_id": session_id}
        )
    assert not second.is_error
    stored = json.loads(page.contents[0].text)  # type: ignore[union-attr]
    dumped = json.dumps(stored)
    assert "PELICAN" in dumped  # the answer is stored...
    assert "The launch code word" not in dumped  # ...the file's content is not
    user = next(t for t in stored["turns"] if t["role"] == "user")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert user["inputs"][0]["sha256"] == digest and user["inputs"][0]["name"] == str(path)
    # The next turn names the earlier attachment; it does not send it again.
    history = fake_openai.requests_for("alpha")[-1].messages
    earlier = next(m["content"] for m in history if m["role"] == "user")
    assert f"[attached then, not shown again: {path} (text," in earlier
    assert "The launch code word" not in json.dumps(history)


@pytest.mark.anyio
async def test_another_image_with_the_same_words_is_not_answered_from_the_cache(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "an image")
    other = PNG[:-12] + b"\x00" * 12  # same header, other bytes: another image to the cache
    server = build_server(parse_config(json.dumps(config(fake_openai, root))))
    async with Client(server) as client:
        for data in (PNG, PNG, other):
            image = {"type": "image", "data": base64.b64encode(data).decode(), "mimeType": "image/png"}
            result = await client.call_tool(
                "cascade_ask", {"prompt": "What is it?", "tiers": ["alpha"], "files": [image]}
            )
            assert not result.is_error, text_of(result)
    assert len(fake_openai.requests_for("alpha")) == 2  # the repeat was a hit, the other image was not


@pytest.mark.anyio
async def test_a_secret_in_an_attached_file_is_redacted_before_any_model_sees_it(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "noted")
    env = root / ".env"
    env.write_text(f"OPENAI_API_KEY={SECRET}\nDEBUG=1\n")
    result = await run(
        config(fake_openai, root),
        "cascade_ask",
        {"prompt": "Check.", "tiers": ["alpha"], "files": [str(env)]},
    )
    assert not result.is_error, text_of(result)
    (sent,) = fake_openai.requests_for("alpha")
    assert SECRET not in json.dumps(sent.messages) and "DEBUG=1" in user_content(sent)
    notes = [d.get("message", "") for d in (result.structured_content or {})["decisions"]]
    assert f"{env}: 1 secret(s) redacted before it was sent" in notes


@pytest.mark.anyio
async def test_run_pipeline_passes_an_embedded_text_resource_to_its_stage(
    fake_openai: FakeOpenAI, root: Path
) -> None:
    fake_openai.script("*", "done")
    cfg = config(fake_openai, root)
    cfg["strategies"]["pipeline"] = {
        "kind": "pipeline",
        "stages": [{"name": "draft", "prompt": "Do: {input}", "step": "beta"}],
    }
    resource = {
        "type": "resource",
        "resource": {"uri": "mem://spec", "mimeType": "text/plain", "text": "Use tabs."},
    }
    result = await run(cfg, "run_pipeline", {"input": "format it", "files": [resource]})
    assert not result.is_error, text_of(result)
    content = user_content(fake_openai.requests_for("beta")[0])
    assert (
        content.startswith("Do: format it")
        and '<file name="mem://spec"' in content
        and "Use tabs." in content
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_stdio_a_file_path_within_the_configured_root_reaches_the_models(
    fake_openai: FakeOpenAI, root: Path, tmp_path: Path, mode: str
) -> None:
    fake_openai.script("*", "PELICAN")
    path = write_config(tmp_path / "chorus.yaml", config(fake_openai, root))
    async with Client(stdio_server(path, server_env(SECRET)), mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool(
            "cascade_ask", {"prompt": "Code word?", "tiers": ["alpha"], "files": [str(root / "notes.md")]}
        )
    assert not result.is_error, text_of(result)
    assert "The launch code word is PELICAN." in user_content(fake_openai.requests_for("alpha")[-1])


@pytest.mark.anyio
async def test_over_streamable_http_an_embedded_image_reaches_only_the_vision_model_and_paths_need_roots(
    fake_openai: FakeOpenAI, root: Path, tmp_path: Path
) -> None:
    fake_openai.script("*", "a dot")
    cfg = config(fake_openai, root)
    cfg["inputs"] = {}  # no operator roots: over HTTP no path is readable
    path = write_config(tmp_path / "chorus.yaml", cfg)
    image = {
        "type": "resource",
        "resource": {"uri": "mem://dot.png", "mimeType": "image/png", "blob": PNG_B64},
    }
    with http_server(tmp_path, server_env(SECRET), config=path, never_logged=SECRET) as served:
        async with Client(served.url) as client:
            result = await client.call_tool(
                "ensemble_vote", {"prompt": "What is it?", "files": [image], "detail": "full"}
            )
            refused = await client.call_tool(
                "cascade_ask", {"prompt": "Read.", "tiers": ["alpha"], "files": [str(root / "notes.md")]}
            )
    assert not result.is_error, text_of(result)
    content = user_content(fake_openai.requests_for("alpha")[0])
    assert content[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}
    assert fake_openai.requests_for("beta") == []
    assert {c["model"]: c["status"] for c in (result.structured_content or {})["calls"]}["beta"] == "skipped"
    assert refused.is_error
    assert "over HTTP only the operator's inputs.roots are readable, and none is configured" in text_of(
        refused
    )
    assert str(root) not in text_of(refused).replace(str(root / "notes.md"), "")
