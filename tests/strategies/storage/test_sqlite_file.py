"""A store file that cannot be used stops start-up with its whole path and the fix; a failure while
serving names the file only (a tool result must not map the server's directories)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.sessions.session import SessionStoreError
from chorus_mcp.strategies.storage.sqlite_file import SqliteFile

pytestmark = pytest.mark.anyio

SCHEMA = ["CREATE TABLE IF NOT EXISTS t (x INTEGER)"]


def store_file(path: Path) -> SqliteFile:
    return SqliteFile(
        path, schema=SCHEMA, error=SessionStoreError, what="session store", setting="sessions.sqlite_path"
    )


def unwritable(tmp_path: Path) -> Path:
    """A path whose directory this user cannot write: a read-only directory, or (as root, whom file
    modes do not stop) a directory under /sys."""
    if os.geteuid() == 0:
        return Path("/sys/chorus-test-data/sessions.sqlite3")
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o500)
    return directory / "sessions.sqlite3"


def test_a_corrupt_file_stops_start_up_naming_it_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"this is not a database, it was overwritten by something else" * 100)

    with pytest.raises(ConfigError) as raised:
        store_file(path).open_now()

    message = str(raised.value)
    assert str(path) in message and "not a usable SQLite database" in message
    assert "move it aside" in message and "sessions.sqlite_path" in message


def test_an_unwritable_directory_stops_start_up_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    path = unwritable(tmp_path)

    with pytest.raises(ConfigError) as raised:
        store_file(path).open_now()

    message = str(raised.value)
    assert str(path) in message and "read-only for this user" in message
    assert "make both writable" in message and "sessions.sqlite_path" in message


def test_a_read_only_file_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    sqlite3.connect(path).close()
    if os.geteuid() == 0:
        pytest.skip("file modes do not stop root; the directory case covers read-only storage")
    path.chmod(0o400)

    with pytest.raises(ConfigError) as raised:
        store_file(path).open_now()

    assert str(path) in str(raised.value) and "Fix:" in str(raised.value)


async def test_a_failure_while_serving_names_the_file_but_not_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "inside" / "sessions.sqlite3"
    db = store_file(path)
    db.open_now()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute(f"SELECT * FROM missing_table_in_{path.parent.name}")

    with pytest.raises(SessionStoreError) as raised:
        await db.run(broken)
    await db.aclose()

    message = raised.value.message
    assert "sessions.sqlite3" in message and str(tmp_path) not in message
