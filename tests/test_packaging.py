"""The built wheel: one top-level import package, and a server that starts from it alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.fake_openai import FakeOpenAI
from tests.support.servers import fake_provider_config, server_env, write_config

REPO = Path(__file__).resolve().parents[1]
SECRET = "sk-chorus-test-0123456789abcdef"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("chorus_mcp-*.whl")
    return built


def test_the_wheel_installs_one_top_level_package_and_no_generic_names(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = archive.namelist()
    assert {top for top in tops if not top.endswith(".dist-info")} == {"chorus_mcp"}
    assert "chorus_mcp/config/default.yaml" in names
    assert "chorus_mcp/strategies/engine/runner.py" in names
    assert not any("__pycache__" in name for name in names)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel unpacked into a site directory of its own, and an environment that sees only it.

    Its dependencies come from this environment, read without its .pth files (`-S`: the editable
    install's one would put the checkout on the path); processes run in a directory of their own."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    dependencies = sysconfig.get_paths()["purelib"]
    return site, server_env(SECRET, PYTHONPATH=os.pathsep.join([str(site), dependencies]))


def test_the_installed_wheel_is_imported_from_its_own_files_under_one_name(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    site, env = installed
    code = (
        "import chorus_mcp.server.app, importlib.util as u; print(chorus_mcp.server.app.__file__); "
        "print(u.find_spec('strategies'), u.find_spec('server'), u.find_spec('config'))"
    )
    probe = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    location, generic = probe.stdout.splitlines()
    assert location.startswith(str(site))
    assert generic == "None None None"


@pytest.mark.anyio
async def test_the_server_starts_from_the_installed_wheel_and_answers_a_tool_call(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _site, env = installed
    with FakeOpenAI() as fake:
        fake.script("alpha", "hi")
        config = write_config(tmp_path / "config.yaml", fake_provider_config(fake, deadline_s=60))
        params = StdioServerParameters(
            command=sys.executable,
            args=["-S", "-m", "chorus_mcp.server.cli.main", "serve", "--config", str(config)],
            env=env,
            cwd=str(tmp_path),
        )
        async with Client(params) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"} <= tools
            result = await client.call_tool("ensemble_vote", {"prompt": "Say hi", "models": ["alpha"]})
            assert not result.is_error
            assert result.structured_content is not None and result.structured_content["answer"] == "hi"
