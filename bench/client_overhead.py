"""What `LiteLLMClient` costs per call over a raw httpx POST to the same local server.

Both talk to the fake OpenAI server (tests/fake_openai.py) with zero scripted latency, so the
difference is client-side work: litellm's parameter mapping, logging hooks, response objects, our
translation into `Completion` and the price-map lookup. Calls are sequential, after a warm-up, in
alternating rounds so that drift on a busy machine hits both sides alike. The server runs in its
own process: in-process, client and server would also be timing each other's hold on the GIL.

Run: `.venv/bin/python bench/client_overhead.py [--calls 300]`
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from strategies.catalog import ModelEntry
from strategies.completion import CompletionRequest
from strategies.providers import LiteLLMClient, load_litellm

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "CHORUS_BENCH_KEY"
MODEL = "bench-model"
PROMPT = "What is the capital of France? Answer in one word."
ROUND = 50
WARM_UP = 30


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextlib.contextmanager
def fake_server_process() -> Iterator[str]:
    """Start `python -m tests.fake_openai` and yield its base URL; stop it afterwards."""
    command = [sys.executable, "-m", "tests.fake_openai", "--reply", "Paris",
               "--prompt-tokens", "14", "--completion-tokens", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError("the fake server did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def run(calls: int) -> None:
    os.environ[KEY_ENV] = "bench-dummy-key-0000"
    started = time.perf_counter()
    load_litellm()
    print(f"import litellm (first use): {time.perf_counter() - started:.2f} s")

    with fake_server_process() as base_url:
        entry = ModelEntry(model=f"openai/{MODEL}", api_base=base_url, api_key_env=KEY_ENV)
        client = LiteLLMClient("bench", entry)
        request = CompletionRequest.of(PROMPT, max_tokens=16, temperature=0.0)
        body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": 16, "temperature": 0.0}
        headers = {"Authorization": f"Bearer {os.environ[KEY_ENV]}"}

        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:

            async def via_litellm() -> None:
                completion = await client.complete(request)
                assert completion.text == "Paris"

            async def via_httpx() -> None:
                response = await http.post("/chat/completions", json=body)
                response.raise_for_status()
                assert response.json()["choices"][0]["message"]["content"] == "Paris"

            for _ in range(WARM_UP):
                await via_litellm()
                await via_httpx()

            timings: dict[str, list[float]] = {"litellm": [], "httpx": []}
            done = 0
            while done < calls:
                batch = min(ROUND, calls - done)
                for name, call in (("litellm", via_litellm), ("httpx", via_httpx)):
                    for _ in range(batch):
                        t0 = time.perf_counter()
                        await call()
                        timings[name].append(time.perf_counter() - t0)
                done += batch

    print(f"{calls} sequential calls each, after {WARM_UP} warm-up calls, zero server latency\n")
    print(f"{'client':<22}{'median ms':>11}{'p90 ms':>10}{'mean ms':>10}")
    for name, label in (("httpx", "raw httpx.AsyncClient"), ("litellm", "LiteLLMClient")):
        samples = timings[name]
        print(f"{label:<22}{statistics.median(samples) * 1e3:>11.2f}{percentile(samples, 0.9) * 1e3:>10.2f}"
              f"{statistics.fmean(samples) * 1e3:>10.2f}")
    raw, ours = statistics.median(timings["httpx"]), statistics.median(timings["litellm"])
    raw90, ours90 = percentile(timings["httpx"], 0.9), percentile(timings["litellm"], 0.9)
    print(f"\noverhead (median): {(ours - raw) * 1e3:.2f} ms per call, {ours / raw:.1f}x")
    print(f"overhead (p90):    {(ours90 - raw90) * 1e3:.2f} ms per call, {ours90 / raw90:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per client (>= 200)")
    args = parser.parse_args()
    anyio.run(run, max(200, args.calls))


if __name__ == "__main__":
    main()
