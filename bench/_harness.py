"""Shared pieces of the benchmarks: the fake provider and the servers as their own processes, statistics,
and the `Figure` rows that `bench/run_all` prints.

Every benchmark runs client, server and fake provider as separate processes (as they are in use), so
none of them times another's hold on the GIL; and every figure is a ratio to a baseline measured in the
same run on the same machine, since this machine is shared and its speed drifts.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BENCH_KEY_ENV = "CHORUS_BENCH_KEY"
BENCH_KEY = "bench-dummy-credential-0000"
BARE_SERVER = REPO / "bench" / "bare_server.py"

_call_numbers = itertools.count(1)


def unique_prompt(prompt: str) -> str:
    """`prompt` with a call number: the response cache is on by default, so a benchmark that repeated one
    prompt would time cache hits. Each call is a miss, which does all the default config's work (lookup,
    provider call, store)."""
    return f"{prompt} (call {next(_call_numbers)})"


@dataclass
class Figure:
    """One row of the table `bench/run_all` prints."""

    name: str
    value: str
    target: str
    holds: bool | None
    """None when the figure is reported without a target."""
    note: str = ""


def load() -> str:
    """The machine's load averages (1, 5, 15 min) and core count, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_DATA_HOME = tempfile.mkdtemp(prefix="chorus-bench-")
"""Where benchmarked servers keep sessions and the response cache (SQLite by default): never the user's
own data directory, and empty at each run so no earlier run's cache answers. Set for this process too,
for the benchmarks that build a server in-process (the footprint's)."""
os.environ["XDG_DATA_HOME"] = _DATA_HOME


def server_env() -> dict[str, str]:
    """The environment a server under test gets: the bench key, this repo importable, a throwaway data
    directory, nothing of ours else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")}
    env.update({BENCH_KEY_ENV: BENCH_KEY, "PYTHONPATH": str(REPO), "XDG_DATA_HOME": _DATA_HOME})
    return env


@contextlib.contextmanager
def fake_provider(
    latency_s: float = 0.0, reply: str = "B", completion_tokens: int | None = None
) -> Iterator[str]:
    """`python -m tests.fake_openai` as its own process (every model answers `reply` after `latency_s`);
    yields its base URL."""
    command = [
        sys.executable,
        "-m",
        "tests.fake_openai",
        "--reply",
        reply,
        "--latency",
        str(latency_s),
        "--prompt-tokens",
        "12",
    ]
    if completion_tokens is not None:
        command += ["--completion-tokens", str(completion_tokens)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=server_env())
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError("the fake provider did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


LOAD_LIMITS = {"rate_limit_per_minute": 0, "max_concurrent_requests": 1024}
"""The HTTP guards (600 requests a minute per client, 32 in progress) would turn a load test into a test
of those guards: benchmarks lift them, as an operator expecting that load would."""


def models_config(
    base_url: str, aliases: list[str], strategies: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A Chorus config whose models are the fake provider's, reached as OpenAI-compatible endpoints."""
    return {
        "limits": LOAD_LIMITS,
        "models": {
            alias: {
                "model": f"openai/{alias}",
                "api_base": base_url,
                "api_key_env": BENCH_KEY_ENV,
                "input_cost_per_mtok": 1,
                "output_cost_per_mtok": 2,
                "timeout_s": 30,
            }
            for alias in aliases
        },
        "allow_unlisted_models": False,
        "strategies": strategies,
        "defaults": {"deadline_s": 60},
        "log_level": "WARNING",
        **extra,
    }


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def http_server(command: list[str], port: int, path: str = "/mcp") -> Iterator[Served]:
    """Run `command` (an MCP server listening on `port`) and yield its URL once it accepts connections."""
    process = subprocess.Popen(
        command, env=server_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process)
        yield Served(f"http://127.0.0.1:{port}{path}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chorus_http(config: dict[str, Any]) -> Iterator[Served]:
    """`chorus-mcp serve --http` on loopback with `config`."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        command = [
            sys.executable,
            "-m",
            "chorus_mcp.server.cli.main",
            "serve",
            "--http",
            "--port",
            str(port),
            "--config",
            str(path),
            "--log-level",
            "WARNING",
        ]
        with http_server(command, port) as served:
            yield served


@contextlib.contextmanager
def bare_http() -> Iterator[Served]:
    """The baseline: a bare `MCPServer` with one echo tool, on the same transport."""
    port = free_port()
    with http_server([sys.executable, str(BARE_SERVER), "--http", "--port", str(port)], port) as served:
        yield served


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start listening")


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
