"""litellm's bundled model map, read as JSON: what a model costs and can do, and which map said so.

The map is `model_prices_and_context_window_backup.json`, shipped inside the litellm package: the file
litellm itself reads when told to stay offline (`LITELLM_LOCAL_MODEL_COST_MAP=True`, which the one
module importing litellm sets; otherwise litellm fetches a newer copy from the network at import).
Reading it here with `json` takes ~0.1 s once; importing litellm to ask it takes 3-20 s. The file is
found with `importlib.util.find_spec`, which does not import the package, and read on first use (or in
the server's warm-up thread), never at import: the server's cold start does not pay for it.

The map is as fresh as the installed litellm: upgrading litellm is how prices and context windows
follow the providers. `map_version()` says which one was read (litellm's version, the file's git blob
id, as litellm itself reports the map's revision, and the file's date).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class MapVersion:
    """Which model map the facts come from."""

    litellm: str | None
    """The installed litellm's version (None when litellm is not installed)."""
    revision: str | None
    """The first 12 hex digits of the file's git blob id (litellm's own name for a map's revision)."""
    file_date: str | None
    """The file's modification date (YYYY-MM-DD): when this copy was written, which is the install."""
    models: int
    """How many entries the map has (0 when it could not be read)."""


@dataclass
class _Loaded:
    entries: dict[str, Any]
    version: MapVersion


_loaded: _Loaded | None = None
_lock = threading.Lock()


def map_path() -> Path | None:
    """Where litellm's bundled model map is, without importing litellm (None if litellm is not installed)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / MAP_FILE
    return path if path.is_file() else None


def _load() -> _Loaded:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _read(map_path())
    return _loaded


def _read(path: Path | None) -> _Loaded:
    entries: dict[str, Any] = {}
    revision = file_date = None
    if path is not None:
        try:
            raw = path.read_bytes()
            modified = path.stat().st_mtime
        except OSError:
            raw = b""
        else:
            # git's blob id: what litellm reports as the loaded map's `source_revision`.
            revision = hashlib.sha1(b"blob %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()[:12]
            file_date = datetime.datetime.fromtimestamp(modified, datetime.UTC).date().isoformat()
        try:
            loaded = json.loads(raw) if raw else {}
        except ValueError:
            loaded = {}
        entries = loaded if isinstance(loaded, dict) else {}
    try:
        version: str | None = importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        version = None
    models = sum(1 for value in entries.values() if isinstance(value, dict) and "litellm_provider" in value)
    return _Loaded(entries, MapVersion(version, revision, file_date, models))


def load_map() -> dict[str, Any]:
    """The whole map, read once (blocking, ~0.1 s); an empty map if it cannot be read."""
    return _load().entries


def map_version() -> MapVersion:
    """Which map `lookup` reads (loads it if need be)."""
    return _load().version


def lookup(model: str) -> dict[str, Any] | None:
    """The map's entry for a litellm model id, or None when the map does not know the model.

    Looked up as given (`openrouter/openai/gpt-4o-mini`, `gemini/gemini-2.5-pro`), then without its
    provider prefix when that entry belongs to the same provider (`openai/gpt-4o-mini` → `gpt-4o-mini`).
    An entry that is only `{"alias_of": other}` stands for that other entry."""
    entries = load_map()
    found = _entry(entries, model)
    if found is None:
        provider, _, bare = model.partition("/")
        if bare:
            candidate = _entry(entries, bare)
            if candidate is not None and candidate.get("litellm_provider") == provider:
                found = candidate
    return found


def _entry(entries: dict[str, Any], key: str) -> dict[str, Any] | None:
    found = entries.get(key)
    if isinstance(found, dict) and "litellm_provider" not in found and isinstance(found.get("alias_of"), str):
        found = entries.get(found["alias_of"])
    return found if isinstance(found, dict) and "litellm_provider" in found else None
