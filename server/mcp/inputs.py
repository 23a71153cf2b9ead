"""Reading a tool call's `files`: paths within the allowed roots, and MCP content given inline.

Each item of `files` is one of:

- a path (absolute, or a `file://` URI) of a file inside an allowed root: the operator's `inputs.roots`,
  and over stdio the client's MCP roots too (when the client declares them and `inputs.client_roots`
  is on). Symlinks and `..` are resolved before the check, so a link inside a root that points out of
  it is refused. Over HTTP the client's files are not the server's: only the operator's roots count,
  and with none every path is refused;
- MCP content, as a client would put it in a message: an image (`{"type": "image", "data": <base64>,
  "mimeType": "image/png"}`), an embedded resource (`{"type": "resource", "resource": {"uri": ...,
  "text": ...}}` or `... "blob": <base64>`), or a resource link to a `file://` URI (read as a path).

A file is text (UTF-8, no NUL bytes) or an image (PNG, JPEG, GIF or WebP, known by its first bytes,
not by its name); anything else is refused as binary. Every refusal names the item (`files[2]`) and
what is wrong, and never quotes a file's content. A text file's content passes through `redact` before
it goes anywhere, so a key in a `.env` someone attached does not reach a provider, a span or the cache.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.mcpserver import Context

from chorus_mcp.config.schema import InputSettings
from chorus_mcp.strategies.core.errors import UserInputError, redact
from chorus_mcp.strategies.core.image_size import image_size, most_tokens
from chorus_mcp.strategies.core.inputs import Attached, Input
from chorus_mcp.strategies.core.result import NoteDecision
from chorus_mcp.strategies.models.tokenizer import text_tokens

log = logging.getLogger("chorus.inputs")


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The image's mime type by its first bytes (PNG, JPEG, GIF, WebP); None when it is none of those."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class Reader:
    """Reads the `files` of one call under `settings`, from `roots` (already resolved)."""

    settings: InputSettings
    roots: tuple[Path, ...]
    over_http: bool

    async def read(self, files: Sequence[object]) -> Attached | None:
        if not files:
            return None
        if len(files) > self.settings.max_files:
            raise UserInputError(
                f"files: {len(files)} items; expected at most {self.settings.max_files} (inputs.max_files)"
            )
        items = [await self._item(f"files[{i}]", item) for i, item in enumerate(files)]
        # Counted in a worker thread: a large file takes the tokenizer a while, the event loop must not wait.
        counted = [
            i.model_copy(update={"tokens": await anyio.to_thread.run_sync(count_tokens, i.text)})
            if i.text is not None
            else i
            for i in items
        ]
        return Attached(items=tuple(counted), oversize=self.settings.oversize)

    async def _item(self, where: str, item: object) -> Input:
        if isinstance(item, str):
            return await self._path(where, item)
        if not isinstance(item, dict):
            raise UserInputError(f"{where}: expected a path or an object (MCP image/resource content)")
        kind = item.get("type")
        if kind == "image":
            data = _base64(f"{where}.data", item.get("data"))
            return self._image(where, "inline image", data, f"{where}.data")
        if kind == "resource":
            resource = item.get("resource")
            if not isinstance(resource, dict):
                raise UserInputError(f"{where}.resource: expected an object with uri and text or blob")
            uri = resource.get("uri")
            name = uri if isinstance(uri, str) and uri else where
            if isinstance(resource.get("text"), str):
                raw = resource["text"].encode()
                return self._text(where, name, raw, resource["text"])
            data = _base64(f"{where}.resource.blob", resource.get("blob"))
            return self._bytes(where, name, data, f"{where}.resource.blob")
        if kind == "resource_link":
            uri = item.get("uri")
            if not isinstance(uri, str):
                raise UserInputError(f"{where}.uri: expected a file:// URI")
            return await self._path(where, uri)
        raise UserInputError(
            f"{where}: {_kind_shown(item)}; expected a path, a file:// URI, or MCP content "
            "(type image, resource or resource_link)"
        )

    async def _path(self, where: str, given: str) -> Input:
        path = _as_path(where, given)
        if not self.roots:
            how = (
                "over HTTP only the operator's inputs.roots are readable, and none is configured"
                if self.over_http
                else "no allowed roots: configure inputs.roots, or use a client that declares MCP roots"
            )
            raise UserInputError(f"{where}: {given!r} refused: {how}; send the content inline instead")
        try:
            resolved = await anyio.Path(path).resolve(strict=True)
        except (OSError, RuntimeError):
            raise UserInputError(f"{where}: {given!r}: no such file") from None
        real = Path(resolved)
        if not any(real.is_relative_to(root) for root in self.roots):
            # Over HTTP the server's folders are not the caller's to map: the roots are not listed.
            shown = "" if self.over_http else f" ({', '.join(str(r) for r in self.roots)})"
            raise UserInputError(f"{where}: {given!r} is outside the allowed roots{shown}")
        if not await resolved.is_file():
            raise UserInputError(f"{where}: {given!r} is not a regular file")
        limit = self.settings.max_file_bytes
        try:
            async with await anyio.open_file(real, "rb") as handle:
                data = await handle.read(limit + 1)
        except OSError as exc:
            raise UserInputError(f"{where}: {given!r} could not be read ({exc.strerror})") from None
        if len(data) > limit:
            raise UserInputError(f"{where}: {given!r} is larger than {limit:,} bytes (inputs.max_file_bytes)")
        return self._bytes(where, str(real), data, where)

    def _bytes(self, where: str, name: str, data: bytes, field: str) -> Input:
        if image_type(data) is not None:
            return self._image(where, name, data, field)
        if b"\x00" in data:
            raise UserInputError(
                f"{field}: {name!r} is binary; expected UTF-8 text or a PNG/JPEG/GIF/WebP image"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserInputError(
                f"{field}: {name!r} is not UTF-8 text; expected UTF-8 text or a PNG/JPEG/GIF/WebP image"
            ) from None
        return self._text(where, name, data, text)

    def _text(self, where: str, name: str, raw: bytes, text: str) -> Input:
        limit = self.settings.max_file_bytes
        if len(raw) > limit:
            raise UserInputError(f"{where}: {name!r} is larger than {limit:,} bytes (inputs.max_file_bytes)")
        clean = redact(text)
        removed = clean.count("[REDACTED]") - text.count("[REDACTED]")
        return Input(
            name=name,
            kind="text",
            mime_type="text/plain",
            sha256=hashlib.sha256(raw).hexdigest(),
            size_bytes=len(raw),
            tokens=0,  # counted by `read`, off the event loop
            redacted=max(0, removed),
            text=clean,
        )

    def _image(self, where: str, name: str, data: bytes, field: str) -> Input:
        mime = image_type(data)
        if mime is None:
            raise UserInputError(f"{field}: not a PNG, JPEG, GIF or WebP image")
        limit = self.settings.max_file_bytes
        if len(data) > limit:
            raise UserInputError(f"{where}: {name!r} is larger than {limit:,} bytes (inputs.max_file_bytes)")
        size = image_size(data)  # None (a header cut short): counted as the most an image can cost
        return Input(
            name=name,
            kind="image",
            mime_type=mime,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            tokens=most_tokens(size),
            width=size[0] if size else None,
            height=size[1] if size else None,
            data=base64.b64encode(data).decode("ascii"),
        )


def attached_notes(attached: Attached | None) -> list[NoteDecision]:
    """What the call attached, for its result: each input by name, kind, size and hash."""
    if attached is None:
        return []
    notes = [
        NoteDecision(stage="inputs", message="attached: " + "; ".join(i.described() for i in attached.items))
    ]
    for item in attached.items:
        if item.redacted:
            message = f"{item.name}: {item.redacted} secret(s) redacted before it was sent"
            notes.append(NoteDecision(stage="inputs", message=message))
    return notes


def count_tokens(text: str) -> int:
    """Prompt tokens of `text` (`models.tokenizer`: cl100k_base, else ~4 characters a token). Blocking."""
    return text_tokens(text)


def _as_path(where: str, given: str) -> Path:
    if "://" in given:
        parts = urlsplit(given)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise UserInputError(
                f"{where}: {given!r}: only file:// URIs name files; send other content inline "
                "(type resource with text or blob)"
            )
        given = unquote(parts.path)
    path = Path(given).expanduser()
    if not path.is_absolute():
        raise UserInputError(f"{where}: {given!r} is relative; expected an absolute path or a file:// URI")
    return path


def _base64(field: str, value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise UserInputError(f"{field}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError(f"{field}: not valid base64") from None


def _kind_shown(item: dict[str, Any]) -> str:
    kind = item.get("type")
    return f"type {kind!r}" if isinstance(kind, str) else "an object without a type"


def reader_for(ctx: Context[Any, Any], settings: InputSettings, client_roots: Sequence[str] = ()) -> Reader:
    """The reader for this call: the operator's roots, plus (over stdio or in-process) the folders the
    client declared as its MCP roots (`client_roots`, asked by `client_roots.RootsChannel`)."""
    roots = resolved_folders(settings.roots)
    if not over_http(ctx) and settings.client_roots:
        roots.extend(resolved_folders(client_roots))
    return Reader(settings, tuple(dict.fromkeys(roots)), over_http(ctx))


def over_http(ctx: Context[Any, Any]) -> bool:
    """Whether the call came over HTTP: the HTTP transports attach the request they came in; stdio and
    in-process calls have none."""
    return ctx.request_context.request is not None


def resolved_folders(folders: Sequence[str]) -> list[Path]:
    """The folders with `~`, symlinks and `..` resolved: what a file's resolved path is checked against
    (a few stat calls on a handful of folders; not worth a worker thread)."""
    return [Path(folder).expanduser().resolve() for folder in folders]
