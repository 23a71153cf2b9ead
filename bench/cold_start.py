"""Figure 3, cold start: spawn → `initialize` → `tools/list` answered, over stdio, for `chorus-mcp serve`
on the bundled default configuration (OpenAI, Anthropic and Gemini models: litellm is needed, and is
warmed up in the background) and for a bare `MCPServer` with one tool (bench/bare_server.py) started
the same way, by the same interpreter. The runs alternate; the figure is the ratio of the medians.

The client speaks raw JSON-RPC over the pipes (protocol 2025-11-25), so no client library start-up is
timed.

    .venv/bin/python bench/cold_start.py [--runs 7] [--importtime]

`--importtime` prints the modules Chorus imports before its first answer, heaviest first (from
`python -X importtime`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO

from bench._harness import BARE_SERVER, REPO, Figure, load, median, server_env

CHORUS = [sys.executable, "-m", "chorus_mcp.server.cli.main", "serve", "--log-level", "WARNING"]
BARE = [sys.executable, str(BARE_SERVER)]
TARGET = 1.3

_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "cold-start-bench", "version": "1"},
    },
}
_INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def _send(pipe: IO[bytes], message: Mapping[str, object]) -> None:
    pipe.write(json.dumps(message).encode() + b"\n")
    pipe.flush()


def _answer(pipe: IO[bytes], request_id: int) -> dict[str, object]:
    while True:
        line = pipe.readline()
        if not line:
            raise RuntimeError("the server closed its output before answering")
        message = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"error answer: {message['error']}")
            return dict(message)


def time_to_tools(command: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds from spawn to the `tools/list` answer, and how many tools it listed."""
    env = {**server_env(), **(extra_env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        _send(process.stdin, _INITIALIZE)
        _answer(process.stdout, 1)
        _send(process.stdin, _INITIALIZED)
        _send(process.stdin, _LIST)
        listed = _answer(process.stdout, 2)
        elapsed = time.perf_counter() - started
    finally:
        process.kill()
        process.wait()
    result = listed["result"]
    assert isinstance(result, dict)
    return elapsed, len(result["tools"])


def measure(runs: int = 7) -> dict[str, float]:
    time_to_tools(BARE)  # page the interpreter and the SDK into the OS cache for both
    time_to_tools(CHORUS)
    chorus: list[float] = []
    bare: list[float] = []
    for _ in range(runs):
        bare.append(time_to_tools(BARE)[0])
        elapsed, tools = time_to_tools(CHORUS)
        assert tools >= 6
        chorus.append(elapsed)
    return {"chorus": median(chorus), "bare": median(bare), "chorus_min": min(chorus), "bare_min": min(bare)}


def figures(result: dict[str, float]) -> list[Figure]:
    ratio = result["chorus"] / result["bare"]
    return [
        Figure(
            "cold start to tools/list over stdio / bare MCPServer",
            f"{ratio:.2f}",
            f"<= {TARGET}",
            ratio <= TARGET,
            f"median {result['chorus'] * 1e3:.0f} vs {result['bare'] * 1e3:.0f} ms",
        )
    ]


def import_profile(top: int = 25) -> list[str]:
    """What `chorus-mcp serve` imports before it answers, by cumulative import time (top-level packages)."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", *CHORUS[1:]],
        cwd=REPO,
        env=server_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    _send(process.stdin, _INITIALIZE)
    _answer(process.stdout, 1)
    _send(process.stdin, _INITIALIZED)
    _send(process.stdin, _LIST)
    _answer(process.stdout, 2)
    process.kill()
    _, stderr = process.communicate()
    packages: dict[str, int] = {}
    for line in stderr.decode().splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not cumulative.isdigit() or name.startswith(" "):
            continue
        root = name.split(".")[0]  # a top-level import (nested ones are indented), by its package
        packages[root] = packages.get(root, 0) + int(cumulative)
    ordered = sorted(packages.items(), key=lambda item: -item[1])[:top]
    return [f"{micros / 1000:8.1f} ms  {name}" for name, micros in ordered]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    print(load())
    result = measure(args.runs)
    print(f"bare MCPServer: median {result['bare'] * 1e3:.0f} ms (best {result['bare_min'] * 1e3:.0f})")
    print(f"chorus-mcp:     median {result['chorus'] * 1e3:.0f} ms (best {result['chorus_min'] * 1e3:.0f})")
    for figure in figures(result):
        print(f"  {figure.name}: {figure.value} (target {figure.target})")
    if args.importtime:
        print("\n".join(import_profile()))
    print(load())


if __name__ == "__main__":
    main()
