"""`OriginPool`: the fast path's HTTP transport, with O(1) pool work per request.

httpx's default transport hands every request to httpcore's `AsyncConnectionPool`, which re-examines
every pooled connection on every request and on every response it closes: a socket poll for each idle
one, and for each queued request two more passes over all of them. With hundreds of member calls in
flight to one provider that is quadratic; profiled in a burst of 50 `ensemble_vote` calls (250 model
calls at once) it was ~25 % of the server's CPU. This transport keeps, per origin, a stack of idle
keep-alive connections: a request takes the most recently used one (checking only that one), or opens a
new connection; closing the response puts it back. The HTTP/1.1 exchange itself is httpcore's
(`AsyncHTTPConnection`), and httpcore's errors become httpx's exactly as httpx's own transport maps them,
so callers see the same exceptions either way.

There is no cap on connections here: how many calls run at once per provider is the `CallGuard`'s cap.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import httpcore
import httpx

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # Most specific first: the first match wins.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The TLS context every https connection shares (certifi's CAs, as httpx's default). Making it
    takes ~20-200 ms of CPU, so the server's warm-up thread makes it before the first call needs it."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx.create_ssl_context()
        return _tls


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, mapped in _ERRORS:
            if isinstance(exc, core):
                raise mapped(str(exc)) from exc
        raise


_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    return origin.scheme, origin.host, origin.port  # `Origin` compares by these but is not hashable


class OriginPool(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections, a stack of idle ones per origin (scheme, host, port)."""

    def __init__(self, *, max_idle_per_origin: int = 32, keepalive_expiry_s: float = 30.0) -> None:
        self._max_idle = max_idle_per_origin
        self._keepalive_expiry_s = keepalive_expiry_s
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and read the whole answer; the connection is back in the pool on return."""
        response = await self.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def idle_connections(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    async def _checkout(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(_key(origin))
        while stack:
            connection = stack.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()  # the server closed it, or it outlived its keep-alive
        return httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=tls_context() if origin.scheme == b"https" else None,
            keepalive_expiry=self._keepalive_expiry_s,
        )

    async def give_back(self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection) -> None:
        stack = self._idle.setdefault(_key(origin), [])
        if self._closed or not connection.is_idle() or len(stack) >= self._max_idle:
            with anyio.CancelScope(shield=True):
                await connection.aclose()
        else:
            stack.append(connection)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        origin = core_request.url.origin
        connection = await self._checkout(origin)
        try:
            with _as_httpx_errors():
                response = await connection.handle_async_request(core_request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await connection.aclose()
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ReturnedOnClose(self, origin, connection, response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        stacks, self._idle = self._idle, {}
        with anyio.CancelScope(shield=True):
            for stack in stacks.values():
                for connection in stack:
                    await connection.aclose()


class _ReturnedOnClose(httpx.AsyncByteStream):
    """The response body; closing it gives the connection back to the pool (if it can be reused)."""

    def __init__(
        self,
        pool: OriginPool,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
        response: httpcore.Response,
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._response = response
        self._returned = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        try:
            with _as_httpx_errors():
                await self._response.aclose()
        finally:
            if not self._returned:
                self._returned = True
                await self._pool.give_back(self._origin, self._connection)
