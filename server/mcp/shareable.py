"""What of an error a client may be shown: not where the server's providers and files are.

A provider's error can name its endpoint (`http://10.0.0.7:8000/v1/chat/completions`), and a local
runtime's or a store's error a path (`/srv/chorus/models/qwen.gguf`). Those are the operator's to see
(the log keeps them) and a map of the server's network and disks to anyone else. Before a result
goes out, `shareable` replaces every URL with `<endpoint>` and every absolute path with its last
part. Secrets are not this module's business: they are redacted wherever text is produced.
"""

from __future__ import annotations

import re

from chorus_mcp.strategies.core.result import StrategyResult

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>)\]]+")
_POSIX_PATH = re.compile(r"(?<![\w.:/~-])(?:~|/)(?:[\w.@+\-]+/)+([\w.@+\-]+)")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\\\s'\"]+\\)+([^\\\s'\"]+)")


def shareable(text: str) -> str:
    """`text` without endpoint URLs and absolute paths (each path keeps its file name)."""
    text = _URL.sub(lambda m: "<endpoint>" + m.group(0)[len(m.group(0).rstrip(".,:;!?")) :], text)
    text = _POSIX_PATH.sub(r"\1", text)
    return _WINDOWS_PATH.sub(r"\1", text)


def scrub_result(result: StrategyResult) -> StrategyResult:
    """The result with every error text made `shareable` (in place, and returned)."""
    if result.error is not None:
        result.error = shareable(result.error)
    for call in result.calls:
        if call.error is not None:
            call.error = shareable(call.error)
    return result
