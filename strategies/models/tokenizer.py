"""An offline tokenizer: tiktoken's `cl100k_base`, read from the copy litellm bundles.

tiktoken downloads its encodings on first use, which fails offline; litellm ships `cl100k_base` (and
`o200k_base`) in `litellm_core_utils/tokenizers/`, so pointing `TIKTOKEN_CACHE_DIR` there loads it
without the network and without importing litellm. Context passing counts prompt tokens with it, and a
capped call counts its streamed output with it (`providers.streaming`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from pathlib import Path
from typing import Any

_encoding: Any = None
_lock = threading.Lock()


def load_encoding() -> Any:
    """tiktoken's `cl100k_base` from litellm's bundled copy (loaded once, blocking: ~0.1-0.5 s the first
    time; None when unavailable)."""
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                spec = importlib.util.find_spec("litellm")
                if spec is not None and spec.origin is not None:
                    bundled = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
                    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))
                try:
                    import tiktoken

                    _encoding = tiktoken.get_encoding("cl100k_base")
                except Exception:
                    _encoding = False
    return _encoding or None


def is_loaded() -> bool:
    """Whether `load_encoding` has already run (so calling it now does not block)."""
    return _encoding is not None


def text_tokens(text: str) -> int:
    """The tokens of `text` by `cl100k_base`; ~4 characters a token when the encoding is unavailable."""
    if not text:
        return 0
    encoding = load_encoding()
    if encoding is None:
        return math.ceil(len(text) / 4)
    return len(encoding.encode(text, disallowed_special=()))
