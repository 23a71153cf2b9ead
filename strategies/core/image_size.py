"""An image's width and height from its first bytes (PNG, JPEG, GIF, WebP), and what it costs a model in
prompt tokens, by provider family. Pure: no imaging library, nothing decoded beyond the header.

Providers bill an image by its size in pixels after they scale it, each by its own rule:

- **OpenAI** (high detail, the default for a readable image): scaled down to fit 2048x2048, then down
  until its shortest side is at most 768 px; 85 tokens, plus 170 for each 512 px tile it covers.
- **Anthropic**: scaled down until its long edge is at most 1568 px; about width x height / 750 tokens.
- **Anyone else**: the larger of the two, which over-counts rather than overflows a window.

An image whose size cannot be read (a header cut short, a format variant this module does not parse) is
counted as the most its family's rule can give (`UNREADABLE_TOKENS`), never as a small guess.
"""

from __future__ import annotations

import math
import struct
from typing import Literal

ImageFamily = Literal["openai", "anthropic", "other"]

# OpenAI's rule for detail "high" (its vision guide, "calculating costs").
OPENAI_BOX = 2048
OPENAI_SHORT_SIDE = 768
OPENAI_TILE = 512
OPENAI_BASE_TOKENS = 85
OPENAI_TILE_TOKENS = 170
# Anthropic's rule (its vision guide, "evaluate image size"): tokens ≈ width x height / 750 once the long
# edge is within 1568 px.
ANTHROPIC_LONG_EDGE = 1568
ANTHROPIC_PIXELS_PER_TOKEN = 750

UNREADABLE_TOKENS: dict[ImageFamily, int] = {
    # 768 x 2048 after scaling covers 2 x 4 tiles: the most any image costs under OpenAI's rule.
    "openai": OPENAI_BASE_TOKENS + OPENAI_TILE_TOKENS * 8,
    # 1568 x 1568: the most under Anthropic's.
    "anthropic": math.ceil(ANTHROPIC_LONG_EDGE**2 / ANTHROPIC_PIXELS_PER_TOKEN),
    "other": math.ceil(ANTHROPIC_LONG_EDGE**2 / ANTHROPIC_PIXELS_PER_TOKEN),
}
"""What an image whose size cannot be read is counted as: the most its family's rule gives any image."""

_MAX_SIDE = 1 << 16
"""Larger sides than this are not believed (no format here stores a side above 2^32; no provider takes
one near 2^16): such a header is read as unreadable."""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from the image's header; None when it cannot be read."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        size = _png(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        size = _gif(data)
    elif data.startswith(b"\xff\xd8"):
        size = _jpeg(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = _webp(data)
    else:
        size = None
    if size is None:
        return None
    width, height = size
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        return None
    return size


def image_tokens(size: tuple[int, int] | None, family: ImageFamily) -> int:
    """Prompt tokens an image of `size` costs a model of `family` (see the module's rules)."""
    if size is None:
        return UNREADABLE_TOKENS[family]
    if family == "openai":
        return _openai(*size)
    if family == "anthropic":
        return _anthropic(*size)
    return max(_openai(*size), _anthropic(*size))


def most_tokens(size: tuple[int, int] | None) -> int:
    """The most any family is counted for the image: what is reserved for it before the model is known."""
    return max(image_tokens(size, family) for family in UNREADABLE_TOKENS)


def image_family(model: str) -> ImageFamily:
    """The provider family whose rule counts `model`'s images (a provider model id, `openai/gpt-4o`)."""
    name = model.lower()
    provider, _, bare = name.rpartition("/")
    if "anthropic" in name or "claude" in name:
        return "anthropic"
    if provider in ("openai", "azure") or bare.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
        return "openai"
    return "other"


def _openai(width: int, height: int) -> int:
    w, h = float(width), float(height)
    if max(w, h) > OPENAI_BOX:
        scale = OPENAI_BOX / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > OPENAI_SHORT_SIDE:
        scale = OPENAI_SHORT_SIDE / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(round(w) / OPENAI_TILE) * math.ceil(round(h) / OPENAI_TILE)
    return OPENAI_BASE_TOKENS + OPENAI_TILE_TOKENS * tiles


def _anthropic(width: int, height: int) -> int:
    w, h = float(width), float(height)
    if max(w, h) > ANTHROPIC_LONG_EDGE:
        scale = ANTHROPIC_LONG_EDGE / max(w, h)
        w, h = w * scale, h * scale
    return max(1, math.ceil(round(w) * round(h) / ANTHROPIC_PIXELS_PER_TOKEN))


# ── headers ──────────────────────────────────────────────────────────────────────────────────────────


def _png(data: bytes) -> tuple[int, int] | None:
    # The first chunk is IHDR: length (4), type (4), then width and height, big-endian.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif(data: bytes) -> tuple[int, int] | None:
    # The logical screen descriptor follows the signature: width and height, little-endian.
    if len(data) < 10:
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


# Start-of-frame markers carry the size; C4 (Huffman tables), C8 (reserved) and CC (arithmetic coding
# conditioning) share the range and do not.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
"""Markers without a length field (TEM, RSTn, SOI, EOI)."""


def _jpeg(data: bytes) -> tuple[int, int] | None:
    # Walk the segments after SOI; each advances by its stated length, so the walk always ends.
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan without a frame header before it
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            return None
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
        if len(data) < 30 or data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        # Lossless: the signature 0x2f, then width-1 and height-1 in 14 bits each.
        if len(data) < 25 or data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        # Extended: flags (4), then canvas width-1 and height-1 in 24 bits each.
        if len(data) < 30:
            return None
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None
