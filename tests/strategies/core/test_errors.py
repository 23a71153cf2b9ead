"""`redact`: what it removes from error messages, logs, spans and answers — and the code it leaves alone."""

from __future__ import annotations

import pytest

from chorus_mcp.strategies.core.errors import ModelError, redact, register_secret, secret_spans

REGISTERED = "house-credential-4e9d1f7a2b"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("Authorization: Bearer abc.def-123456789", "Authorization: Bearer [REDACTED]"),
        ("key sk-proj-abcdefgh12345678 here", "key [REDACTED] here"),
        ("AIzaSyA1234567890abcdefghijklmnop", "[REDACTED]"),
        ('{"api_key": "abcd1234efgh"}', '{"api_key": "[REDACTED]"}'),
        ("x-api-key: 0123456789abcdef", "x-api-key: [REDACTED]"),
        ("set token=abc123def and go", "set token=[REDACTED] and go"),
        ("password=hunter22;", "password=[REDACTED];"),
        ("redis://chorus:pw-98765@cache:6379/0", "redis://[REDACTED]@cache:6379/0"),
    ],
)
def test_credentials_are_redacted(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize(
    "code",
    [
        'api_key = os.environ["OPENAI_API_KEY"]',
        "client = OpenAI(api_key=api_key)",
        "token = get_token()",
        "secret: my-secret-name",
        "max_tokens=1024",
        "token_count = 12345",
        'headers = {"Authorization": f"Bearer {token}"}',
    ],
)
def test_code_that_handles_credentials_is_left_as_it_is(code: str) -> None:
    """Answers pass through `redact` too: an answer that writes code using a key must stay valid code."""
    assert redact(code) == code


def test_a_registered_secret_is_redacted_wherever_it_appears_and_in_every_error() -> None:
    register_secret(REGISTERED)

    assert redact(f"model id {REGISTERED}-x") == "model id [REDACTED]-x"
    assert REGISTERED not in str(ModelError("m", f"upstream said {REGISTERED}"))


def test_secret_spans_cover_what_redact_removes() -> None:
    register_secret(REGISTERED)
    text = f"a {REGISTERED} b Bearer abcdefgh12345 c"

    spans = secret_spans(text)

    assert (2, 2 + len(REGISTERED)) in spans
    assert any(text[start:end] == "abcdefgh12345" for start, end in spans)
    assert secret_spans("nothing to hide here") == []
