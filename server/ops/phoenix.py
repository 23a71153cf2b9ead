"""A local Arize Phoenix for `chorus-mcp serve --phoenix`: on loopback, offline-safe, stopped with the server.

Phoenix is the optional `phoenix` extra (hundreds of MB): nothing else in Chorus needs it. It runs as its
own process (`python -m server.ops.phoenix serve`, which is Phoenix's own CLI with one change: its
OTLP/gRPC receiver, which Phoenix binds to every interface, is bound to loopback like the rest), with its
data in Chorus's data folder, so traces survive restarts. Starting takes 20-30 s on an idle machine and
a minute or more on a busy one (measured: 30 s here with other work running, 69 s on a loaded 2-core
machine), most of it loading the package; a first start also creates its database. While it starts,
`prepare` says every `PROGRESS_S` how far it is.

Chorus exports over OTLP/HTTP to it. Spans made while it is still starting wait (`LocalPhoenix.ready`),
and so do spans made before Phoenix has Chorus's model prices (`server.ops.phoenix_prices`): Phoenix
prices a span once, when it arrives. A Phoenix already answering on the port is used as it is, and left
running; one started here stops with the server, however the server is stopped (`server.cli.main`);
start Phoenix yourself to keep its UI up between sessions.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chorus_mcp.server.ops.phoenix_prices import SETTLE_S, PhoenixPricesError, PriceReport, register_prices
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.tracing.prices import SpanPrices

HOST = "127.0.0.1"
OFFLINE_ENV = {
    # No fonts or scripts from a CDN in the UI, no analytics pixels: Phoenix works without a network.
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_TELEMETRY_ENABLED": "false",
}
PROGRESS_S = 15.0
"""How often a Phoenix still starting says so."""
log = logging.getLogger("chorus.phoenix")
INSTALL_HINT = "--phoenix needs the 'phoenix' extra: uv run --extra phoenix chorus-mcp serve --phoenix"


def installed() -> bool:
    return importlib.util.find_spec("phoenix") is not None


def default_working_dir() -> Path:
    """Where Phoenix keeps its database: $PHOENIX_WORKING_DIR, else Chorus's data folder."""
    if os.environ.get("PHOENIX_WORKING_DIR"):
        return Path(os.environ["PHOENIX_WORKING_DIR"])
    import platformdirs

    return Path(platformdirs.user_data_dir("chorus-mcp")) / "phoenix"


