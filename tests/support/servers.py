"""Real Chorus server processes for tests: a config whose models are the fake OpenAI-compatible server, the
environment such a process runs in, and the server itself over stdio or over streamable HTTP on loopback.

Every config written here names its models itself, so no test inherits what the bundled default would
choose on this machine (the embedded model, when the `local` extra is installed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters

from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "CHORUS_TEST_KEY"
"""The variable that holds the fake provider's key in every test config."""
ALIASES = ("alpha", "beta", "gamma")
HOSTED_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
"""What a streamable-HTTP client sends with every JSON-RPC message."""
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


# -- configuration --------------------------------------------------------------------------------


def fake_models(fake: FakeOpenAI, *, timeout_s: float = 120, **entry: Any) -> dict[str, dict[str, Any]]:
    """alpha, beta and gamma: models served by `fake` (priced, so costs are known), keyed by KEY_ENV."""
    base = {
        "api_base": fake.base_url,
        "api_key_env": KEY_ENV,
        "input_cost_per_mtok": 1,
        "output_cost_per_mtok": 2,
        "timeout_s": timeout_s,
        **entry,
    }
    return {alias: {"model": f"openai/{alias}", **base} for alias in ALIASES}


def fake_provider_config(
    fake: FakeOpenAI, *, deadline_s: float = 240, timeout_s: float = 120, **sections: Any
) -> dict[str, Any]:
    """A config with one strategy of each kind over `fake_models`; `sections` add or replace top-level keys.

    The ensemble is alpha+beta+gamma voting on a choice, the cascade alpha → gamma, the route sends
    everything to beta and the pipeline is one stage on beta. Generous time-outs by default: a loaded
    machine must not turn a slow first call into a failure.
    """
    return {
        "models": fake_models(fake, timeout_s=timeout_s),
        "strategies": {
            "ensemble": {"kind": "ensemble", "members": list(ALIASES), "extract": "choice"},
            "cascade": {"kind": "cascade", "tiers": ["alpha", "gamma"], "threshold": 0.8},
            "route": {
                "kind": "route",
                "default": "general",
                "routes": [{"name": "general", "target": "beta"}],
            },
            "pipeline": {
                "kind": "pipeline",
                "stages": [{"name": "draft", "prompt": "Do: {input}", "step": "beta"}],
            },
        },
        "defaults": {"deadline_s": deadline_s},
        **sections,
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


# -- the process's environment --------------------------------------------------------------------


def chorus_vars(secret: str, **extra: str) -> dict[str, str]:
    """Only what a test server needs: the fake provider's key, the repository on the path, litellm offline
    (for clients that start the server with their own minimal environment)."""
    return {
        KEY_ENV: secret,
        "PYTHONPATH": str(REPO),
        "LITELLM_OFFLINE_MODE": "true",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # The test's own data directory (tests/conftest.py sets one per test): sessions and the response
        # cache never land in the developer's.
        **({"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]} if "XDG_DATA_HOME" in os.environ else {}),
        **extra,
    }


def server_env(secret: str, **extra: str) -> dict[str, str]:
    """This process's environment without any Chorus setting, tracing exporter or hosted key, plus
    `chorus_vars`: the server sees the test's config and nothing of the developer's."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHORUS", "OTEL_")) and k not in HOSTED_KEYS
    }
    return {**inherited, **chorus_vars(secret, **extra)}


# -- processes ------------------------------------------------------------------------------------


def chorus_command(*args: str) -> list[str]:
    """`chorus-mcp <args>` as this interpreter runs it from the checkout."""
    return [sys.executable, "-m", "chorus_mcp.server.cli.main", *args]


def run_chorus(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `chorus-mcp <args>` to the end, stdin closed, output captured as text."""
    return subprocess.run(
        chorus_command(*args),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_chorus_into_a_closed_pipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `chorus-mcp <args>` with stdout a pipe whose reader has already gone (`... | head` after head
    exits): every write is refused, so there is no race with a reader. stderr is captured."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            chorus_command(*args),
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


def stdio_server(config: Path, env: dict[str, str], *flags: str) -> StdioServerParameters:
    """`chorus-mcp serve --config <config>` over stdio, for an MCP client to start."""
    command = chorus_command("serve", "--config", str(config), *flags)
    return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=REPO)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RunningServer:
    url: str
    """The MCP endpoint, `http://127.0.0.1:<port>/mcp`."""
    log_path: Path
    """The server's stderr."""

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def http_server(
    directory: Path,
    env: dict[str, str],
    *,
    config: Path | None = None,
    flags: tuple[str, ...] = (),
    port: int | None = None,
    never_logged: str | None = None,
    start_within_s: float = 60,
) -> Iterator[RunningServer]:
    """`chorus-mcp serve --http` on loopback (a free port unless given), its stderr in a file in
    `directory`; stopped on exit. Without `config` the server reads CHORUS_CONFIG from `env`.

    With `never_logged` (a key, a token), the log is checked not to contain it once the server stopped.
    """
    port = port or free_port()
    command = chorus_command("serve", "--http", "--port", str(port))
    if config is not None:
        command += ["--config", str(config)]
    log_path = directory / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, *flags], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log
        )
    served = RunningServer(f"http://127.0.0.1:{port}/mcp", log_path)
    try:
        _wait_until_listening(process, port, start_within_s, served)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if never_logged is not None:
        assert never_logged not in served.log, "a secret appeared in the server's log"


def _wait_until_listening(
    process: subprocess.Popen[bytes], port: int, within_s: float, served: RunningServer
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}):\n{served.log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the server did not listen on port {port} within {within_s}s:\n{served.log}"
                ) from None
            time.sleep(0.05)
