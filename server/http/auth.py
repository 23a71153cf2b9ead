"""Who may use the HTTP transport, and the gate every HTTP request passes.

- Named bearer tokens (`auth.tokens`): a token comes from an environment variable, or config holds
  its SHA-256 digest. A presented token's digest is compared with every configured one in constant
  time (`hmac.compare_digest`, no early exit), through the SDK's `TokenVerifier` hook; the token's
  name identifies the client. Revoking one token is removing its name.
- OAuth resource-server mode (`auth.oauth`): tokens issued by an authorization server are checked by
  introspection (RFC 7662), must be active, issued for this server (`aud`) and carry the required
  scopes; the SDK publishes the protected-resource metadata clients discover the server with.
- DNS-rebinding protection is always on: only loopback Host/Origin values and the configured ones.
- `bind_refusal`: HTTP beyond loopback needs authentication; a wildcard bind needs `allowed_hosts`.
- `HttpGate` (inside the SDK's authentication middleware): per-client rate limit, a 401 that says
  what is missing (never echoing a token), and the global cap on requests in progress ("busy").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chorus_mcp.config.schema import AuthConfig, ChorusConfig, OAuthResourceServer
from chorus_mcp.server.http.limits import InFlight, RateLimiter
from chorus_mcp.server.http.quotas import Quotas
from chorus_mcp.strategies.core.errors import ChorusError, register_secret
from chorus_mcp.strategies.sessions.stores import open_quota_store

log = logging.getLogger("chorus.auth")

MIN_TOKEN_CHARS = 32
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
_SHOWN_TOKEN = "[bearer token]"
"""What `AccessToken.token` holds: the request context never carries the secret itself."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def resolve_tokens(auth: AuthConfig, env: Mapping[str, str]) -> tuple[dict[str, bytes], list[str]]:
    """Each usable token's digest by name, and what is wrong with the others."""
    digests: dict[str, bytes] = {}
    problems: list[str] = []
    for name, source in auth.tokens.items():
        if source.sha256 is not None:
            digests[name] = bytes.fromhex(source.sha256)
            continue
        token = env.get(source.env or "", "")
        if len(token) < MIN_TOKEN_CHARS:
            state = "is not set" if not token else f"holds fewer than {MIN_TOKEN_CHARS} characters"
            problems.append(f"auth.tokens.{name}: environment variable {source.env} {state}")
            continue
        register_secret(token)
        digests[name] = _digest(token)
    return digests, problems


class StaticTokenVerifier(TokenVerifier):
    """Accepts the configured named tokens; the client id of an accepted token is its name."""

    def __init__(self, digests: Mapping[str, bytes]) -> None:
        self._digests = dict(digests)

    def name_of(self, token: str) -> str | None:
        presented = _digest(token)
        found = None
        for name, expected in self._digests.items():  # every entry, match or not: constant time
            if hmac.compare_digest(presented, expected):
                found = name
        return found

    async def verify_token(self, token: str) -> AccessToken | None:
        name = self.name_of(token)
        return None if name is None else AccessToken(token=_SHOWN_TOKEN, client_id=name, scopes=[])


