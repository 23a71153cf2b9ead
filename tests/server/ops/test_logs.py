"""Log lines carry no terminal colour codes, in either rendering: not uvicorn's coloured copy of a message,
not an escape sequence inside one."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import time
from pathlib import Path

import pytest

from chorus_mcp.server.ops.logs import setup_logging
from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    REPO,
    chorus_command,
    fake_provider_config,
    free_port,
    server_env,
    write_config,
)

ESC = "\x1b"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_record_with_colours_is_logged_without_them(fmt: str) -> None:
    stream = io.StringIO()
    handler = setup_logging("INFO", fmt, stream=stream)  # type: ignore[arg-type]
    try:
        # Shaped like uvicorn's records (an in-process uvicorn, like the fake provider's, configures its own
        # loggers not to propagate: the real ones are checked through a server process below).
        logging.getLogger("chorus.test.colours").info(
            "Started server process [%d] \x1b[1mbold\x1b[0m",
            42,
            extra={
                "color_message": "Started server process [\x1b[36m%d\x1b[0m]",
                "where": "\x1b[32mhere\x1b[0m",
            },
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()

    assert ESC not in line and "\\u001b" not in line and "color_message" not in line
    if fmt == "json":
        entry = json.loads(line)
        assert entry["msg"] == "Started server process [42] bold" and entry["where"] == "here"
    else:
        assert line.endswith("INFO chorus.test.colours: Started server process [42] bold where=here")


@pytest.mark.slow
def test_serve_http_with_text_logs_writes_uvicorns_lines_without_colour_codes(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake_openai))
    port = free_port()
    command = chorus_command(
        "serve", "--http", "--port", str(port), "--config", str(config), "--log-format", "text"
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            env=server_env("sk-chorus-logs-0123456789"),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        while "Uvicorn running" not in log_path.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_path.read_text(errors="replace")

    assert "INFO uvicorn.error: Uvicorn running on http://127.0.0.1:" in text
    assert ESC not in text and "color_message" not in text
