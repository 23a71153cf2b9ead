"""`chorus-mcp`: serve over stdio or streamable HTTP, check config, print its schema, diagnose models, inspect
the response cache.

Everything human-readable goes to stderr: stdout belongs to the stdio transport.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from chorus_mcp.server.cli.flags import port
from chorus_mcp.strategies.core.errors import ConfigError

if TYPE_CHECKING:
    from chorus_mcp.config.schema import ChorusConfig
    from chorus_mcp.server.ops.phoenix import LocalPhoenix

log = logging.getLogger("chorus")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a reader that went away (`| head`) is met here, not at interpreter exit
        return code
    except ConfigError as exc:
        print(f"chorus-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """stdout's reader closed the pipe (`chorus-mcp cache stats --json | head`): stop without a word, as a
    command killed by SIGPIPE would. What is still buffered goes nowhere instead of failing at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # the status a shell reports for a command ended by SIGPIPE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chorus-mcp", description="Ask several language models; get one answer."
    )
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    _config_option(serve)
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=port, help="HTTP port (default from config: 8765)")
    serve.add_argument("--stateless", action="store_true", help="stateless HTTP, for replicas")
    serve.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default from config: INFO"
    )
    serve.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        default="auto",
        help="stderr log lines as JSON objects or key=value text (auto: text on a terminal, else JSON)",
    )
    serve.add_argument(
        "--phoenix",
        action="store_true",
        help="start a local Arize Phoenix on 127.0.0.1 and send it the traces (needs the 'phoenix' extra)",
    )
    serve.set_defaults(handler=_serve)

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(title="config commands")
    schema = config_commands.add_parser("schema", help="print the config file's JSON Schema")
    schema.set_defaults(handler=_config_schema)
    check = config_commands.add_parser("check", help="validate a config file and summarise it")
    _config_option(check)
    check.set_defaults(handler=_config_check)

    from chorus_mcp.server.cli.ask import add_ask_parser
    from chorus_mcp.server.cli.doctor import add_doctor_parser

    add_doctor_parser(commands)
    add_ask_parser(commands)

    from chorus_mcp.server.cli.eval import add_eval_parser

    add_eval_parser(commands)

    from chorus_mcp.server.cli.cache import add_cache_parser

    add_cache_parser(commands)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $CHORUS_CONFIG, else the bundled default)")


def _serve(args: argparse.Namespace) -> int:
    from chorus_mcp.config.loader import load_config
    from chorus_mcp.server.ops.logs import setup_logging

    config = load_config(args.config)
    level = args.log_level or config.log_level
    setup_logging(level, args.log_format)
    config = _use_available(config)
    phoenix: LocalPhoenix | None = None
    try:
        if args.phoenix:
            config, phoenix = _with_local_phoenix(config)
            if phoenix.process is not None:
                _stop_on_signals(phoenix)
        return _run_server(args, config, level)
    finally:
        if phoenix is not None:
            _stop_phoenix(phoenix)


def _run_server(args: argparse.Namespace, config: ChorusConfig, level: str) -> int:
    host = args.host or config.http.host
    from chorus_mcp.server.http.auth import bind_refusal, serve_http

    if args.http and (refusal := bind_refusal(config, host)):
        print(f"chorus-mcp: {refusal}", file=sys.stderr)
        return 2

    from chorus_mcp.server.app import build_server

    server = build_server(config.model_copy(update={"log_level": level}))
    if not args.http:
        server.run("stdio")
        return 0
    port = config.http.port if args.port is None else args.port
    if busy := _port_problem(host, port, "http.port" if args.port is None else "--port"):
        print(f"chorus-mcp: {busy}", file=sys.stderr)
        return 2
    print(f"chorus-mcp: streamable HTTP on http://{host}:{port}{config.http.path}", file=sys.stderr)
    serve_http(
        server,
        config,
        host=host,
        port=port,
        stateless=args.stateless or config.http.stateless,
        json_response=config.http.json_response,
        log_level=level,
    )
    return 0


def _port_problem(host: str, port: int, where: str) -> str | None:
    """Why the server could not listen on `host:port` (bound and let go at once, as uvicorn will bind it),
    so that a busy port is said plainly before any "serving on" line; None when it is free."""
    import socket

    from chorus_mcp.config.problems import problem

    if port == 0:
        return None  # any free port: the system picks one
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return problem("--host", f"{host!r} ({exc.strerror or exc})", "expected an address of this machine")
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn sets it
        try:
            probe.bind(address)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return problem(
                where,
                f"{port} on {host} ({reason.lower()})",
                "expected a port no other process listens on (is another server running there?)",
            )
    return None


