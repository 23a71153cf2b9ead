"""The project's own error types.

Foreign exceptions (litellm, httpx) are translated into these once, at the provider boundary, so
the strategies reason about *what happened*, never about which library raised it::

    ChorusError
    ├── UserInputError            a caller mistake: bad argument, unknown model or strategy
    ├── ConfigError               a broken configuration file or value
    ├── BudgetExceeded            a call would break the cost cap; it was not started
    └── ModelError                a model call failed; carries the model name
        ├── ModelTimeout          no answer within the call's time-out
        ├── RateLimited           429 (retry_after seconds when the provider said so)
        ├── ProviderServerError   5xx from the provider (retry_after when it sent Retry-After, as a 503 may)
        ├── ProviderUnavailable   connection refused/reset, DNS, TLS: nothing usable came back
        ├── AuthenticationFailed  401/403: key missing, wrong or not allowed
        ├── ContextWindowExceeded the prompt does not fit the model
        ├── BadRequest            400: the provider rejected the request itself
        ├── MalformedResponse     the provider answered, but not with a usable completion
        └── CircuitOpen           skipped without a call: the model failed repeatedly just now

Messages never contain secrets: provider messages pass through `redact` before they are kept.
"""

from __future__ import annotations

import re

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"), "[REDACTED]"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._\-~+/=]{8,}"), r"\1[REDACTED]"),
    # `api_key: <value>`, `token=<value>`...: only a value shaped like a credential — a whole word of
    # 6+ key characters with a digit in it — so code in an answer (`api_key=api_key`, `token =
    # get_token()`, `os.environ["..."]`) is left as it is.
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|token|secret|password|x-api-key)[\"']?\s*[:=]\s*[\"']?)"
            r"(?=[A-Za-z0-9_\-./+=~]*\d)[A-Za-z0-9_\-./+=~]{6,}(?=$|[\s\"',;})\]])"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "[REDACTED]"),
    # Credentials inside a URL (`https://user:password@host`), e.g. an `api_base` or a Redis URL.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]+@"), r"\1[REDACTED]@"),
)
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (an API key read from the environment, a client's bearer token, a password
    in a store's URL) so `redact` removes it anywhere."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Remove API keys and bearer tokens from text that may have come from a provider or a traceback.

    The one function for every way out: error messages, logs, spans, and model answers (a provider that
    echoes the `Authorization` header back must not put the key into a result, a session or the cache).
    What it removes: every registered secret (`register_secret`: each provider key as a client reads it,
    every `*_API_KEY` variable once litellm loads, the server's bearer tokens), and anything shaped like a
    provider key (`sk-…`, `AIza…`), a bearer token, a credential assignment or a password in a URL."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where in `text` `redact` finds secrets, as (start, end) ranges (possibly overlapping): for text
    that cannot be rewritten as a whole, such as an answer's log-probability tokens, whose pieces only
    together spell a key."""
    spans: list[tuple[int, int]] = []
    for secret in _known_secrets:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    for pattern, _ in _SECRET_PATTERNS:
        for match in pattern.finditer(text):
            begin = match.end(1) if pattern.groups else match.start()
            spans.append((begin, match.end()))
    return spans


class ChorusError(Exception):
    """Base of every error Chorus raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class UserInputError(ChorusError):
    """The caller asked for something that cannot be done as asked (names the field and the fix)."""


class ConfigError(ChorusError):
    """The configuration is invalid; the message names the file, the field path and what was expected."""


class BudgetExceeded(ChorusError):
    """Starting this call could break the cost cap, so it was not started."""


class ModelError(ChorusError):
    """A model call failed. `model` names the model; `retryable` says whether trying again may help."""

    retryable: bool = False
    status: str = "error"
    """The `CallRecord.status` this failure is reported as."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"{model}: {message}")


class ModelTimeout(ModelError):
    retryable = True
    status = "timeout"


class RateLimited(ModelError):
    retryable = True

    def __init__(self, model: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(model, message)


class ProviderServerError(ModelError):
    retryable = True

    def __init__(
        self, model: str, message: str, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        """Seconds the provider asked to wait (`Retry-After`, usual on a 503), as for `RateLimited`."""
        super().__init__(model, message)


class ProviderUnavailable(ModelError):
    retryable = True


class AuthenticationFailed(ModelError):
    pass


class ContextWindowExceeded(ModelError):
    pass


class BadRequest(ModelError):
    pass


class MalformedResponse(ModelError):
    retryable = True


class CircuitOpen(ModelError):
    """The model failed repeatedly just now; it is skipped without a call until its cool-down ends."""

    status = "skipped"
