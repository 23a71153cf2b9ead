"""Errors meant for the operator stay with the operator: a store file that cannot be used stops
`chorus-mcp serve` at start-up with its path and the fix, and a tool result never names the
provider's endpoint or an absolute path (the log still does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextContent

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from tests.fake_openai import FakeOpenAI, Fault
from tests.support.servers import KEY_ENV, fake_provider_config, run_chorus, server_env, write_config

pytestmark = pytest.mark.anyio

SECRET = "sk-operator-errors-0123456789abcdef"


def serve_refused(tmp_path: Path, fake: FakeOpenAI, **sections: object) -> str:
    path = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake, **sections))
    done = run_chorus("serve", "--config", str(path), env=server_env(SECRET), timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    return done.stderr


@pytest.mark.slow
def test_a_corrupt_sessions_file_stops_start_up_with_the_file_and_the_fix(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    corrupt = tmp_path / "sessions.sqlite3"
    corrupt.write_bytes(b"\x00garbage, not SQLite" * 500)

    stderr = serve_refused(tmp_path, fake_openai, sessions={"sqlite_path": str(corrupt)})

    assert f"session store {corrupt} is not a usable SQLite database" in stderr
    assert "Fix: move it aside" in stderr and "sessions.sqlite_path" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_a_corrupt_cache_file_stops_start_up_with_the_file_and_the_fix(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    corrupt = tmp_path / "cache.sqlite3"
    corrupt.write_bytes(b"not a database" * 500)

    stderr = serve_refused(
        tmp_path,
        fake_openai,
        sessions={"sqlite_path": str(tmp_path / "sessions.sqlite3")},
        cache={"sqlite_path": str(corrupt)},
    )

    assert (
        f"cache store {corrupt} is not a usable SQLite database" in stderr and "cache.sqlite_path" in stderr
    )


@pytest.mark.slow
def test_an_unwritable_data_directory_stops_start_up_with_the_file_and_the_fix(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    if os.geteuid() == 0:
        target = Path("/sys/chorus-test-data/sessions.sqlite3")  # file modes do not stop root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "sessions.sqlite3"

    stderr = serve_refused(tmp_path, fake_openai, sessions={"sqlite_path": str(target)})

    assert f"session store {target} cannot be opened for writing" in stderr
    assert "read-only for this user. Fix: make both writable" in stderr


async def test_a_tool_error_names_neither_the_endpoint_nor_a_path(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    leaked = f"upstream {fake_openai.base_url}/chat/completions failed reading /srv/chorus/weights/model.bin"
    fake_openai.script("alpha", "A")
    config = parse_config(
        write_config(
            tmp_path / "c.yaml", fake_provider_config(fake_openai, cache={"enabled": False})
        ).read_text(),
        source="c.yaml",
    )
    for _ in range(5):
        fake_openai.fail_next(Fault.http(400, leaked, type="invalid_request_error"), model="alpha")

    async with Client(build_server(config)) as client:
        result = await client.call_tool("cascade_ask", {"prompt": "q", "tiers": ["alpha"]})

    shown = result.model_dump_json() + " ".join(c.text for c in result.content if isinstance(c, TextContent))
    assert result.is_error
    assert fake_openai.base_url not in shown and "127.0.0.1" not in shown
    assert "/srv/chorus" not in shown and "model.bin" in shown
