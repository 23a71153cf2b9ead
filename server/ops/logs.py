"""Logs: structured, to stderr only (stdout belongs to the stdio transport), never with a secret in them.

Two renderings of the same records: `json` (one object per line, for log collectors and MCP hosts that
keep a server's stderr) and `text` (`time LEVEL logger: message key=value ...`, for a terminal). `auto`
picks text when stderr is a terminal. Every line passes through `strategies.core.errors.redact` after it is
rendered, so a key in a message, an argument, an extra field or a traceback is removed all the same.
Records made inside a span carry its `trace_id` and `span_id`, to find the trace a line belongs to.
Terminal colour codes are no part of a line in either rendering: uvicorn's records carry a coloured copy of
their message (`color_message`), which is dropped, and escape sequences in any message are removed.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Literal

from opentelemetry import trace

from chorus_mcp.strategies.core.errors import redact

LogFormat = Literal["auto", "json", "text"]

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
"""ANSI escape sequences (colours, cursor moves)."""
_QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "LiteLLM": logging.WARNING}
"""Loggers that talk too much at INFO (every HTTP request)."""


def extras(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields a record was given (`extra=`), plus the current span's ids."""
    fields = {
        k: _plain(v) if isinstance(v, str) else v
        for k, v in vars(record).items()
        if k not in _STANDARD and not k.startswith("_")
    }
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        fields.setdefault("trace_id", format(context.trace_id, "032x"))
        fields.setdefault("span_id", format(context.span_id, "016x"))
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _plain(record.getMessage()),
        }
        entry.update(extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = _plain(super().format(record))
        fields = extras(record)
        if fields:
            tail = " ".join(f"{k}={_shown(v)}" for k, v in fields.items())
            head, newline, rest = line.partition("\n")  # keep a traceback below the line
            line = f"{head} {tail}{newline}{rest}"
        return redact(line)


def _plain(text: str) -> str:
    return _ESCAPES.sub("", text)


def _shown(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text


def setup_logging(
    level: str = "INFO", fmt: LogFormat = "auto", stream: IO[str] | None = None
) -> logging.Handler:
    """Route every log record to stderr in `fmt`, at `level`; replaces handlers set up before."""
    stream = sys.stderr if stream is None else stream
    if fmt == "auto":
        fmt = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in _QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, root.level))
    return handler
