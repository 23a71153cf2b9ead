"""Counting tokens as a model would see them: tiktoken's `o200k_base`, offline.

tiktoken downloads its encodings on first use, which fails offline; litellm ships o200k_base inside its
package (`litellm/litellm_core_utils/tokenizers/`), so `TIKTOKEN_CACHE_DIR` points there — found with
`importlib.util.find_spec`, without importing litellm.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel


@functools.cache
def _encoding() -> Any:
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.origin is not None, "litellm (it bundles the encodings) is not installed"
    bundled = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))
    import tiktoken

    return tiktoken.get_encoding("o200k_base")


def tokens(text: str) -> int:
    return len(_encoding().encode(text))


def wire_tokens(message: BaseModel) -> int:
    """Tokens of a protocol object serialised as it travels (compact JSON, UTF-8, no nulls)."""
    return tokens(message.model_dump_json(by_alias=True, exclude_none=True))
