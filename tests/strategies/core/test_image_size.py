"""Image sizes read from PNG, JPEG, GIF and WebP headers, and the tokens each provider family counts for
them (`core.image_size`). The images are real files (37x21 px) written by an imaging library once, kept
here as base64; hostile headers fall back to the stated most-an-image-costs figure."""

from __future__ import annotations

import base64
import struct

import pytest

from chorus_mcp.strategies.core.image_size import (
    UNREADABLE_TOKENS,
    image_family,
    image_size,
    image_tokens,
    most_tokens,
)

IMAGES = {
    "png": (
        "iVBORw0KGgoAAAANSUhEUgAAACUAAAAVCAIAAABOhrD5AAAAJklEQVR4nGM8wcXFQEfARE/LRu0btW/UvlH7Ru0btW/UvlH7"
        "qAAArt4BBscTq5gAAAAASUVORK5CYII="
    ),
    "jpeg": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19i"
        "Z2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
        "Y2NjY2NjY2P/wAARCAAVACUDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
        "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
        "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
        "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
        "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
        "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
        "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDAooorgPrQooooAKKKKACiiigAooooAKKKKAP/2Q=="
    ),
    "jpeg_progressive": (
        "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19i"
        "Z2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
        "Y2NjY2NjY2P/wgARCAAVACUDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAX/xAAWAQEBAQAAAAAAAAAAAAAAAAAABAX/"
        "2gAMAwEAAhADEAAAAZ4n1gAAAAP/xAAUEAEAAAAAAAAAAAAAAAAAAAAw/9oACAEBAAEFAn//xAAUEQEAAAAAAAAAAAAAAAAAAAAg"
        "/9oACAEDAQE/AV//xAAUEQEAAAAAAAAAAAAAAAAAAAAg/9oACAECAQE/AV//xAAUEAEAAAAAAAAAAAAAAAAAAAAw/9oACAEBAAY/"
        "An//xAAUEAEAAAAAAAAAAAAAAAAAAAAw/9oACAEBAAE/IX//2gAMAwEAAgADAAAAEP8A/wD/AP8A/wD/xAAUEQEAAAAAAAAAAAAA"
        "AAAAAAAg/9oACAEDAQE/EF//xAAUEQEAAAAAAAAAAAAAAAAAAAAg/9oACAECAQE/EF//xAAUEAEAAAAAAAAAAAAAAAAAAAAw/9oA"
        "CAEBAAE/EH//2Q=="
    ),
    "gif": (
        "R0lGODdhJQAVAIEAAMgKCgAAAAAAAAAAACwAAAAAJQAVAEAILwABCBxIsKDBgwgTKlzIsKHDhxAjSpxIsaLFixgzatzIsaPH"
        "jyBDihxJsqRJkgEBADs="
    ),
    "webp_lossy": (
        "UklGRkoAAABXRUJQVlA4ID4AAABQAwCdASolABUAPtFmrFCoJaQipWgBABoJZwDG5oAAK/fDcAD+7QcvrvFpRr/8lP8Xfebv"
        "vuus23d6pgAAAA=="
    ),
    "webp_lossless": "UklGRh4AAABXRUJQVlA4TBEAAAAvJAAFAAdQhSJXof+BiOh/AAA=",
    "webp_extended": (
        "UklGRm4AAABXRUJQVlA4WAoAAAAQAAAAJAAAFAAAQUxQSAoAAAABB1DAiAhERP8DVlA4ID4AAABQAwCdASolABUAPtFmrFCoJaQi"
        "pWgBABoJZwDG5oAAK/fDcAD+7QcvrvFpRr/8lP8Xfebvvuus23d6pgAAAA=="
    ),
}


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_the_size_of_a_real_image_is_read_from_its_header(kind: str) -> None:
    assert image_size(base64.b64decode(IMAGES[kind])) == (37, 21)


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_a_header_cut_short_reads_as_unreadable_at_every_length(kind: str) -> None:
    data = base64.b64decode(IMAGES[kind])
    # Every prefix shorter than the bytes holding the size is unreadable, never a made-up size.
    sizes = {image_size(data[:n]) for n in range(len(data))}
    assert sizes <= {None, (37, 21)}
    assert image_size(data[:9]) is None


