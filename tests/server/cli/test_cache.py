"""`chorus-mcp cache stats|clear` on a SQLite cache file named in the config."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from chorus_mcp.server.cli.main import main
from chorus_mcp.strategies.cache.store import CacheEntry
from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore
from chorus_mcp.strategies.core.completion import Completion
from tests.support.servers import run_chorus_into_a_closed_pipe, server_env


def _config(tmp_path: Path, *, enabled: bool = True) -> tuple[str, Path]:
    cache_file = tmp_path / "answers.sqlite3"
    config = {
        "models": {"fast": {"model": "openai/fast-1"}, "slow": {"model": "openai/slow-1"}},
        "cache": {"enabled": enabled, "store": "sqlite", "sqlite_path": str(cache_file)},
    }
    path = tmp_path / "chorus.yaml"
    path.write_text(json.dumps(config))
    return str(path), cache_file


def _fill(cache_file: Path) -> None:
    async def fill() -> None:
        store = SqliteCacheStore(cache_file)
        for n, model in enumerate(["openai/fast-1", "openai/fast-1", "openai/slow-1"]):
            completion = Completion(text="ok", model=model, cost_usd=Decimal("0.001"))
            entry = CacheEntry(
                key=f"k{n}", bucket="b", model=model, prompt="p", completion=completion, created_at=4e9
            )  # far in the future: never expired by the default TTL
            await store.put(entry)
        await store.count("openai/fast-1", "hit", Decimal("0.001"))
        await store.count("openai/slow-1", "miss")
        await store.aclose()

    anyio.run(fill)


def test_stats_prints_entries_hits_misses_and_saved_cost_per_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, cache_file = _config(tmp_path)
    _fill(cache_file)
    assert main(["cache", "stats", "--config", config]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "entries", "bytes", "hits", "misses", "saved", "USD"]
    fast = lines[1].split()
    assert fast[0] == "openai/fast-1" and fast[1] == "2" and fast[3:] == ["1", "0", "0.001000"]
    total = lines[-1].split()
    assert total[0] == "total" and total[1] == "3" and total[3:] == ["1", "1", "0.001000"]


def test_stats_of_an_empty_cache_says_so_and_notes_a_disabled_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = _config(tmp_path, enabled=False)
    assert main(["cache", "stats", "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["total", "0"]
    assert "cache.enabled is false" in out


def test_clear_by_alias_removes_that_model_s_answers_only_and_clear_removes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, cache_file = _config(tmp_path)
    _fill(cache_file)
    assert main(["cache", "clear", "--model", "fast", "--config", config]) == 0
    assert "deleted 2 cached answers of openai/fast-1" in capsys.readouterr().err
    assert main(["cache", "stats", "--json", "--config", config]) == 0
    assert list(json.loads(capsys.readouterr().out)["models"]) == ["openai/slow-1"]
    assert main(["cache", "clear", "--config", config]) == 0
    assert "deleted 1 cached answers" in capsys.readouterr().err


def test_clear_refuses_a_model_that_is_neither_an_alias_nor_a_provider_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, cache_file = _config(tmp_path)
    _fill(cache_file)
    assert main(["cache", "clear", "--model", "fsat", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "--model: 'fsat'" in err and "fast, slow" in err


def test_stats_into_a_pipe_whose_reader_has_gone_ends_quietly(tmp_path: Path) -> None:
    # `chorus-mcp cache stats --json | head`: head exits once it has read enough. Here the reader is gone
    # before the first byte is written, so the write is refused every time (no race with the reader).
    config, cache_file = _config(tmp_path)
    _fill(cache_file)
    done = run_chorus_into_a_closed_pipe(
        "cache", "stats", "--json", "--config", config, env=server_env("unused")
    )
    assert done.stderr == "" and done.returncode == 141