@dataclass
class LocalPhoenix:
    url: str
    """Base URL of the UI and of the OTLP/HTTP receiver (`/v1/traces`)."""
    process: subprocess.Popen[bytes] | None = None
    """None when a Phoenix that was already running is used."""
    log_path: Path | None = None

    _given_up: threading.Event = field(default_factory=threading.Event)
    _settled: threading.Event = field(default_factory=threading.Event)

    def up(self, timeout_s: float) -> bool:
        """Wait until Phoenix answers its health check (False: it exited, did not start in time, or the
        server is exiting and stopped waiting: `give_up_waiting`)."""
        deadline = time.monotonic() + timeout_s
        while not self._given_up.is_set():  # looks at least once, whatever the time-out
            if self.process is not None and self.process.poll() is not None:
                return False
            if _healthy(self.url):
                return True
            if time.monotonic() >= deadline:
                return False
            self._given_up.wait(0.25)
        return False

    def ready(self, timeout_s: float) -> bool:
        """Wait until spans may be sent: Phoenix is up and has Chorus's model prices (`prepare`)."""
        deadline = time.monotonic() + timeout_s
        if not self.up(timeout_s):
            return False
        while not self._settled.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self._given_up.is_set():
                return False
        return True

    def prepare(self, prices: SpanPrices, say: Callable[[str], None]) -> threading.Thread:
        """In a thread: wait for Phoenix (saying how it goes, when it was started here), give it the prices,
        then let the spans go (`ready`). Spans made meanwhile wait in the exporter's queue."""
        thread = threading.Thread(
            target=self._prepare, args=(prices, say), name="chorus-phoenix", daemon=True
        )
        thread.start()
        return thread

    def _prepare(self, prices: SpanPrices, say: Callable[[str], None]) -> None:
        try:
            if self.process is not None and not self._wait_saying(say):
                return
            if not self.up(0):
                return
            report = _give_prices(self.url, prices)
            if report is not None and report.changed:
                self._given_up.wait(SETTLE_S)  # Phoenix re-reads its model table every 5 s
        finally:
            self._settled.set()

    def _wait_saying(self, say: Callable[[str], None]) -> bool:
        started = time.monotonic()
        while not self.up(PROGRESS_S):
            if self._given_up.is_set():
                return False
            if self.process is not None and self.process.poll() is not None:
                say(f"Phoenix exited ({self.process.returncode}); see {self.log_path}")
                return False
            say(f"Phoenix is still starting ({time.monotonic() - started:.0f} s): {self._phase()}")
        say(f"Phoenix is up after {time.monotonic() - started:.0f} s: open {self.url}")
        return True

    def _phase(self) -> str:
        """What Phoenix is doing, as far as its log tells (it writes nothing while its package loads)."""
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            text = ""
        if "Migrations completed" in text:
            return "its database is ready; starting its web server"
        if "igrat" in text or "sqlalchemy" in text:
            return "setting up its database"
        return "loading its package (the longest part)"

    def give_up_waiting(self) -> None:
        """At exit: spans still waiting for a Phoenix that is not up yet are dropped, not waited for."""
        self._given_up.set()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _give_prices(url: str, prices: SpanPrices) -> PriceReport | None:
    """Give Phoenix Chorus's model prices, saying in the log what could not be given; None if it failed."""
    for alias in prices.unpriced:
        log.info("no price known for model %r: Phoenix prices its spans from its own table, if at all", alias)
    for conflict in prices.conflicts:
        log.warning("one model name at two prices, left to Phoenix's own table: %s", conflict)
    try:
        report = register_prices(url, prices)
    except PhoenixPricesError as exc:
        log.warning("could not give Phoenix the model prices (its costs may differ from Chorus's): %s", exc)
        return None
    for name in report.kept_theirs:
        log.warning("Phoenix has a custom model of its own for %r: its price is used there", name)
    log.info(
        "Phoenix prices models as Chorus does",
        extra={
            "models_created": len(report.created),
            "models_updated": len(report.updated),
            "models_unchanged": len(report.unchanged),
        },
    )
    return report


def start_local_phoenix(port: int, working_dir: Path) -> LocalPhoenix:
    """Start Phoenix on 127.0.0.1:`port` (another free port if that one is taken by something else)."""
    if not installed():
        raise ConfigError(INSTALL_HINT)
    if _healthy(f"http://{HOST}:{port}"):
        return LocalPhoenix(url=f"http://{HOST}:{port}")
    if _busy(port):
        port = free_port()
    working_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not _secret_or_otel(k)}
    env.update(
        OFFLINE_ENV,
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_HOST=HOST,
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(free_port()),
    )
    log_path = working_dir / "phoenix.log"
    with log_path.open("ab") as log:
        # Never stdout: it belongs to the stdio transport. Same process group as the server: an MCP
        # host that stops the server's group stops Phoenix with it.
        process = subprocess.Popen(
            [sys.executable, "-m", "chorus_mcp.server.ops.phoenix", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    phoenix = LocalPhoenix(url=f"http://{HOST}:{port}", process=process, log_path=log_path)
    atexit.register(phoenix.stop)
    return phoenix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _secret_or_otel(name: str) -> bool:
    """Variables Phoenix must not inherit: provider keys, and OTEL_* meant for Chorus's own exporter."""
    return name.endswith(("_API_KEY", "_TOKEN", "_SECRET")) or name.startswith("OTEL_")


def _loopback_grpc() -> None:
    """Make gRPC servers bind `[::]:port` as `127.0.0.1:port` (Phoenix's OTLP/gRPC receiver)."""
    grpc_aio: Any = importlib.import_module("grpc.aio")  # installed with Phoenix
    make_server = grpc_aio.server

    def server(*args: Any, **kwargs: Any) -> Any:
        created = make_server(*args, **kwargs)
        for method in ("add_insecure_port", "add_secure_port"):
            original = getattr(created, method)

            def bound(address: str, *rest: Any, _original: Any = original) -> Any:
                return _original(address.replace("[::]", HOST, 1), *rest)

            setattr(created, method, bound)
        return created

    grpc_aio.server = server


if __name__ == "__main__":
    _loopback_grpc()
    phoenix_main: Any = importlib.import_module("phoenix.server.main")
    sys.argv = ["phoenix", *sys.argv[1:]]
    sys.exit(phoenix_main.main())