class IntrospectionVerifier(TokenVerifier):
    """Checks an OAuth access token with the authorization server's introspection endpoint (RFC 7662)."""

    def __init__(
        self,
        oauth: OAuthResourceServer,
        env: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = str(oauth.introspection_url)
        self._resource = str(oauth.resource_server_url).rstrip("/")
        client_id = env.get(oauth.client_id_env or "", "")
        secret = env.get(oauth.client_secret_env or "", "")
        register_secret(secret)
        self._client_auth: tuple[str | bytes, str | bytes] | None = (
            (client_id, secret) if client_id and secret else None
        )
        self._transport = transport

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            async with httpx.AsyncClient(
                timeout=10, transport=self._transport, auth=self._client_auth
            ) as client:
                response = await client.post(self._url, data={"token": token})
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("token introspection failed: %s", type(exc).__name__)
            return None
        if not isinstance(data, dict) or data.get("active") is not True:
            return None
        aud = data.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        mine = next((a for a in audiences if str(a).rstrip("/") == self._resource), None)
        expires = data.get("exp")
        scope = data.get("scope")
        return AccessToken(
            token=_SHOWN_TOKEN,
            client_id=str(data.get("client_id") or data.get("sub") or "oauth-client"),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            resource=str(mine) if mine is not None else (str(audiences[0]) if audiences else None),
            subject=str(data["sub"]) if data.get("sub") else None,
            claims={"iss": data["iss"]} if data.get("iss") else None,
        )


def auth_options(config: ChorusConfig, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`token_verifier` and `auth` for `MCPServer(...)`; empty when no authentication is configured.

    Only the HTTP transport uses them. A token whose variable is unset is left out here; `bind_refusal`
    stops an HTTP start-up that lacks one.
    """
    auth = config.auth
    env = os.environ if env is None else env
    if auth.oauth is not None:
        settings = AuthSettings(
            issuer_url=auth.oauth.issuer_url,
            resource_server_url=auth.oauth.resource_server_url,
            required_scopes=auth.oauth.required_scopes or None,
            validate_token_resource=True,
        )
        return {"token_verifier": IntrospectionVerifier(auth.oauth, env), "auth": settings}
    if auth.tokens:
        digests, _problems = resolve_tokens(auth, env)
        # Static tokens need no authorization server; the SDK still wants an issuer, which it publishes
        # nowhere without `resource_server_url`.
        settings = AuthSettings(issuer_url=AnyHttpUrl("http://127.0.0.1"), resource_server_url=None)
        return {"token_verifier": StaticTokenVerifier(digests), "auth": settings}
    return {}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "[::]", "*")


def bind_refusal(config: ChorusConfig, host: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why `serve --http` must not start on `host` with this config, or None."""
    auth = config.auth
    env = os.environ if env is None else env
    if auth.tokens:
        _digests, problems = resolve_tokens(auth, env)
        if problems:
            return "cannot check bearer tokens: " + "; ".join(problems)
    if is_loopback(host):
        return None
    if not auth.enabled:
        return (
            f"refusing to listen on {host}: this server spends its users' provider credit and has no "
            "authentication configured; set auth.tokens or auth.oauth (README, Security), "
            "or bind to 127.0.0.1"
        )
    if _is_wildcard(host) and not auth.allowed_hosts:
        return (
            f"refusing to listen on {host} without auth.allowed_hosts: list the host names clients use "
            "(requests with any other Host header are refused, against DNS rebinding)"
        )
    return None


def transport_security(config: ChorusConfig, host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection: loopback, the bound address, and the configured hosts and origins."""
    hosts = [*LOOPBACK_HOSTS]
    extra = [*config.auth.allowed_hosts]
    if not _is_wildcard(host) and not is_loopback(host):
        extra.append(f"[{host}]" if ":" in host else host)
    for entry in extra:
        hosts.append(entry)
        if entry.endswith("]") or ":" not in entry:  # no port given: any port
            hosts.append(f"{entry}:*")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[*LOOPBACK_ORIGINS, *config.auth.allowed_origins],
    )


# -- the gate -------------------------------------------------------------------------------------


def _jsonrpc_error(
    status: int, message: str, request_id: object = None, retry_after: int | None = None
) -> Response:
    """An HTTP error whose body is a JSON-RPC error, so MCP clients show `message` to their user."""
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32000, "message": message}}
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def unauthorized(authorization: str | None, resource_metadata_url: str | None) -> Response:
    """401 saying what is missing or wrong with the credentials, without repeating them."""
    if authorization is None:
        description = "missing bearer token: send the header 'Authorization: Bearer <token>'"
    elif not authorization.lower().startswith("bearer "):
        description = "the Authorization header must use the Bearer scheme: 'Authorization: Bearer <token>'"
    elif not authorization[7:].strip():
        description = "the bearer token is empty"
    else:
        description = "bearer token not accepted: it is unknown, revoked or expired"
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    if resource_metadata_url:
        challenge += f', resource_metadata="{resource_metadata_url}"'
    body = {"error": "invalid_token", "error_description": description}
    return JSONResponse(body, status_code=401, headers={"www-authenticate": challenge})


class HttpGate:
    """Per-client rate limit, clear 401s, and the cap on requests in progress.

    Runs inside the SDK's authentication middleware (so `scope["user"]` says who is calling) and before
    its routes. The cap counts JSON-RPC requests only: a notification, or a client's reply to a
    server's request (a sampling result the server is waiting for), is never refused as busy, and nor
    is a long-lived `subscriptions/listen` stream or the GET stream.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth_required: bool,
        resource_metadata_url: str | None,
        limiter: RateLimiter | None,
        in_flight: InFlight,
        max_body: int,
        quotas: Quotas | None = None,
        stateful: bool = True,
    ) -> None:
        self.app = app
        self._auth_required = auth_required
        self._metadata_url = resource_metadata_url
        self._limiter = limiter
        self._in_flight = in_flight
        self._max_body = max_body
        self._quotas = quotas
        self._stateful = stateful

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        client = user.username if isinstance(user, AuthenticatedUser) else None
        address = scope["client"][0] if scope.get("client") else "unknown"
        if self._limiter is not None and (wait := self._limiter.take(client or address)) is not None:
            log.info("rate limited: %s", client or address)
            who = f"client {client!r}" if client else f"address {address}"
            retry = RateLimiter.retry_after(wait)
            message = f"rate limited: {who} sent too many requests (limits.rate_limit_per_minute); "
            message += f"retry in {retry}s"
            await _jsonrpc_error(429, message, retry_after=retry)(scope, receive, send)
            return
        if self._auth_required and client is None and not scope["path"].startswith("/.well-known/"):
            headers = dict(scope["headers"])
            raw = headers.get(b"authorization")
            log.info("unauthenticated request from %s refused", address)
            response = unauthorized(raw.decode("latin-1") if raw is not None else None, self._metadata_url)
            await response(scope, receive, send)
            return
        if self._quotas is not None:
            try:
                refusal = await self._quotas.rate_refusal(client or address)
            except ChorusError as exc:
                await _jsonrpc_error(503, f"quota store unavailable: {exc.message}", retry_after=1)(
                    scope, receive, send
                )
                return
            if refusal is not None:
                message, wait = refusal
                log.info("rate limited (per client quota): %s", client or address)
                retry = RateLimiter.retry_after(wait)
                await _jsonrpc_error(429, f"{message}; retry in {retry}s", retry_after=retry)(
                    scope, receive, send
                )
                return
        if self._quotas is not None and self._stateful and scope["method"] in ("POST", "GET", "DELETE"):
            await self._with_session_quota(client or address, scope, receive, send)
            return
        await self._gated(scope, receive, send)

    async def _with_session_quota(self, client: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the client's open transport sessions: an opening request takes a lease (refused past
        the quota), each request on a session renews it, a DELETE or a 404 gives it back."""
        assert self._quotas is not None
        quotas = self._quotas
        session_id = _header(scope, b"mcp-session-id")
        status: int | None = None
        opened: str | None = None

        async def watch(message: Message) -> None:
            nonlocal status, opened
            if message["type"] == "http.response.start":
                status = message["status"]
                opened = _header(message, b"mcp-session-id")
            await send(message)

        try:
            if session_id is None:
                if scope["method"] != "POST":
                    await self._gated(scope, receive, send)
                    return
                provisional = await quotas.open_session(client)
                if provisional is None:
                    log.warning("refused a new transport session for %s: at its quota", client)
                    await _jsonrpc_error(429, quotas.session_refusal(client), retry_after=60)(
                        scope, receive, send
                    )
                    return
                try:
                    await self._gated(scope, receive, watch)
                finally:
                    established = opened if status is not None and status < 400 else None
                    with anyio.CancelScope(shield=True):
                        await quotas.session_opened(client, provisional, established)
                return
            await quotas.session_used(client, session_id)
            try:
                await self._gated(scope, receive, watch)
            finally:
                if status == 404 or (scope["method"] == "DELETE" and status is not None and status < 400):
                    with anyio.CancelScope(shield=True):
                        await quotas.session_closed(client, session_id)
        except ChorusError as exc:
            if status is None:
                await _jsonrpc_error(503, f"quota store unavailable: {exc.message}", retry_after=1)(
                    scope, receive, send
                )
            else:
                log.warning("transport-session quota not updated for %s: %s", client, exc.message)

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, past authentication and quotas: the body limit and the busy cap, then the app."""
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, self._max_body)
        if body is None:
            await Response("Request body too large", status_code=413)(scope, receive, send)
            return
        counted, request_id = _is_request(body)
        if counted and not self._in_flight.try_enter():
            limit = self._in_flight.limit
            message = (
                f"server busy: {limit} requests are in progress, its limit (limits.max_concurrent_requests); "
                "retry shortly"
            )
            log.warning("busy: refused a request (%d in progress)", limit)
            await _jsonrpc_error(503, message, request_id, retry_after=1)(scope, receive, send)
            return
        if not counted:
            await self.app(scope, _replay(body, receive), send)
            return
        left = False

        def leave() -> None:
            nonlocal left
            if not left:
                left = True
                self._in_flight.leave()

        async def send_then_leave(message: Message) -> None:
            # The slot is free before the response's last byte goes out: a client that sends its next
            # request the moment it has the answer (the SDK lists tools right after a call) must not
            # find its own finished request still counted.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                leave()
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), send_then_leave)
        finally:
            leave()


