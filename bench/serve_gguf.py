"""Serve a GGUF model on a loopback OpenAI-compatible endpoint, to record live tiers from it.

    uv run --no-project --with xllamacpp python bench/serve_gguf.py MODEL.gguf --alias NAME --port 8091

llama.cpp's own server (through xllamacpp's prebuilt wheels), listening on 127.0.0.1 only, serving
`POST /v1/chat/completions` (logprobs included) for the model named `--alias`. An evaluation reaches it
as a `live:` entry `{model: openai/NAME, api_base: http://127.0.0.1:PORT/v1, protocol: openai}`; being on
loopback, it counts as local compute (`strategies.evaluation.live`). Meant for recording when the
embedded runtime (`local/...`) is not installed in the evaluation's environment; it serves until
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="a GGUF file")
    parser.add_argument("--alias", required=True, help="the model name requests use")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (default 1: cores are shared)"
    )
    parser.add_argument("--context", type=int, default=4096)
    args = parser.parse_args()

    import xllamacpp  # type: ignore[import-not-found, unused-ignore]

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = args.alias
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.context
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.warmup = False
    params.verbosity = 0
    server = xllamacpp.Server(params)
    print(f"serving {args.alias} on http://127.0.0.1:{args.port}/v1", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
