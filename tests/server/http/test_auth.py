"""HTTP authentication, Host/Origin checks, rate limits and the busy cap — against real server processes.

The server runs as `chorus-mcp serve --http` in a subprocess, its models reached through litellm on the
fake OpenAI-compatible server; requests are made with raw httpx (to read status codes and headers) and
with the SDK's client (to show what an MCP client sees).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.http.auth import (
    HttpGate,
    IntrospectionVerifier,
    StaticTokenVerifier,
    bind_refusal,
    resolve_tokens,
    transport_security,
)
from chorus_mcp.server.http.limits import InFlight
from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    INITIALIZE,
    MCP_HEADERS,
    RunningServer,
    fake_provider_config,
    free_port,
    http_server,
    run_chorus,
    server_env,
    write_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROVIDER_KEY = "sk-chorus-auth-test-0123456789abcdef"
TOKENS = {
    "alice": "alice-token-0123456789abcdefghijklmnopq",
    "bob": "bob-token-0123456789abcdefghijklmnopqrstu",
    "carol": "carol-token-0123456789abcdefghijklmnopqr",
    "dave": "dave-token-0123456789abcdefghijklmnopqrst",
}
CI_TOKEN = "ci-token-by-digest-0123456789abcdefghijkl"
"""Configured by its SHA-256 digest only: the config file holds nothing a caller could send."""


# -- a server process -----------------------------------------------------------------------------


def auth_env(**extra: str) -> dict[str, str]:
    """A server's environment with the provider key and every user's token in its variable."""
    tokens = {f"CHORUS_TOKEN_{name.upper()}": token for name, token in TOKENS.items()}
    return server_env(PROVIDER_KEY, **{**tokens, **extra})


def chorus_config(fake: FakeOpenAI, **sections: Any) -> dict[str, Any]:
    return fake_provider_config(fake, deadline_s=20, timeout_s=30, **sections)


def tokens_section(*names: str, ci: bool = True) -> dict[str, Any]:
    tokens: dict[str, Any] = {name: {"env": f"CHORUS_TOKEN_{name.upper()}"} for name in names}
    if ci:
        tokens["ci"] = {"sha256": hashlib.sha256(CI_TOKEN.encode()).hexdigest()}
    return {"tokens": tokens}


@contextmanager
def serve(
    directory: Path, config: dict[str, Any], *, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[RunningServer]:
    """`chorus-mcp serve --http` on loopback (a free port unless given), with `config`; stderr to a file."""
    port = port or free_port()
    path = write_config(directory / f"chorus-{port}.yaml", config)
    with http_server(
        directory, env or auth_env(), config=path, port=port, never_logged=PROVIDER_KEY
    ) as served:
        yield served


def refusal_of(config: dict[str, Any], directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Start `serve --http` expecting it to refuse; returns its stderr."""
    path = write_config(directory / "refused.yaml", config)
    done = run_chorus(
        "serve", "--http", "--port", "1", "--config", str(path), *args, env=env or auth_env(), timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    return done.stderr


def post(url: str, token: str | None = None, body: Any = INITIALIZE, **headers: str) -> httpx.Response:
    sent = dict(MCP_HEADERS)
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    sent.update(headers)
    return httpx.post(url, content=json.dumps(body), headers=sent, timeout=30)


async def call_with_token(
    url: str, token: str, tool: str, arguments: dict[str, Any], mode: str = "auto"
) -> Any:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        return await client.call_tool(tool, arguments)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("alpha", "The answer is B.")
        server.script("beta", "B")
        server.script("gamma", "C\nConfidence: 95%")
        yield server


@pytest.fixture(scope="module")
def authed(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """alice (token in a variable) and ci (token by digest); bob is not configured (revoked)."""
    directory = tmp_path_factory.mktemp("authed")
    auth = {**tokens_section("alice"), "allowed_hosts": ["chorus.example.com"]}
    with serve(directory, chorus_config(fake, auth=auth)) as served:
        yield served
    assert PROVIDER_KEY not in served.log and all(
        token not in served.log for token in [*TOKENS.values(), CI_TOKEN]
    )


# -- bearer tokens --------------------------------------------------------------------------------


def test_a_request_without_a_token_gets_401_saying_the_bearer_token_is_missing(authed: RunningServer) -> None:
    response = post(authed.url)
    assert response.status_code == 401
    assert "missing bearer token" in response.json()["error_description"]
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_another_auth_scheme_gets_401_asking_for_bearer(authed: RunningServer) -> None:
    response = post(authed.url, authorization=f"Basic {TOKENS['alice']}")
    assert response.status_code == 401 and "Bearer scheme" in response.json()["error_description"]
    assert TOKENS["alice"] not in response.text + str(response.headers)


def test_a_wrong_token_gets_401_without_the_token_echoed(authed: RunningServer) -> None:
    wrong = "wrong-token-that-must-not-be-echoed-0123456789"
    response = post(authed.url, token=wrong)
    assert response.status_code == 401 and "not accepted" in response.json()["error_description"]
    assert wrong not in response.text and wrong not in str(response.headers)
    assert wrong not in authed.log


def test_a_token_that_is_a_prefix_of_a_good_one_is_refused(authed: RunningServer) -> None:
    assert post(authed.url, token=TOKENS["alice"][:-1]).status_code == 401
    assert post(authed.url, token=TOKENS["alice"] + "x").status_code == 401


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_right_token_gets_a_working_mcp_session(authed: RunningServer, mode: str) -> None:
    result = await call_with_token(
        authed.url, TOKENS["alice"], "ensemble_vote", {"prompt": "A) B) C)?"}, mode
    )
    assert not result.is_error and result.structured_content["answer"] == "B"


async def test_a_token_configured_by_its_digest_works(authed: RunningServer) -> None:
    result = await call_with_token(authed.url, CI_TOKEN, "route_specialist", {"prompt": "hello"})
    assert not result.is_error and result.structured_content["answer"] == "B"


async def test_removing_a_name_revokes_that_token_and_only_that_one(
    fake: FakeOpenAI, authed: RunningServer, tmp_path: Path
) -> None:
    # Before: bob is configured and gets in.
    with serve(tmp_path, chorus_config(fake, auth=tokens_section("alice", "bob"))) as before:
        assert post(before.url, token=TOKENS["bob"]).status_code == 200
    # After: the same config without bob (the `authed` server). bob is refused; alice and ci are not.
    refused = post(authed.url, token=TOKENS["bob"])
    assert refused.status_code == 401 and "revoked" in refused.json()["error_description"]
    assert post(authed.url, token=TOKENS["alice"]).status_code == 200
    assert post(authed.url, token=CI_TOKEN).status_code == 200


# -- Host and Origin ------------------------------------------------------------------------------


def test_a_foreign_host_header_is_refused_even_with_a_good_token(authed: RunningServer) -> None:
    response = post(authed.url, token=TOKENS["alice"], host="evil.example.com")
    assert response.status_code == 421
    assert post(authed.url, host="evil.example.com").status_code == 401  # no token: refused before that


def test_a_foreign_origin_is_refused(authed: RunningServer) -> None:
    assert post(authed.url, token=TOKENS["alice"], origin="http://evil.example.com").status_code == 403
    assert post(authed.url, token=TOKENS["alice"], origin="http://127.0.0.1:1234").status_code == 200


def test_a_configured_host_is_accepted(authed: RunningServer) -> None:
    assert post(authed.url, token=TOKENS["alice"], host="chorus.example.com").status_code == 200
    assert post(authed.url, token=TOKENS["alice"], host="chorus.example.com:8443").status_code == 200


# -- start-up refusals ----------------------------------------------------------------------------


def test_binding_beyond_loopback_without_auth_refuses_to_start(fake: FakeOpenAI, tmp_path: Path) -> None:
    stderr = refusal_of(chorus_config(fake), tmp_path, "--host", "0.0.0.0")
    assert "refusing to listen on 0.0.0.0" in stderr and "auth.tokens" in stderr


def test_a_token_variable_too_short_refuses_to_start_without_showing_it(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    config = chorus_config(fake, auth=tokens_section("alice"))
    short = refusal_of(config, tmp_path, env=auth_env(CHORUS_TOKEN_ALICE="short-token"))
    assert (
        "auth.tokens.alice: environment variable CHORUS_TOKEN_ALICE holds fewer than 32 characters" in short
    )
    assert "short-token" not in short


def test_bind_rules_without_a_process() -> None:
    def config(text: str) -> Any:
        return parse_config(text, env={})

    env = {"CHORUS_TOKEN_ALICE": TOKENS["alice"]}
    plain = config("{}")
    authed = config("auth: {tokens: {alice: {env: CHORUS_TOKEN_ALICE}}}")
    hosts = config("auth: {tokens: {alice: {env: CHORUS_TOKEN_ALICE}}, allowed_hosts: [chorus.example.com]}")
    assert bind_refusal(plain, "127.0.0.1", env) is None and bind_refusal(plain, "localhost", env) is None
    assert bind_refusal(plain, "::1", env) is None
    assert "refusing to listen on 10.0.0.5" in (bind_refusal(plain, "10.0.0.5", env) or "")
    assert bind_refusal(authed, "10.0.0.5", env) is None  # a specific address is allowed as a Host itself
    assert "allowed_hosts" in (bind_refusal(authed, "0.0.0.0", env) or "")
    assert bind_refusal(hosts, "0.0.0.0", env) is None
    assert "CHORUS_TOKEN_ALICE is not set" in (bind_refusal(authed, "127.0.0.1", {}) or "")
    security = transport_security(hosts, "10.0.0.5")
    assert security.enable_dns_rebinding_protection
    assert {"chorus.example.com", "chorus.example.com:*", "10.0.0.5", "10.0.0.5:*"} <= set(
        security.allowed_hosts
    )


async def test_the_static_verifier_names_the_client_and_never_keeps_the_token() -> None:
    config = parse_config(
        "auth: {tokens: {alice: {env: A}, ci: {sha256: "
        + hashlib.sha256(CI_TOKEN.encode()).hexdigest()
        + "}}}",
        env={},
    )
    digests, problems = resolve_tokens(config.auth, {"A": TOKENS["alice"]})
    assert problems == []
    verifier = StaticTokenVerifier(digests)
    alice = await verifier.verify_token(TOKENS["alice"])
    assert alice is not None and alice.client_id == "alice" and TOKENS["alice"] not in alice.model_dump_json()
    ci = await verifier.verify_token(CI_TOKEN)
    assert ci is not None and ci.client_id == "ci"
    assert await verifier.verify_token("") is None
    assert await verifier.verify_token(TOKENS["bob"]) is None


# -- rate limit and busy --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tight(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with a small burst and room for one request in progress."""
    limits = {"rate_limit_per_minute": 6, "rate_limit_burst": 10, "max_concurrent_requests": 1}
    config = chorus_config(fake, auth=tokens_section("alice", "bob", "carol", "dave"), limits=limits)
    with serve(tmp_path_factory.mktemp("tight"), config) as served:
        yield served


def test_a_client_over_its_rate_gets_429_with_retry_after_and_others_are_not_affected(
    tight: RunningServer,
) -> None:
    # A burst of 10, then one request every 10 s: the 11th or 12th quick request is refused.
    statuses = [post(tight.url, token=TOKENS["carol"]).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10 and statuses[-1] == 429
    refused = post(tight.url, token=TOKENS["carol"])
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "rate limited: client 'carol'" in refused.json()["error"]["message"]
    assert post(tight.url, token=TOKENS["dave"]).status_code == 200  # per client, not global


def test_guessing_tokens_is_rate_limited_by_address(tight: RunningServer) -> None:
    statuses = [post(tight.url, token=f"guess-{i:040d}").status_code for i in range(12)]
    assert set(statuses[:10]) == {401} and statuses[-1] == 429


async def test_over_the_concurrency_cap_a_call_gets_a_clear_busy_error_at_once(
    fake: FakeOpenAI, tight: RunningServer
) -> None:
    fake.script("beta", "B", latency_s=2.0)
    try:
        async with (
            httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKENS['alice']}"}, timeout=30) as http_a,
            httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKENS['bob']}"}, timeout=30) as http_b,
            Client(streamable_http_client(tight.url, http_client=http_a), mode="legacy") as first,
            Client(streamable_http_client(tight.url, http_client=http_b), mode="legacy") as second,
        ):
            results: list[Any] = []

            async def slow_call() -> None:
                results.append(await first.call_tool("route_specialist", {"prompt": "take your time"}))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(slow_call)
                with anyio.fail_after(10):
                    while not fake.busy:  # noqa: ASYNC110 - a flag set by the fake's own thread
                        await anyio.sleep(0.02)
                started = time.monotonic()
                with pytest.raises(MCPError, match="server busy") as refused:
                    await second.call_tool("route_specialist", {"prompt": "me too"})
                assert time.monotonic() - started < 1.0, "refused at once, not queued"
                assert "limits.max_concurrent_requests" in str(refused.value)
            assert not results[0].is_error  # the call in progress was not disturbed
            # The slot is free again: the second client is served now.
            fake.script("beta", "B")
            assert not (await second.call_tool("route_specialist", {"prompt": "now?"})).is_error
    finally:
        fake.script("beta", "B")


# -- OAuth resource-server mode -------------------------------------------------------------------


class FakeAuthorizationServer:
    """An introspection endpoint (RFC 7662) on loopback: `good` is active for this server, `elsewhere`
    for another resource; anything else is inactive."""

    def __init__(self) -> None:
        self.resource = ""
        self.seen: list[str] = []
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/introspect", self._introspect, methods=["POST"])])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)

    async def _introspect(self, request: Request) -> JSONResponse:
        token = str((await request.form()).get("token"))
        self.seen.append(token)
        audience = {
            "good-oauth-token": self.resource,
            "elsewhere-oauth-token": "https://other.example.com/mcp",
        }
        if token not in audience:
            return JSONResponse({"active": False})
        return JSONResponse(
            {
                "active": True,
                "client_id": "agent-7",
                "scope": "chorus",
                "aud": audience[token],
                "exp": 4102444800,
            }
        )

    def __enter__(self) -> FakeAuthorizationServer:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


def test_oauth_resource_server_mode_accepts_only_tokens_issued_for_this_server(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    with FakeAuthorizationServer() as authorization:
        port = free_port()
        resource = f"http://127.0.0.1:{port}/mcp"
        authorization.resource = resource
        oauth = {
            "issuer_url": f"http://127.0.0.1:{authorization.port}",
            "resource_server_url": resource,
            "introspection_url": f"http://127.0.0.1:{authorization.port}/introspect",
            "required_scopes": ["chorus"],
        }
        config = chorus_config(fake, auth={"oauth": oauth})
        with serve(tmp_path, config, port=port) as served:
            missing = post(served.url)
            assert missing.status_code == 401
            metadata_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"
            assert f'resource_metadata="{metadata_url}"' in missing.headers["www-authenticate"]
            metadata = httpx.get(metadata_url, timeout=10).json()
            assert metadata["authorization_servers"] == [f"http://127.0.0.1:{authorization.port}/"]
            assert post(served.url, token="good-oauth-token").status_code == 200
            assert (
                post(served.url, token="elsewhere-oauth-token").status_code == 401
            )  # issued for another server
            assert post(served.url, token="inactive-oauth-token").status_code == 401
    assert "good-oauth-token" in authorization.seen


async def test_introspection_failures_are_a_refusal_not_a_crash() -> None:
    config = parse_config(
        "auth: {oauth: {issuer_url: 'http://as', resource_server_url: 'http://rs/mcp', "
        "introspection_url: 'http://as/introspect'}}",
        env={},
    )
    assert config.auth.oauth is not None

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    def not_json(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>")

    for handler in (broken, not_json, lambda request: httpx.Response(500)):
        verifier = IntrospectionVerifier(config.auth.oauth, {}, transport=httpx.MockTransport(handler))
        assert await verifier.verify_token("any-token") is None


async def test_a_finished_request_frees_its_busy_slot_before_its_last_byte_is_sent() -> None:
    # A client may send its next request the moment it has an answer (the SDK lists tools right after a
    # call): with a cap of 1, that request must not find the finished one still counted.
    in_flight = InFlight(1)
    counted_at_send: list[tuple[bool, int]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"event: message\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": False})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            counted_at_send.append((message.get("more_body", False), in_flight.count))

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    gate = HttpGate(
        app,
        auth_required=False,
        resource_metadata_url=None,
        limiter=None,
        in_flight=in_flight,
        max_body=1 << 20,
    )
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    await gate(scope, receive, send)
    assert counted_at_send == [(True, 1), (False, 0)]
    assert in_flight.count == 0