def _stop_on_signals(phoenix: LocalPhoenix) -> None:
    """SIGTERM or SIGINT stop the Phoenix started here, then end the process by that signal, as usual.

    By default SIGTERM (a service manager, `kill`, a container runtime) ends the process on the spot and
    no exit hook runs: the Phoenix it started would keep running on its port. Over HTTP, uvicorn takes
    both signals while it serves, shuts down, puts these handlers back and raises the signal again, so
    they run once the server is down. Over stdio they run at once: the stdio transport's reader thread,
    blocked on stdin, would otherwise keep an unwinding process from ever exiting.
    """

    def stop(received: int, _frame: FrameType | None) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once
        _stop_phoenix(phoenix)
        signal.raise_signal(received)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)


def _stop_phoenix(phoenix: LocalPhoenix) -> None:
    """The server is done: send the spans still waiting, then stop the Phoenix started for it (if any).
    Whichever comes first, the end of `serve` or a signal, does it; the other finds nothing left to do."""
    from chorus_mcp.strategies.tracing import export as trace_export

    phoenix.give_up_waiting()  # spans still waiting for a Phoenix that never came up are not waited for
    trace_export.flush()
    if phoenix.process is not None and phoenix.process.poll() is None:
        print("chorus-mcp: stopping Phoenix", file=sys.stderr)
        phoenix.stop()


def _with_local_phoenix(config: ChorusConfig) -> tuple[ChorusConfig, LocalPhoenix]:
    """Start a local Phoenix, send the traces to it once it has Chorus's model prices, and say on stderr
    how its start goes and where its UI is."""
    import atexit

    from chorus_mcp.server.app import version
    from chorus_mcp.server.mcp.telemetry import setup_tracing
    from chorus_mcp.server.ops.phoenix import PROGRESS_S, default_working_dir, start_local_phoenix
    from chorus_mcp.strategies.tracing.prices import span_prices

    phoenix = start_local_phoenix(config.tracing.phoenix_port, default_working_dir())
    tracing = config.tracing.model_copy(update={"enabled": True, "endpoint": phoenix.url})
    setup_tracing(tracing, version=version(), ready=phoenix.ready)
    # Registered after the exporter's own exit hook, so it runs first (atexit is last-in, first-out):
    # a Phoenix still starting when the server exits is not waited for.
    atexit.register(phoenix.give_up_waiting)
    project = tracing.project
    if phoenix.process is None:
        _say(f"tracing to the Phoenix already running at {phoenix.url} (project {project!r})")
    else:
        _say(
            f"starting Phoenix at {phoenix.url} (project {project!r}; log: {phoenix.log_path}). "
            "It takes 20 s to a few minutes, longest the first time and on a busy machine: "
            f"progress every {PROGRESS_S:.0f} s. The server is up meanwhile; its traces wait for Phoenix."
        )
    phoenix.prepare(span_prices(config.models), _say)
    return config.model_copy(update={"tracing": tracing}), phoenix


def _say(message: str) -> None:
    print(f"chorus-mcp: {message}", file=sys.stderr, flush=True)


def _config_schema(_args: argparse.Namespace) -> int:
    from chorus_mcp.config.schema import ChorusConfig

    print(json.dumps(ChorusConfig.model_json_schema(), indent=2))
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from chorus_mcp.config.loader import config_path, load_config

    config = load_config(args.config)
    print(
        f"{config_path(args.config)}: valid — {len(config.models)} models, "
        f"{len(config.strategies)} strategies "
        f"({', '.join(sorted(config.strategies))})",
        file=sys.stderr,
    )
    return 0


def _use_available(config: ChorusConfig) -> ChorusConfig:
    """Steer the strategies to the models usable here, when the config asks to (models/availability.py)."""
    if not config.use_available_models:
        return config
    from chorus_mcp.strategies.models.availability import use_available

    steered, statuses = use_available(config)
    usable = ", ".join(alias for alias, status in statuses.items() if status.usable) or "none"
    log.info("models usable here: %s (`chorus-mcp doctor` says why)", usable)
    return steered


if __name__ == "__main__":
    sys.exit(main())