def _header(scope_or_message: Scope | Message, name: bytes) -> str | None:
    for key, value in scope_or_message.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_request(body: bytes) -> tuple[bool, object]:
    """Whether the body is a JSON-RPC request that does work (and its id, for an error reply)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        return False, None  # the transport answers with a parse error
    if not isinstance(message, dict) or "method" not in message or message.get("id") is None:
        return False, None  # a notification or a reply to the server
    return message.get("method") != "subscriptions/listen", message.get("id")


def http_app(
    server: MCPServer[Any],
    config: ChorusConfig,
    *,
    host: str,
    stateless: bool,
    json_response: bool,
) -> ASGIApp:
    """The streamable-HTTP app: the SDK's (auth, Host/Origin checks, body limit) with the gate inside."""
    limits = config.limits
    app = server.streamable_http_app(
        streamable_http_path=config.http.path,
        json_response=json_response,
        stateless_http=stateless,
        max_request_body_size=limits.max_request_bytes,
        transport_security=transport_security(config, host),
        host=host,
    )
    oauth = config.auth.oauth
    metadata_url = str(build_resource_metadata_url(oauth.resource_server_url)) if oauth else None
    limiter = None
    if limits.rate_limit_per_minute > 0:
        limiter = RateLimiter(limits.rate_limit_per_minute, limits.rate_limit_burst)
    app.user_middleware.append(
        Middleware(
            HttpGate,
            auth_required=config.auth.enabled,
            resource_metadata_url=metadata_url,
            limiter=limiter,
            in_flight=InFlight(limits.max_concurrent_requests),
            max_body=limits.max_request_bytes,
            quotas=Quotas(
                limits.per_client, open_quota_store(config.sessions), call_lease_s=limits.max_deadline_s + 120
            ),
            stateful=not stateless,
        )
    )
    return app


def serve_http(
    server: MCPServer[Any],
    config: ChorusConfig,
    *,
    host: str,
    port: int,
    stateless: bool,
    json_response: bool,
    log_level: str = "INFO",
) -> None:
    """Serve streamable HTTP until interrupted (what `MCPServer.run("streamable-http")` does, gated)."""
    import anyio
    import uvicorn

    app = http_app(server, config, host=host, stateless=stateless, json_response=json_response)
    # log_config=None: uvicorn's loggers go through the server's own logging (stderr, structured);
    # its default config would send the access log to stdout.
    # Clients (httpx) keep idle connections for 5 s, uvicorn's default too: a request sent as both give up
    # meets a closed socket and ends the MCP session. Keeping ours open longer removes that race.
    uvicorn_config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level.lower(), log_config=None, timeout_keep_alive=75
    )
    anyio.run(uvicorn.Server(uvicorn_config).serve)
