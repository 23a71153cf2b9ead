"""litellm's bundled model map, read as JSON: the same map, revision and facts litellm itself reads offline,
without importing litellm and without the network."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from chorus_mcp.strategies.models import model_map
from chorus_mcp.strategies.models.catalog import ModelEntry, capabilities
from chorus_mcp.strategies.models.providers.litellm_client import load_litellm
from tests.support.servers import REPO


def test_reading_the_map_imports_neither_litellm_nor_anything_from_the_network() -> None:
    script = (
        "import sys, socket\n"
        "def refuse(*a, **k): raise AssertionError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from chorus_mcp.strategies.models.catalog import ModelEntry, capabilities\n"
        "facts = capabilities(ModelEntry(model='openai/gpt-4o-mini'))\n"
        "print(facts.context_window, 'litellm' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    window, imported = done.stdout.split()
    assert int(window) > 0
    assert imported == "False"


def test_the_version_names_the_installed_litellm_and_the_revision_litellm_reports() -> None:
    load_litellm()  # offline: told to read its bundled map (LITELLM_LOCAL_MODEL_COST_MAP)
    from litellm.litellm_core_utils.get_model_cost_map import get_model_cost_map_source_info

    info = get_model_cost_map_source_info()

    version = model_map.map_version()

    assert info["source"] == "local"
    assert version.litellm == importlib.metadata.version("litellm")
    assert version.revision is not None and info["source_revision"].startswith(version.revision)
    assert version.file_date is not None and len(version.file_date) == 10
    assert version.models > 1000


@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4o-mini",
        "openai/o3-mini",
        "anthropic/claude-sonnet-4-5",
        "gemini/gemini-2.5-pro",
        "gemini/gemini-2.5-flash",
    ],
)
def test_the_facts_are_the_ones_litellm_gives_for_the_model(model: str) -> None:
    theirs = load_litellm().get_model_info(model)

    ours = capabilities(ModelEntry(model=model))

    assert ours.known_to_map is True
    assert ours.context_window == theirs["max_input_tokens"]
    assert ours.max_output == theirs["max_output_tokens"]
    assert ours.vision is bool(theirs.get("supports_vision"))
    assert ours.tools is bool(theirs.get("supports_function_calling"))
    assert ours.reasoning is bool(theirs.get("supports_reasoning"))
    assert ours.input_usd_per_mtok is not None and ours.output_usd_per_mtok is not None
    assert float(ours.input_usd_per_mtok) == pytest.approx(theirs["input_cost_per_token"] * 1e6)
    assert float(ours.output_usd_per_mtok) == pytest.approx(theirs["output_cost_per_token"] * 1e6)


def test_an_entry_that_only_names_another_stands_for_it() -> None:
    entries = model_map.load_map()
    alias, target = next(
        (key, value["alias_of"])
        for key, value in entries.items()
        if isinstance(value, dict) and "alias_of" in value and "litellm_provider" not in value
    )

    assert model_map.lookup(alias) == entries[target]


def test_a_map_that_cannot_be_read_knows_no_model(tmp_path: pytest.TempPathFactory) -> None:
    broken = tmp_path / model_map.MAP_FILE  # type: ignore[operator]
    broken.write_text("{not json")

    loaded = model_map._read(broken)

    assert loaded.entries == {}
    assert loaded.version.models == 0
    assert json.loads(json.dumps(loaded.version.__dict__))["revision"] is not None
