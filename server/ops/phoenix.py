"""A local Arize Phoenix for `chorus-mcp serve --phoenix`: on loopback, offline-safe, stopped with the server.

Phoenix is the optional `phoenix` extra (hundreds of MB, 10 s or more to start): nothing else in Chorus
needs it. It runs as its own process (`python -m server.phoenix serve`, which is Phoenix's own CLI with
one change: its OTLP/gRPC receiver, which Phoenix binds to every interface, is bound to loopback like
the rest), with its data in Chorus's data folder, so traces survive restarts. Chorus exports over
OTLP/HTTP to it; spans made while it is still starting wait for it (`LocalPhoenix.ready`).
A Phoenix already answering on the port is used as it is, and left running; one started here stops
with the server (start Phoenix yourself to keep its UI up between sessions).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chorus_mcp.strategies.core.errors import ConfigError

HOST = "127.0.0.1"
OFFLINE_ENV = {
    # No fonts or scripts from a CDN in the UI, no analytics pixels: Phoenix works without a network.
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_TELEMETRY_ENABLED": "false",
}
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

    def ready(self, timeout_s: float) -> bool:
        """Wait until Phoenix answers its health check (False: it exited, did not start in time, or the
        server is exiting and stopped waiting: `give_up_waiting`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._given_up.is_set():
            if self.process is not None and self.process.poll() is not None:
                return False
            if _healthy(self.url):
                return True
            self._given_up.wait(0.25)
        return False

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
