"""Errors shown to a client carry no endpoint URL and no absolute path; the rest of the text stays."""

from __future__ import annotations

import pytest

from chorus_mcp.server.mcp.shareable import shareable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "fast: HTTP 404 from http://10.0.0.7:8000/v1/chat/completions: model not found",
            "fast: HTTP 404 from <endpoint>: model not found",
        ),
        ("could not reach https://internal.example.com/v1 (timeout)", "could not reach <endpoint> (timeout)"),
        ("model file /srv/chorus/models/qwen-1.5b.gguf is missing", "model file qwen-1.5b.gguf is missing"),
        (
            "session store /home/op/.local/share/chorus-mcp/sessions.sqlite3: locked",
            "session store sessions.sqlite3: locked",
        ),
        ("cache C:\\Users\\op\\AppData\\chorus\\cache.sqlite3 failed", "cache cache.sqlite3 failed"),
        ("redis unix:///run/redis/redis.sock refused", "redis <endpoint> refused"),
    ],
)
def test_endpoints_and_absolute_paths_are_taken_out(text: str, shown: str) -> None:
    assert shareable(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "deadline reached after 30s",
        "no model answered: fast (error): rate limited, retry in 2s",
        "openai/gpt-4o-mini: 1/2 answers agree",
        "the ratio is 3/4 and the answer is a/b",
        "session_id: no session 'abc' (it may have expired)",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert shareable(text) == text
