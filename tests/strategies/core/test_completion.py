"""`Completion.redacted`: an answer without the secrets a provider echoed, log-probability tokens included."""

from __future__ import annotations

from chorus_mcp.strategies.core.completion import Completion, TokenLogprob
from chorus_mcp.strategies.core.errors import register_secret

KEY = "completion-credential-8a7b6c5d4e"


def test_text_model_finish_reason_and_tokens_lose_the_secret() -> None:
    register_secret(KEY)
    pieces = ["Your", " key", " is", " completion-cred", "ential-8a7b", "6c5d4e", "."]
    completion = Completion(
        text=f"Your key is {KEY}.",
        model=f"gpt-x ({KEY})",
        finish_reason=f"stop {KEY}",
        logprobs=[TokenLogprob(token=piece, logprob=-0.1 * i) for i, piece in enumerate(pieces)],
    )

    clean = completion.redacted()

    assert KEY not in clean.model_dump_json()
    assert clean.text == "Your key is [REDACTED]."
    assert clean.model == "gpt-x ([REDACTED])" and clean.finish_reason == "stop [REDACTED]"
    assert clean.logprobs is not None
    assert [t.token for t in clean.logprobs] == ["Your", " key", " is", *["[REDACTED]"] * 3, "."]
    assert [t.logprob for t in clean.logprobs] == [t.logprob for t in completion.logprobs or []]


def test_a_completion_without_secrets_is_returned_as_it_is() -> None:
    completion = Completion(text="Paris", model="gpt-x", logprobs=[TokenLogprob(token="Paris", logprob=-0.1)])

    assert completion.redacted() is completion
