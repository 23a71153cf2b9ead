"""Bundled weights: parts found without importing them, joined once, used only when the hash matches.

Real files throughout: small part packages made in a temporary folder and put on the import path, the
same shape as the registry's (`<package>/data/partNN.bin`), so the join, the hash check and the record
of it run exactly as they do on the 1.1 GB file.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from chorus_mcp.strategies.models import weights
from chorus_mcp.strategies.models.weights import BundledModel, WeightsError, ensure_joined, missing


def _model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], **changes: object
) -> BundledModel:
    packages = tmp_path / "site"
    for n, chunk in enumerate(chunks, start=1):
        data = packages / f"chorus_test_part{n}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("raise RuntimeError('a part package was imported')\n")
        (data / f"part{n:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(packages))
    monkeypatch.setenv(weights.MODELS_DIR_ENV, str(tmp_path / "models"))
    whole = b"".join(chunks)
    fields: dict[str, object] = {
        "name": "test-model",
        "title": "Test Model",
        "filename": "test.gguf",
        "parts": tuple(f"chorus_test_part{n}" for n in range(1, len(chunks) + 1)),
        "distributions": "chorus-test-part1..n",
        "extra": "local",
        "size": len(whole),
        "sha256": hashlib.sha256(whole).hexdigest(),
        "licence": "Apache-2.0",
        "upstream": "nowhere",
    }
    fields.update(changes)
    return BundledModel(**fields)  # type: ignore[arg-type]


def test_the_parts_are_joined_in_order_once_with_progress_and_a_record_of_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [b"GGUF" + b"a" * 3000, b"b" * 2000, b"c" * 10]
    model = _model(tmp_path, monkeypatch, chunks)
    said: list[str] = []

    path = ensure_joined(model, said.append)
    stamp = path.stat().st_mtime_ns
    again = ensure_joined(model, said.append)

    assert path == again == tmp_path / "models" / "test.gguf"
    assert path.read_bytes() == b"".join(chunks) and path.stat().st_mtime_ns == stamp
    assert said[0].startswith("chorus-mcp: joining the embedded model Test Model (Apache-2.0)")
    assert any("100%" in line for line in said) and "verified SHA-256" in said[-1]
    assert len([line for line in said if "joining" in line]) == 1  # the second call joined nothing
    assert missing(model) is None
    assert not [m for m in sys.modules if m.startswith("chorus_test_part")]


def test_a_joined_file_that_does_not_match_the_pinned_hash_is_deleted_and_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(tmp_path, monkeypatch, [b"x" * 100, b"y" * 100], sha256="0" * 64)

    with pytest.raises(WeightsError, match=r"has SHA-256 [0-9a-f]{64}, not the pinned 0{64}.*was deleted"):
        ensure_joined(model, lambda line: None)

    assert list((tmp_path / "models").iterdir()) == []


def test_parts_that_add_up_to_another_size_are_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(tmp_path, monkeypatch, [b"x" * 100], size=101)

    with pytest.raises(WeightsError, match="add up to 100 bytes, not the pinned 101"):
        ensure_joined(model, lambda line: None)
    assert not (tmp_path / "models").exists()


def test_a_joined_file_changed_afterwards_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(tmp_path, monkeypatch, [b"x" * 100, b"y" * 100])
    path = ensure_joined(model, lambda line: None)
    path.write_bytes(b"z" * 200)  # same size, other bytes, newer time

    said: list[str] = []
    ensure_joined(model, said.append)

    assert path.read_bytes() == b"x" * 100 + b"y" * 100 and "joining" in said[0]


def test_missing_parts_say_which_extra_installs_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(tmp_path, monkeypatch, [b"x"], parts=("chorus_test_part1", "chorus_no_such_part"))
    small = _model(tmp_path / "s", monkeypatch, [b"x"], parts=("chorus_no_such_part",), extra="local-small")

    assert missing(model) == (
        "the weights of 'test-model' are not installed: install the 'local' extra (`uv sync --extra local`)"
    )
    assert "`uv sync --extra local --extra local-small`" in (missing(small) or "")
    with pytest.raises(WeightsError, match="are not installed"):
        ensure_joined(model, lambda line: None)


def test_the_bundled_models_pin_their_size_hash_licence_and_provenance() -> None:
    for model in weights.BUNDLED.values():
        assert len(model.sha256) == 64 and model.size > 100_000_000
        assert model.licence == "Apache-2.0" and model.upstream.startswith("Qwen/")
        assert model.filename.endswith(".gguf") and model.parts
    assert weights.DEFAULT in weights.BUNDLED
