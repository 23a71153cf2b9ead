"""`chorus-mcp ask`: a real MCP client session against a real `chorus-mcp serve` process (the fake provider
server plays the models), progress on stderr, a readable table on stdout, clear advice when nothing can
answer."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chorus_mcp.config.loader import BUNDLED_DEFAULT, load_config
from chorus_mcp.server.cli.ask import in_flags, render_result, tool_for
from chorus_mcp.strategies.models.availability import check_models
from tests.fake_openai import FakeOpenAI
from tests.support.servers import fake_provider_config, free_port, run_chorus, server_env, write_config
from tests.tracing_support import otlp_collector

SECRET = "sk-chorus-ask-0123456789abcdef"


def _env(**extra: str) -> dict[str, str]:
    return server_env(SECRET, COLUMNS="160", **extra)


def ask(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_chorus("ask", *args, env=env or _env(), timeout=timeout)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def config(fake: FakeOpenAI, tmp_path: Path) -> str:
    fake.reset()
    fake.script("alpha", "The answer is B.", latency_s=0.05, prompt_tokens=12, completion_tokens=4)
    fake.script("beta", "B", latency_s=0.1)
    fake.script("gamma", "I think C.\nConfidence: 95%", latency_s=0.15)
    data = fake_provider_config(fake)
    data["strategies"]["ensemble"]["early_stop"] = False  # every member's row is in the table
    return str(write_config(tmp_path / "chorus.yaml", data))


@pytest.mark.slow
def test_an_ensemble_prints_each_models_answer_vote_cost_and_latency(config: str) -> None:
    done = ask("Pick one: A) x B) y C) z", "--strategy", "ensemble", "--config", config)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Answer: B"
    # The tool result's own vote line: who said what, strongest first.
    assert lines[1] == "  vote (majority): B ← alpha, beta; 2 of 3 independent voters agree, consensus"
    header = next(line for line in lines if line.startswith("model "))
    assert header.split() == ["model", "stage", "status", "answer", "vote", "tokens", "cost", "latency"]
    rows = {line.split()[0]: line for line in lines if line.split()[:1] in (["alpha"], ["beta"], ["gamma"])}
    assert "The answer is B." in rows["alpha"] and " B " in rows["alpha"] and "12+4" in rows["alpha"]
    assert "$0.000020" in rows["alpha"]
    assert "(not counted)" in rows["gamma"]
    assert next(line for line in lines if line.startswith("total")).split()[1:3] == ["3", "calls"]
    assert "--session " in lines[-1]
    # Progress arrived on stderr as each model finished; stdout holds only the result.
    assert "ensemble_vote: asking" in done.stderr and "3/3" in done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--strategy", "cascade"], "gamma: confidence 0.95 vs 0.80 → accept"),
        (["--strategy", "pipeline"], "pipeline/draft"),
        (["--tool", "route_specialist"], "route: general by default"),
        (["--models", "alpha,beta", "--arg", "extract=choice"], "vote (majority): B ← alpha, beta"),
    ],
)
def test_any_tool_runs_from_the_command_line(config: str, args: list[str], expected: str) -> None:
    done = ask("Pick one: A) x B) y C) z", "--config", config, *args)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


@pytest.mark.slow
def test_json_prints_the_structured_result(config: str) -> None:
    done = ask("Pick one: A) x B) y", "--config", config, "--json", "--protocol", "legacy")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answer"] == "B" and len(result["calls"]) == 3


@pytest.mark.slow
def test_with_no_usable_model_it_says_what_to_set_up(tmp_path: Path) -> None:
    config = tmp_path / "bare.yaml"
    config.write_text(
        json.dumps(
            {
                "use_available_models": True,
                "models": {
                    "hosted": {
                        "model": "openai/gpt-x",
                        "api_key_env": "CHORUS_ABSENT_KEY",
                        "fallbacks": ["client"],
                    },
                    "client": {"model": "mcp/sampling"},
                },
                "strategies": {"ensemble": {"kind": "ensemble", "members": ["hosted", "client"]}},
            }
        )
    )
    done = ask("Is 91 prime?", "--config", str(config))
    assert done.returncode == 1
    assert "No answer:" in done.stdout and "does not offer sampling" in done.stdout
    assert "No model could answer. To get answers, set up at least one model:" in done.stderr
    assert "set CHORUS_ABSENT_KEY" in done.stderr and "chorus-mcp doctor" in done.stderr


@pytest.mark.slow
def test_the_readme_run_it_command_on_the_bundled_default_answers_or_says_what_to_do() -> None:
    # No key, and no network needed: the embedded model answers when installed (if this machine runs it
    # fast enough for the default deadline, else it says so); without it, it says what to set up.
    done = ask("Is 91 a prime number? Answer yes or no.", "--strategy", "ensemble", timeout=300)
    default = load_config(BUNDLED_DEFAULT, env={})
    embedded = check_models({"local": default.models["local"]}, env={})["local"]
    if done.returncode == 0:
        assert embedded.usable and done.stdout.startswith("Answer: ") and "local" in done.stdout
    elif embedded.usable:
        assert done.returncode == 1, done.stderr
        # Too slow for the default deadline, or the seats that answered in time disagreed (a tie).
        slow = re.search(r"No model answered, though local(, local-small)? can run here", done.stderr)
        assert slow or done.stdout.startswith("No answer: "), (done.stdout, done.stderr)
    else:
        assert done.returncode == 1, done.stderr
        assert "the embedded model: `uv sync --extra local`" in done.stderr
    if "deadline reached before any answer" not in done.stdout:  # a slow machine cuts every seat short
        assert re.search(r"^client +ensemble/member-\d +error", done.stdout, re.MULTILINE)


@pytest.mark.slow
def test_an_unknown_strategy_or_a_broken_config_is_a_clear_usage_error(config: str, tmp_path: Path) -> None:
    done = ask("hi", "--strategy", "nope", "--config", config)
    assert done.returncode == 2
    assert "--strategy: 'nope'; expected one of cascade, ensemble, pipeline, route" in done.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaults: {deadline_s: soon}\n")
    done = ask("hi", "--config", str(broken))
    assert done.returncode == 2 and "defaults.deadline_s" in done.stderr


def _result(**overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "strategy": "ensemble",
        "answer": "B",
        "ok": True,
        "calls": [
            {
                "model": "a",
                "stage": "ensemble/member-1",
                "status": "ok",
                "answer": "B",
                "text": "It is B " * 30,
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "cost_usd": "0.000010",
                "latency_s": 0.5,
            },
            {"model": "me", "stage": "ensemble/member-2", "status": "ok", "answer": "B", "latency_s": 1.25},
            {
                "model": "local",
                "stage": "ensemble/member-3",
                "status": "timeout",
                "error": "local: no answer within 9s",
                "latency_s": 9.0,
            },
        ],
        "decisions": [
            {
                "kind": "vote",
                "stage": "ensemble",
                "mode": "majority",
                "counts": {"B": 2},
                "winner": "B",
                "agreement": 1.0,
                "consensus": True,
            },
            {
                "kind": "fallback",
                "stage": "ensemble/member-3",
                "from_model": "ollama",
                "to_model": "local",
                "reason": "ollama: connection refused",
            },
        ],
        "totals": {
            "calls": 3,
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "cost_usd": "0.000010",
            "cost_complete": False,
            "latency_s": 9.1,
        },
        "session_id": "s1",
    }
    result.update(overrides)
    return result


def test_the_table_cuts_long_answers_to_the_width_and_marks_unknown_costs() -> None:
    text = render_result(_result(), width=100)
    lines = text.splitlines()
    assert lines[:3] == [
        "Answer: B",
        "  majority vote: B 2 (agreement 100%, consensus)",
        "  fallback: ollama → local (ollama: connection refused)",
    ]
    assert all(len(line) <= 100 for line in lines)
    row = next(line for line in lines if line.startswith("a "))
    assert "It is B It is B" in row and "…" in row
    me = next(line for line in lines if line.startswith("me "))
    assert "unknown" in me and me.split()[-1] == "1.25s"
    assert "local: no answer within 9s" in next(line for line in lines if line.startswith("local "))
    assert "≥$0.000010" in next(line for line in lines if line.startswith("total "))


def test_a_failed_run_leads_with_why() -> None:
    text = render_result(_result(ok=False, answer=None, error="no model answered: a (error): boom"))
    assert text.splitlines()[0] == "No answer: no model answered: a (error): boom"


def test_free_text_votes_are_cut_so_the_table_keeps_to_the_width() -> None:
    long = "eleven is not a prime number and here is a long explanation of why " * 3
    result = _result()
    result["calls"][1]["answer"] = long
    result["decisions"][0]["counts"] = {"B": 1, long: 1}
    lines = render_result(result, width=100).splitlines()
    assert all(len(line) <= 100 for line in lines), "\n".join(lines)
    me = next(line for line in lines if line.startswith("me "))
    assert "eleven is not a pri…" in me


@pytest.mark.slow
def test_a_repeat_served_from_the_cache_is_marked_and_its_total_counts_no_calls(config: str) -> None:
    first = ask("Pick one: A) x B) y C) z", "--config", config)
    again = ask("Pick one: A) x B) y C) z", "--config", config)
    assert first.returncode == again.returncode == 0, again.stderr
    rows = [
        line for line in again.stdout.splitlines() if line.split()[:1] in (["alpha"], ["beta"], ["gamma"])
    ]
    assert len(rows) == 3 and all("ok, cached" in row for row in rows), again.stdout
    total = next(line for line in again.stdout.splitlines() if line.startswith("total"))
    assert total.split()[1:3] == ["3", "cached"] and "calls" not in total, total
    assert "0 calls" not in again.stdout


@pytest.mark.slow
def test_an_unreachable_url_says_what_was_given_and_what_was_expected() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    done = ask("hi", "--url", url)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"chorus-mcp ask: --url: {url} (cannot connect: nothing is listening there); "
        "expected the MCP endpoint of a running `chorus-mcp serve --http` (path /mcp by default)"
    )


@pytest.mark.slow
def test_a_pipeline_that_was_not_approved_shows_its_latest_revision_and_says_so(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.reset()
    fake.script("beta", ["draft one", "draft two"])
    fake.script("gamma", '{"approved": false, "issues": ["too vague"]}')
    data = fake_provider_config(fake)
    data["strategies"]["pipeline"] = {
        "kind": "pipeline",
        "stages": [
            {"name": "draft", "prompt": "Do: {input}", "step": "beta"},
            {"name": "review", "prompt": "Review {draft}", "step": "gamma", "review": True},
        ],
        "refine": {"stage": "draft", "prompt": "Fix {issues} in {draft}", "max_iterations": 1},
    }
    config = write_config(tmp_path / "pipeline.yaml", data)
    done = ask("Write it", "--strategy", "pipeline", "--config", str(config))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Not accepted: not approved after 1 refinement") and "too vague" in lines[0]
    assert lines[1:3] == ["Latest answer (not accepted):", "draft two"]
    assert "No answer" not in done.stdout


@pytest.mark.slow
def test_choosing_the_tool_for_a_strategy_makes_no_tool_call_of_its_own(config: str, tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    with otlp_collector() as (url, bodies):
        data = json.loads(Path(config).read_text())
        data["tracing"] = {"endpoint": url}
        traced = write_config(tmp_path / "traced.yaml", data)
        done = ask("Pick one: A) x B) y C) z", "--strategy", "cascade", "--config", str(traced))
    assert done.returncode == 0, done.stderr
    roots = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                roots += [span.name for span in scope.spans if span.name.startswith("tools/call")]
    assert roots == ["tools/call cascade_ask"]


def test_the_tool_for_a_strategy_is_the_one_whose_schema_accepts_it() -> None:
    def schema(argument: str, names: list[str]) -> dict[str, Any]:
        return {"properties": {argument: {"type": "string", "enum": names}}}

    schemas = {
        "ensemble_vote": schema("strategy", ["ensemble", "synthesis"]),
        "cascade_ask": schema("strategy", ["cascade"]),
        "route_specialist": schema("strategy", ["route"]),
        "run_pipeline": schema("pipeline", ["pipeline"]),
    }
    assert [tool_for(schemas, name) for name in ("synthesis", "cascade", "route", "pipeline", None)] == [
        "ensemble_vote",
        "cascade_ask",
        "route_specialist",
        "run_pipeline",
        "ensemble_vote",
    ]
    assert tool_for(schemas, "nope") is None


def test_a_cached_call_is_marked_in_the_table_and_the_total_counts_calls_and_hits_apart() -> None:
    result = _result()
    result["calls"][0].update(cached=True, cost_usd="0", saved_cost_usd="0.000010")
    result["totals"].update(calls=2, cached_calls=1)
    lines = render_result(result, width=120).splitlines()
    row = next(line for line in lines if line.startswith("a "))
    assert "ok, cached" in row and "saved $0.000010" in row
    assert next(line for line in lines if line.startswith("total")).split()[1:5] == ["2", "calls", "+", "1"]


@pytest.mark.slow
def test_a_refused_call_names_the_flag_that_set_the_argument(config: str) -> None:
    done = ask("hi", "--config", config, "--models", ",".join(["alpha"] * 9), "--arg", "quorum=0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().endswith(  # after the progress line
        "\nchorus-mcp ask: --arg quorum (quorum): 0; expected at least 1"
    ), done.stderr
    again = ask("hi", "--config", config, "--models", ",".join(["alpha"] * 9))
    assert again.stderr.strip().endswith(
        "\nchorus-mcp ask: --models (models): 9 models; expected at most 8 (limits.max_members)"
    ), again.stderr


@pytest.mark.slow
def test_a_flag_of_the_wrong_kind_is_refused_before_anything_starts() -> None:
    done = ask("hi", "--deadline", "0")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "chorus-mcp ask: error: argument --deadline: '0'; expected a number of seconds more than 0"
    )


def test_refusals_are_given_the_flags_that_set_their_arguments() -> None:
    message = "models[1]: 7; expected a string\nprompt: ' '; expected some text, not only white space"
    assert in_flags(message, set()) == (
        "--models (models)[1]: 7; expected a string\n"
        "the question (prompt): ' '; expected some text, not only white space"
    )
