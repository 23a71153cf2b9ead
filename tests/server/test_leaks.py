"""No secret leaves the server: every tool and resource, over HTTP, at DEBUG log level, traces exported;
and a provider that echoes the key inside a successful answer leaves it nowhere (results, sessions,
the SQLite stores, the response cache, another caller's cached answer).

The provider key is real to the server (read from the environment, sent to the fake provider as a
bearer token), and one fake model quotes it whole in its error message, as a careless provider does.
Everything the server hands out is scanned for it and for the client's bearer token: tool results,
resources, the server's log (DEBUG), and the OTLP span batches it exports (received raw by a fake
collector). `doctor` and `config check` are scanned too, with a password inside an endpoint URL.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fake_openai import FakeOpenAI, Fault
from tests.server.http.test_auth import PROVIDER_KEY, TOKENS, auth_env, chorus_config, serve, tokens_section
from tests.support.servers import REPO, free_port, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROBE = "leak-probe-question"
"""Sent in every prompt, so the scans can tell that a channel carried the call at all."""
URL_PASSWORD = "url-password-0123456789"


class FakeCollector:
    """An OTLP/HTTP traces endpoint on loopback that keeps every raw body it receives."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.port = free_port()
        app = Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _traces(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies.append(body)
        return Response(b"", media_type="application/x-protobuf")

    @property
    def received(self) -> bytes:
        return b"".join(self.bodies)

    def __enter__(self) -> FakeCollector:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("alpha", "The answer is B.\nConfidence: 60%")
        server.script("beta", Fault.unauthorized(echo_key=True))
        server.script(
            "gamma", Fault.http(500, "upstream failed for key {key}", type="server_error", echo_key=True)
        )
        yield server


async def _exercise(url: str) -> list[str]:
    """Every tool and every resource, once; returns everything the client received, as JSON text."""
    seen: list[str] = []
    headers = {"authorization": f"Bearer {TOKENS['alice']}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        calls: dict[str, dict[str, Any]] = {
            "ensemble_vote": {"prompt": f"{PROBE}: A) B) C)?"},
            "cascade_ask": {"prompt": f"{PROBE}: sure?", "tiers": ["beta", "gamma", "alpha"]},
            "route_specialist": {"prompt": f"{PROBE}: route me"},
            "run_pipeline": {"input": f"{PROBE}: build it"},
            "list_models": {},
            "list_strategies": {},
            "start_session": {},
        }
        assert set(calls) | {"end_session"} >= tools, f"a tool this test does not call: {tools - set(calls)}"
        called = sorted(tools - {"end_session"})
        results = {tool: await client.call_tool(tool, calls[tool]) for tool in called}
        seen += [result.model_dump_json() for result in results.values()]
        session_id = (results["ensemble_vote"].structured_content or {})["session_id"]
        uris = ["session://recent", f"session://{session_id}"]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        paged = "session://{session_id}{?before,limit}"
        uris += [t.replace("{session_id}", session_id) for t in templates if t != paged]
        uris += [str(r.uri) for r in (await client.list_resources()).resources if str(r.uri) not in uris]
        for uri in uris:
            try:
                seen.append((await client.read_resource(uri)).model_dump_json())
            except MCPError as exc:  # an error message is output too
                seen.append(str(exc))
        if "end_session" in tools:
            seen.append((await client.call_tool("end_session", {"session_id": session_id})).model_dump_json())
    return seen


async def test_no_key_or_token_in_results_resources_logs_or_spans(fake: FakeOpenAI, tmp_path: Path) -> None:
    secrets = [PROVIDER_KEY, TOKENS["alice"]]
    with FakeCollector() as collector:
        config = chorus_config(
            fake,
            auth=tokens_section("alice"),
            tracing={"endpoint": f"http://127.0.0.1:{collector.port}"},
            log_level="DEBUG",
        )
        env = auth_env(OTEL_BSP_SCHEDULE_DELAY="100")
        with serve(tmp_path, config, env=env) as served:
            seen = await _exercise(served.url)
            deadline = time.monotonic() + 20
            while PROBE.encode() not in collector.received and time.monotonic() < deadline:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        log = served.log

    # The scans are not vacuous: the key went to the provider and came back in its errors; the calls
    # reached the log and the spans; results carry the errors (redacted).
    beta = fake.requests_for("beta")
    assert beta and beta[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert any(PROBE in text for text in seen) and "[REDACTED]" in "".join(seen)
    assert '"level": "DEBUG"' in log and "[REDACTED]" in log  # the provider's errors are logged, redacted
    assert PROBE.encode() in collector.received, "no span arrived at the collector"

    for secret in secrets:
        for text in seen:
            assert secret not in text, f"secret in a result: {text[:300]}"
        assert secret not in log, "secret in the server log"
        assert secret.encode() not in collector.received, "secret in an exported span"


ECHOED_KEY = "echo-probe-credential-7f3a9c21d5e8"
"""Shaped like no provider's key: only its registration (as the client reads it) lets `redact` find it."""


async def _ask(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], list[str]]:
    """One MCP session over streamable HTTP as alice: `calls` in turn, then every session's resources.
    Returns the structured results and everything received, as JSON text."""
    seen: list[str] = []
    results: list[Any] = []
    headers = {"authorization": f"Bearer {TOKENS['alice']}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        for tool, arguments in calls:
            result = await client.call_tool(tool, arguments)
            results.append(result.structured_content or {})
            seen.append(result.model_dump_json())
        for data in results:
            for uri in (f"session://{data['session_id']}", f"session://{data['session_id']}/usage"):
                seen.append((await client.read_resource(uri)).model_dump_json())
        seen.append((await client.read_resource("session://recent")).model_dump_json())
    return results, seen


async def test_a_key_echoed_in_a_successful_answer_reaches_no_result_session_store_or_cache(
    tmp_path: Path,
) -> None:
    with FakeOpenAI() as fake:
        for alias in ("alpha", "beta", "gamma"):
            fake.script(alias, Fault.echoes_authorization())
        config = chorus_config(fake, auth=tokens_section("alice"))
        env = server_env(ECHOED_KEY, CHORUS_TOKEN_ALICE=TOKENS["alice"])
        asked = [
            ("run_pipeline", {"input": f"{PROBE}: repeat my headers"}),
            # Log-probabilities requested: the key is one of the answer's tokens too (kept in the cache).
            ("cascade_ask", {"prompt": f"{PROBE}: again", "tiers": ["alpha"], "estimator": "logprob"}),
        ]
        with serve(tmp_path, config, env=env) as served:
            first, seen = await _ask(served.url, asked)
            # A second caller (a new MCP session) asking the same: answered from the cache.
            second, seen_again = await _ask(served.url, asked[:1])
        log = served.log
        sent = fake.requests

    # Not vacuous: the provider was sent the key and answered with it, the answers came back (redacted),
    # and the second caller's came from the cache.
    assert sent and all(r.headers["authorization"] == f"Bearer {ECHOED_KEY}" for r in sent)
    assert all(data["ok"] and "Here is what you sent me" in data["answer"] for data in [*first, *second])
    assert all("[REDACTED]" in data["answer"] for data in [*first, *second])
    assert second[0]["totals"].get("cached_calls") == 1 and len(sent) == 2
    data_home = Path(env["XDG_DATA_HOME"])
    stored = _files_under(data_home)
    for database in ("sessions.sqlite3", "cache.sqlite3"):  # the rows, read back: the answer, redacted
        rows = _rows(data_home, database)
        assert "Here is what you sent me" in rows and "[REDACTED]" in rows and ECHOED_KEY not in rows, (
            database
        )

    for text in [*seen, *seen_again]:
        assert ECHOED_KEY not in text, f"the key in what a client received: {text[:300]}"
    assert ECHOED_KEY not in log
    for name, data in stored.items():  # the session and cache databases (and write-ahead logs), byte for byte
        assert ECHOED_KEY.encode() not in data, f"the key is stored in {name}"


def _rows(directory: Path, name: str) -> str:
    """Every row of every table of the SQLite file `name` under `directory`, as text."""
    with contextlib.closing(sqlite3.connect(next(directory.rglob(name)))) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(
            repr(row) for table in tables for row in connection.execute(f'SELECT * FROM "{table}"')
        )


def _files_under(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_doctor_and_config_check_show_no_key_and_no_password_in_an_endpoint(tmp_path: Path) -> None:
    config = {
        "models": {
            "proxied": {
                "model": "openai/gpt-4o-mini",
                "api_base": f"https://chorus:{URL_PASSWORD}@proxy.example.com/v1",
                "api_key_env": "CHORUS_TEST_KEY",
            }
        },
        "auth": tokens_section("alice"),
    }
    path = tmp_path / "chorus.yaml"
    path.write_text(json.dumps(config))
    outputs = {}
    for command in (["doctor"], ["config", "check"]):
        done = subprocess.run(
            [sys.executable, "-m", "chorus_mcp.server.cli.main", *command, "--config", str(path)],
            env=auth_env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        output = outputs[command[0]] = done.stdout + done.stderr
        assert done.returncode == 0, output
        for secret in (PROVIDER_KEY, URL_PASSWORD, TOKENS["alice"]):
            assert secret not in output, f"{command}: {output}"
    assert "proxied" in outputs["doctor"]  # the model was listed (its endpoint, if shown, is redacted)
