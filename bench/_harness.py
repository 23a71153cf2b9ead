"""Shared pieces of the benchmarks: the fake provider, a Chorus HTTP server subprocess, statistics."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.fake_openai import FakeOpenAI  # noqa: E402

BENCH_KEY = "sk-bench-not-a-real-key-000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fake_models_config(fake: FakeOpenAI, aliases: list[str], strategies: dict[str, Any]) -> dict[str, Any]:
    return {
        "models": {
            alias: {
                "model": f"openai/{alias}",
                "api_base": fake.base_url,
                "api_key_env": "CHORUS_BENCH_KEY",
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
    }


@contextmanager
def chorus_http(config: dict[str, Any]) -> Iterator[str]:
    """A real `chorus-mcp serve --http` subprocess on loopback; yields its MCP URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(json.dumps(config))
        env = dict(os.environ, CHORUS_BENCH_KEY=BENCH_KEY, PYTHONPATH=str(REPO))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--http",
                "--port",
                str(port),
                "--config",
                str(path),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, process)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