def png(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", width, height) + b"\x08\x02\x00\x00\x00"


@pytest.mark.parametrize(
    "data",
    [
        png(0, 10),  # a zero side
        png(10, 0),
        png(100_000, 10),  # larger than any provider takes: not believed
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IDAT", 10, 10),  # the first chunk is not IHDR
        b"GIF89a\x00\x00\x05\x00",  # zero width
        b"\xff\xd8\xff\xe0\x00\x00" + b"\x00" * 20,  # a segment length below 2
        b"\xff\xd8\xff\xe0\x00\x01" + b"\x00" * 20,
        b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20,  # scan data before any frame header
        b"\xff\xd8\x00\x00\x00\x00\x00",  # garbage where a marker should be
        b"\xff\xd8" + b"\xff" * 5000,  # nothing but fill bytes: the walk still ends
        b"\xff\xd8\xff\xe0\xff\xff" + b"\x00" * 10,  # a length that runs past the end
        b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20,  # lossy without its start code
        b"RIFF\x00\x00\x00\x00WEBPVP8L" + b"\x00" * 20,  # lossless without its signature
        b"RIFF\x00\x00\x00\x00WEBPALPH" + b"\x00" * 20,  # a chunk that holds no size
        b"not an image at all",
        b"",
    ],
)
def test_a_hostile_header_reads_as_unreadable(data: bytes) -> None:
    assert image_size(data) is None


def test_openai_counts_tiles_of_512_px_after_scaling_to_2048_and_a_768_shortest_side() -> None:
    # Its vision guide's own examples: 1024x1024 -> 768x768 = 4 tiles; 2048x4096 -> 768x1536 = 6 tiles.
    assert image_tokens((1024, 1024), "openai") == 85 + 170 * 4 == 765
    assert image_tokens((2048, 4096), "openai") == 85 + 170 * 6 == 1105
    assert image_tokens((37, 21), "openai") == 85 + 170  # small images are not scaled up
    assert image_tokens((768, 2048), "openai") == UNREADABLE_TOKENS["openai"] == 85 + 170 * 8


def test_anthropic_counts_about_one_token_per_750_pixels_after_a_1568_px_long_edge() -> None:
    assert image_tokens((1000, 1000), "anthropic") == 1334  # 1,000,000 / 750, rounded up
    assert image_tokens((3000, 2000), "anthropic") == 2185  # scaled to 1568x1045
    assert image_tokens((1, 1), "anthropic") == 1
    assert image_tokens((1568, 1568), "anthropic") == UNREADABLE_TOKENS["anthropic"]


def test_other_providers_are_counted_by_the_larger_rule_and_unreadable_sizes_by_the_most_it_can_cost() -> (
    None
):
    assert image_tokens((1024, 1024), "other") == max(765, 1399)
    assert image_tokens((768, 2048), "other") == image_tokens((768, 2048), "openai")  # tiles win here
    for family, most in UNREADABLE_TOKENS.items():
        assert image_tokens(None, family) == most
    assert most_tokens(None) == max(UNREADABLE_TOKENS.values())
    assert most_tokens((37, 21)) == max(image_tokens((37, 21), f) for f in UNREADABLE_TOKENS)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai/gpt-4o", "openai"),
        ("gpt-4.1-mini", "openai"),
        ("azure/my-deployment", "openai"),
        ("openrouter/openai/o3", "openai"),
        ("anthropic/claude-sonnet-4-5", "anthropic"),
        ("bedrock/anthropic.claude-3-5-sonnet", "anthropic"),
        ("gemini/gemini-2.5-pro", "other"),
        ("ollama/llava", "other"),
    ],
)
def test_a_models_family_is_known_by_its_provider_id(model: str, family: str) -> None:
    assert image_family(model) == family
