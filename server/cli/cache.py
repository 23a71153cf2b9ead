"""`chorus-mcp cache stats|clear`: what the response cache holds and has saved, and emptying it.

Both read the store the config names (`cache` and `sessions`: the SQLite file by default, the shared
Redis for replicas), so they see what every server process using that store has done.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from chorus_mcp.strategies.core.errors import ConfigError

if TYPE_CHECKING:
    from chorus_mcp.config.schema import ChorusConfig
    from chorus_mcp.strategies.cache.store import CacheStats, CacheStore


def add_cache_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cache = commands.add_parser("cache", help="inspect or empty the response cache")
    cache_commands = cache.add_subparsers(title="cache commands")
    stats = cache_commands.add_parser("stats", help="entries, bytes, hits, misses and saved cost, per model")
    _config_option(stats)
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.set_defaults(handler=run_stats)
    clear = cache_commands.add_parser("clear", help="delete cached answers (all, or one model's)")
    _config_option(clear)
    clear.add_argument("--model", help="only this model (a configured alias or a provider model id)")
    clear.set_defaults(handler=run_clear)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default: $CHORUS_CONFIG, else the bundled default)")


def _store(config: ChorusConfig) -> CacheStore:
    from chorus_mcp.strategies.cache.stores import open_cache_store

    return open_cache_store(config.cache, config.sessions)


def run_stats(args: argparse.Namespace) -> int:
    import anyio

    from chorus_mcp.config.loader import load_config

    config = load_config(args.config)
    stats = anyio.run(_stats, _store(config))
    if args.json:
        print(stats.model_dump_json(indent=2))
    else:
        print(render_stats(stats, enabled=config.cache.enabled))
    return 0


async def _stats(store: CacheStore) -> CacheStats:
    try:
        return await store.stats()
    finally:
        await store.aclose()


def render_stats(stats: CacheStats, *, enabled: bool = True) -> str:
    rows = [("model", "entries", "bytes", "hits", "misses", "saved USD")]
    for name, model in [*stats.models.items(), ("total", stats.totals)]:
        saved = f"{model.saved_cost_usd:.6f}"
        rows.append((name, str(model.entries), str(model.bytes), str(model.hits), str(model.misses), saved))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    if not enabled:
        lines.append("(the cache is off in this config: cache.enabled is false)")
    return "\n".join(lines)


def run_clear(args: argparse.Namespace) -> int:
    import anyio

    from chorus_mcp.config.loader import load_config

    config = load_config(args.config)
    model = args.model
    if model is not None and model in config.models:
        model = config.models[model].model  # entries are kept under the provider's model id
    elif model is not None and "/" not in model:
        known = ", ".join(sorted(config.models)) or "none configured"
        raise ConfigError(
            f"--model: {model!r} is neither a configured alias ({known}) nor a provider model id"
        )
    deleted = anyio.run(_clear, _store(config), model)
    print(f"deleted {deleted} cached answers{f' of {model}' if model else ''}", file=sys.stderr)
    return 0


async def _clear(store: CacheStore, model: str | None) -> int:
    try:
        return await store.clear(model)
    finally:
        await store.aclose()
