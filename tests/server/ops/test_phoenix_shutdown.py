"""`chorus-mcp serve --phoenix` (over streamable HTTP and over stdio) stops the Phoenix it started when it is
itself stopped, by SIGTERM (a service manager, `kill`, a container runtime) as by SIGINT (Ctrl-C): no
Phoenix is left on its port, and the server still ends by the signal.

What is checked here is the child process's lifecycle, so the Phoenix is a stand-in: a `phoenix` package
put first on the server's path whose `phoenix.server.main` answers the health check and writes its pid.
The server starts it exactly as it starts the real one (`python -m chorus_mcp.server.ops.phoenix serve`,
through `server.ops.phoenix.start_local_phoenix`), in seconds instead of a minute. The real Phoenix is
stopped the same way in `test_phoenix.py` (the phoenix extra), which proves the integration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    REPO,
    chorus_command,
    fake_provider_config,
    free_port,
    server_env,
    write_config,
)

pytestmark = pytest.mark.slow

SECRET = "sk-chorus-shutdown-0123456789abcdef"
START_S = 120.0
"""Generous: the server imports its stack and the stand-in starts a Python process, on a loaded machine."""

STANDIN_MAIN = '''
"""A stand-in for Phoenix's server: answers /healthz and accepts spans, on PHOENIX_HOST:PHOENIX_PORT."""
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def main():
    server = HTTPServer((os.environ["PHOENIX_HOST"], int(os.environ["PHOENIX_PORT"])), Handler)
    Path(os.environ["PHOENIX_WORKING_DIR"], "standin.pid").write_text(str(os.getpid()))
    server.serve_forever()
'''


def _standin_packages(folder: Path) -> Path:
    """`phoenix.server.main` (the stand-in) and `grpc.aio` (what the launcher patches), under `folder`."""
    for package in ("phoenix", "phoenix/server", "grpc"):
        (folder / package).mkdir(parents=True)
        (folder / package / "__init__.py").write_text("")
    (folder / "phoenix/server/main.py").write_text(textwrap.dedent(STANDIN_MAIN))
    (folder / "grpc/aio.py").write_text("def server(*args, **kwargs):\n    return None\n")
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition: Callable[[], object], within_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {within_s:.0f}s; server log:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("transport", ["http", "stdio"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_server_stopped_by_a_signal_stops_the_phoenix_it_started_and_ends_by_that_signal(
    signum: signal.Signals, transport: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    standin = _standin_packages(tmp_path / "standin")
    working_dir = tmp_path / "phoenix"
    phoenix_port, http_port = free_port(), free_port()
    config = write_config(
        tmp_path / "chorus.yaml",
        fake_provider_config(fake_openai, tracing={"phoenix_port": phoenix_port}),
    )
    env = server_env(
        SECRET, PYTHONPATH=os.pathsep.join([str(standin), str(REPO)]), PHOENIX_WORKING_DIR=str(working_dir)
    )
    log = tmp_path / "server.log"
    command = chorus_command("serve", "--config", str(config), "--phoenix")
    if transport == "http":
        command += ["--http", "--port", str(http_port)]
    with log.open("wb") as out:
        # Over stdio, stdin stays open, as an MCP host keeps it: the server must not wait for it to close.
        server = subprocess.Popen(command, env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=out, stderr=out)
    pid_file = working_dir / "standin.pid"
    phoenix_pid: int | None = None
    try:
        _wait_for(
            lambda: pid_file.is_file() and pid_file.read_text(), START_S, "the stand-in Phoenix started", log
        )
        phoenix_pid = int(pid_file.read_text())
        _wait_for(lambda: _listening(phoenix_port), START_S, "the stand-in answered", log)
        if transport == "http":
            _wait_for(lambda: _serving(http_port), START_S, "the server listened", log)
        else:
            _wait_for(lambda: "Phoenix is up" in log.read_text(errors="replace"), START_S, "the notice", log)

        server.send_signal(signum)
        # Ended by the signal itself, as a process that does not handle it is: what supervisors expect.
        assert server.wait(timeout=60) == -signum, log.read_text(errors="replace")

        assert not _alive(phoenix_pid), f"Phoenix (pid {phoenix_pid}) outlived the server"
        assert not _listening(phoenix_port)
        assert "stopping Phoenix" in log.read_text(errors="replace")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        if server.poll() is None:
            server.kill()
            server.wait()
        if phoenix_pid is not None and _alive(phoenix_pid):
            os.kill(phoenix_pid, signal.SIGKILL)


def _serving(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
    except httpx.HTTPError:
        return False
    return True
