"""What only the litellm path has: a lazy import, and litellm's tokenizer for estimates."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from chorus_mcp.strategies.core.completion import Message
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import estimate_prompt_tokens

REPO = Path(__file__).resolve().parents[3]


def test_importing_the_provider_package_imports_neither_litellm_nor_the_price_map() -> None:
    code = (
        "import sys, chorus_mcp.strategies.models.providers, "
        "chorus_mcp.strategies.models.providers.pricing, chorus_mcp.strategies.models.model_map as m; "
        "print('litellm' in sys.modules, 'openai' in sys.modules, m._loaded is None)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )

    assert result.stdout.split() == ["False", "False", "True"]


def test_prompt_tokens_are_estimated_offline_for_known_and_unknown_models() -> None:
    messages = [Message(role="system", content="be brief"), Message(role="user", content="hello world " * 50)]

    known = estimate_prompt_tokens(ModelEntry(model="openai/gpt-4o-mini"), messages)
    started = time.perf_counter()
    unknown = estimate_prompt_tokens(ModelEntry(model="openai/house-model"), messages)

    assert 100 <= known <= 130
    assert 100 <= unknown <= 130
    assert time.perf_counter() - started < 1
