"""`chorus-mcp` itself, as a subprocess: how it ends when the terminal side of it goes wrong."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.servers import run_chorus, run_chorus_into_a_closed_pipe, server_env, write_config


@pytest.mark.parametrize("flag", [True, False], ids=["--port", "http.port"])
def test_a_busy_port_is_refused_plainly_before_any_serving_line(tmp_path: Path, flag: bool) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = {"models": {"a": {"model": "openai/a"}}, "http": {"port": port}}
        path = write_config(tmp_path / "chorus.yaml", config)
        args = ["serve", "--http", "--config", str(path), *(["--port", str(port)] if flag else [])]
        done = run_chorus(*args, env=server_env("unused"), timeout=120)
    where = "--port" if flag else "http.port"
    assert done.returncode == 2
    assert (
        f"chorus-mcp: {where}: {port} on 127.0.0.1 (address already in use); expected a port" in done.stderr
    )
    assert "streamable HTTP on" not in done.stderr and "Traceback" not in done.stderr


def test_output_into_a_pipe_whose_reader_has_gone_ends_quietly() -> None:
    # `chorus-mcp config schema | head`; the reader is gone before the first write: no race with it.
    done = run_chorus_into_a_closed_pipe("config", "schema", env=server_env("unused"))
    assert done.stderr == "" and done.returncode == 141  # as a command ended by SIGPIPE
