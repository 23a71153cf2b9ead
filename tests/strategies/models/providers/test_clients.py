"""One suite, both provider paths: `LiteLLMClient` and `OpenAICompatClient` against the fake OpenAI server
(real HTTP on loopback). Every test runs on each client, and the parity tests run the same exchange on
both and compare the results field by field: the same `Completion`, the same error type and message."""

from __future__ import annotations

import email.utils
import time
import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers import LiteLLMClient, OpenAICompatClient
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.anyio

KEY_ENV = "CHORUS_TEST_FAKE_KEY"
# Deliberately not shaped like a provider key, so only `register_secret` can catch it.
KEY = "dummy-credential-7f3a9c2e51b8d406"

ClientType = type[LiteLLMClient] | type[OpenAICompatClient]
CLIENTS: list[ClientType] = [LiteLLMClient, OpenAICompatClient]
Make = Callable[..., ModelClient]


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def build(kind: ClientType, fake: FakeOpenAI, name: str, **entry: object) -> ModelClient:
    settings: dict[str, object] = {
        "model": f"openai/{name}",
        "api_base": fake.base_url,
        "api_key_env": KEY_ENV,
    }
    settings.update(entry)
    return kind(f"alias-{name}", ModelEntry.model_validate(settings))


@pytest.fixture(params=CLIENTS, ids=["litellm", "openai_compat"])
def make(request: pytest.FixtureRequest, fake_openai: FakeOpenAI) -> Make:
    """Builds the client under test for a model of the fake server: `make("gpt-a", **entry_fields)`."""
    kind: ClientType = request.param
    return lambda name, **entry: build(kind, fake_openai, name, **entry)


def ask(prompt: str = "What is the capital of France?", **settings: Any) -> CompletionRequest:
    return CompletionRequest.of(prompt, **settings)


# -- answers ---------------------------------------------------------------------------------------


async def test_a_plain_answer_carries_text_usage_latency_and_finish_reason(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script(
        "gpt-a",
        "Paris",
        latency_s=0.05,
        prompt_tokens=14,
        completion_tokens=2,
        response_model="gpt-a-2025-01-01",
    )

    completion = await make("gpt-a").complete(ask())

    assert completion.text == "Paris"
    assert completion.model == "gpt-a-2025-01-01"
    assert (completion.prompt_tokens, completion.completion_tokens) == (14, 2)
    assert completion.finish_reason == "stop"
    assert 0.05 <= completion.latency_s < 5
    assert completion.logprobs is None


async def test_the_request_carries_messages_sampling_settings_and_the_key(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", "ok")

    await make("gpt-a").complete(ask("hello", system="be brief", max_tokens=7, temperature=0.3))

    sent = fake_openai.last_request
    assert sent.model == "gpt-a"
    assert sent.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert sent.body["max_tokens"] == 7
    assert sent.body["temperature"] == 0.3
    assert "logprobs" not in sent.body
    assert "stream" not in sent.body or sent.body["stream"] is False
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in sent.raw.decode(), "the key travels in the header only"


async def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature_or_logprobs(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("*", "ok")

    await make("gpt-5-mini").complete(ask(max_tokens=7, temperature=0.3, logprobs=True))
    sent = fake_openai.last_request.body
    await make("o4-mini").complete(ask(temperature=1.0))
    at_one = fake_openai.last_request.body

    assert sent["max_completion_tokens"] == 7
    assert not {"max_tokens", "temperature", "logprobs"} & set(sent)
    assert at_one["temperature"] == 1.0


async def test_a_reasoning_effort_travels_in_the_body_and_none_is_sent_without_one(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("o3-mini", "42")

    await make("o3-mini").complete(ask(reasoning_effort="high"))
    with_effort = fake_openai.last_request.body
    await make("o3-mini").complete(ask())

    assert with_effort["reasoning_effort"] == "high"
    assert "reasoning_effort" not in fake_openai.last_request.body


async def test_reasoning_tokens_are_reported_within_the_completion_tokens_and_priced_as_output(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("o3-mini", "42", prompt_tokens=10, completion_tokens=2, reasoning_tokens=300)

    completion = await make("o3-mini").complete(ask(reasoning_effort="medium"))

    assert completion.reasoning_tokens == 300
    assert completion.completion_tokens == 302
    # o3-mini: $1.10 in, $4.40 out per million tokens; the reasoning tokens are output.
    assert completion.cost_usd == Decimal("10") * Decimal("1.1e-6") + Decimal("302") * Decimal("4.4e-6")


VERDICT = {
    "title": "review verdict",
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "issues": {"type": "array", "items": {"type": "string"}}},
    "required": ["approved", "issues"],
    "additionalProperties": False,
}


async def test_a_seed_travels_in_the_body_and_no_seed_means_none_is_sent(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", "ok")

    await make("gpt-a").complete(ask(seed=42, temperature=0.7))
    seeded = fake_openai.last_request.body
    await make("gpt-a").complete(ask(temperature=0.7))

    assert seeded["seed"] == 42
    assert "seed" not in fake_openai.last_request.body


async def test_structured_output_is_requested_for_a_model_whose_map_entry_supports_it(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-4o-mini", '{"approved": true, "issues": []}')  # the map: supports_response_schema

    await make("gpt-4o-mini").complete(ask(response_schema=VERDICT))

    assert fake_openai.last_request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "review_verdict", "schema": VERDICT, "strict": True},
    }


@pytest.mark.parametrize(
    "model",
    ["gpt-a", "gpt-3.5-turbo"],
    ids=["the map does not know the model", "the map does not say it supports a schema"],
)
async def test_structured_output_is_not_requested_for_a_model_whose_map_entry_does_not_support_it(
    fake_openai: FakeOpenAI, make: Make, model: str
) -> None:
    fake_openai.script(model, '{"approved": true, "issues": []}')

    await make(model).complete(ask(response_schema=VERDICT, seed=7))

    sent = fake_openai.last_request.body
    assert "response_format" not in sent
    assert sent["seed"] == 7  # the rest of the request is sent as usual


async def test_a_request_without_a_schema_asks_for_no_response_format(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-4o-mini", "Paris")

    await make("gpt-4o-mini").complete(ask())

    assert "response_format" not in fake_openai.last_request.body


async def test_logprobs_are_returned_per_token_when_asked(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.script("gpt-a", "Paris.", logprobs=[("Paris", -0.01), (".", -0.5)])

    completion = await make("gpt-a").complete(ask(logprobs=True))

    assert fake_openai.last_request.body["logprobs"] is True
    assert completion.logprobs is not None
    assert [(t.token, t.logprob) for t in completion.logprobs] == [("Paris", -0.01), (".", -0.5)]


async def test_cost_comes_from_the_entrys_price_override(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=1000, completion_tokens=500)

    completion = await make("house-model", input_cost_per_mtok="1.00", output_cost_per_mtok="2.00").complete(
        ask()
    )

    assert completion.cost_usd == Decimal("0.002")


async def test_cost_comes_from_litellms_price_map_for_a_known_model(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-4o-mini", "ok", prompt_tokens=1_000_000, completion_tokens=1_000_000)

    completion = await make("gpt-4o-mini").complete(ask())

    # gpt-4o-mini is $0.15 in / $0.60 out per million tokens in litellm's bundled map.
    assert completion.cost_usd == Decimal("0.75")


async def test_cost_is_unknown_not_zero_for_a_model_the_price_map_lacks(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=10, completion_tokens=5)

    completion = await make("house-model").complete(ask())

    assert completion.cost_usd is None
    assert completion.prompt_tokens == 10


async def test_a_half_price_override_still_needs_the_price_map_for_the_other_half(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=10, completion_tokens=5)

    completion = await make("house-model", input_cost_per_mtok="1").complete(ask())

    assert completion.cost_usd is None


async def test_usage_the_provider_did_not_report_is_unknown_not_zero(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("house-model", "ok", include_usage=False)

    completion = await make("house-model", input_cost_per_mtok="1", output_cost_per_mtok="2").complete(ask())

    assert (completion.prompt_tokens, completion.completion_tokens) == (None, None)
    assert completion.cost_usd is None


async def test_a_truncated_answer_reports_finish_reason_length(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.script("gpt-a", "The capital of", finish_reason="length")

    completion = await make("gpt-a").complete(ask(max_tokens=3))

    assert completion.finish_reason == "length"


async def test_the_pre_call_estimate_is_at_least_the_real_cost(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.script("gpt-4o-mini", "Paris is the capital.")
    client = make("gpt-4o-mini")
    request = ask("What is the capital of France? " * 20, max_tokens=50)

    estimate = client.estimate_cost_usd(request)  # type: ignore[attr-defined]
    completion = await client.complete(request)

    assert estimate is not None and completion.cost_usd is not None
    assert estimate >= completion.cost_usd
    assert make("house-model").estimate_cost_usd(request) is None  # type: ignore[attr-defined]


# -- faults ----------------------------------------------------------------------------------------


def _http_date_in(seconds: int) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


FAULTS: list[tuple[str, Fault, type[ModelError]]] = [
    ("429 with Retry-After", Fault.rate_limited(retry_after=7), RateLimited),
    ("429 without Retry-After", Fault.rate_limited(), RateLimited),
    ("500", Fault.server_error(), ProviderServerError),
    ("502", Fault.server_error(502), ProviderServerError),
    ("503", Fault.unavailable(), ProviderServerError),
    ("529", Fault.http(529, "Overloaded", type="overloaded_error"), ProviderServerError),
    ("504 gateway time-out", Fault.http(504, "upstream timed out", type="server_error"), ModelTimeout),
    ("408", Fault.http(408, "request timed out", type="server_error"), ModelTimeout),
    ("401", Fault.unauthorized(), AuthenticationFailed),
    ("403", Fault.forbidden(), AuthenticationFailed),
    ("context length", Fault.context_length(), ContextWindowExceeded),
    ("400", Fault.bad_request(), BadRequest),
    ("404 unknown model", Fault.not_found("gpt-a"), BadRequest),
    ("409", Fault.http(409, "Conflict", type="invalid_request_error"), BadRequest),
    ("422", Fault.http(422, "Unprocessable", type="invalid_request_error"), BadRequest),
    ("connection reset mid-response", Fault.reset(), ProviderUnavailable),
    ("malformed JSON", Fault.malformed_json(), MalformedResponse),
    ("empty content", Fault.empty_content(), MalformedResponse),
    ("null content", Fault.null_content(), MalformedResponse),
    ("no choices", Fault.no_choices(), MalformedResponse),
]
FAULT_IDS = [i for i, _, _ in FAULTS]


@pytest.mark.parametrize(("fault", "expected"), [(f, e) for _, f, e in FAULTS], ids=FAULT_IDS)
async def test_each_provider_fault_becomes_one_chorus_error(
    fake_openai: FakeOpenAI, make: Make, fault: Fault, expected: type[ModelError]
) -> None:
    fake_openai.script("gpt-a", fault)

    with pytest.raises(expected) as caught:
        await make("gpt-a").complete(ask())

    assert type(caught.value) is expected
    assert caught.value.model == "alias-gpt-a"
    assert caught.value.__cause__ is not None or expected is MalformedResponse
    assert len(fake_openai.requests) == 1, "no client may retry on its own"


async def test_a_hanging_provider_times_out_at_the_requests_timeout(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", Fault.hang())
    started = time.perf_counter()

    with pytest.raises(ModelTimeout, match=r"no answer within 0\.3s"):
        await make("gpt-a").complete(ask(timeout_s=0.3))

    assert time.perf_counter() - started < 3


async def test_retry_after_is_parsed_in_seconds_and_absent_when_not_sent(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", [Fault.rate_limited(retry_after=7), Fault.rate_limited()])
    client = make("gpt-a")

    with pytest.raises(RateLimited) as first:
        await client.complete(ask())
    with pytest.raises(RateLimited) as second:
        await client.complete(ask())

    assert first.value.retry_after == 7.0
    assert second.value.retry_after is None


async def test_retry_after_as_an_http_date_becomes_seconds_from_now(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script(
        "gpt-a", Fault.http(429, "slow down", type="requests", headers={"retry-after": _http_date_in(30)})
    )

    with pytest.raises(RateLimited) as caught:
        await make("gpt-a").complete(ask())

    assert caught.value.retry_after is not None
    assert 20 <= caught.value.retry_after <= 31


async def test_a_503s_retry_after_is_parsed_as_a_429s_is(fake_openai: FakeOpenAI, make: Make) -> None:
    overloaded = "The engine is currently overloaded, please try again later."
    fake_openai.script(
        "gpt-a",
        [
            Fault.http(503, overloaded, type="server_error", headers={"retry-after": "7"}),
            Fault.http(503, overloaded, type="server_error", headers={"retry-after-ms": "1500"}),
            Fault.unavailable(),
        ],
    )
    client = make("gpt-a")

    waits = []
    for _ in range(3):
        with pytest.raises(ProviderServerError) as caught:
            await client.complete(ask())
        assert caught.value.status_code == 503
        waits.append(caught.value.retry_after)

    assert waits == [7.0, 1.5, None]


async def test_server_errors_keep_the_providers_status_code(fake_openai: FakeOpenAI, make: Make) -> None:
    fake_openai.script("gpt-a", [Fault.server_error(), Fault.unavailable()])
    client = make("gpt-a")

    codes = []
    for _ in range(2):
        with pytest.raises(ProviderServerError) as caught:
            await client.complete(ask())
        codes.append(caught.value.status_code)

    assert codes == [500, 503]


@pytest.mark.parametrize("kind", CLIENTS, ids=["litellm", "openai_compat"])
async def test_a_refused_connection_means_the_provider_is_unavailable(kind: ClientType) -> None:
    with FakeOpenAI() as fake:
        client = build(kind, fake, "gpt-a")
    # The server is gone: nothing listens on that port any more.

    with pytest.raises(ProviderUnavailable, match="could not connect"):
        await client.complete(ask())


async def test_a_transient_fault_fails_one_call_and_the_next_succeeds(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", "fine")
    fake_openai.fail_next(Fault.unavailable(), model="gpt-a")
    client = make("gpt-a")

    with pytest.raises(ProviderServerError):
        await client.complete(ask())
    completion = await client.complete(ask())

    assert completion.text == "fine"


async def test_the_api_key_never_appears_in_an_error_even_when_the_provider_echoes_it(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", Fault.unauthorized(echo_key=True))

    with pytest.raises(AuthenticationFailed) as caught:
        await make("gpt-a").complete(ask())

    assert fake_openai.last_request.contains(KEY)  # the provider really did get (and echo) it
    assert KEY not in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))
    assert KEY not in repr(caught.value.__cause__)
    assert "[REDACTED]" in str(caught.value)


async def test_a_key_the_provider_echoes_in_an_answer_is_redacted_from_text_model_and_tokens(
    fake_openai: FakeOpenAI, make: Make
) -> None:
    fake_openai.script("gpt-a", Fault.echoes_authorization())

    completion = await make("gpt-a").complete(ask(logprobs=True))

    assert fake_openai.last_request.headers["authorization"] == f"Bearer {KEY}"  # it was sent, and echoed
    assert completion.text == "Here is what you sent me: Authorization: Bearer [REDACTED]"
    assert KEY not in completion.model_dump_json()
    assert completion.model == "gpt-a for [REDACTED]"
    assert completion.logprobs and completion.logprobs[-1].token == "[REDACTED]"


async def test_a_missing_key_variable_fails_before_any_request(
    fake_openai: FakeOpenAI, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    fake_openai.script("gpt-a", "ok")

    with pytest.raises(AuthenticationFailed, match=KEY_ENV):
        await make("gpt-a").complete(ask())

    assert fake_openai.requests == []


@pytest.mark.parametrize("kind", CLIENTS, ids=["litellm", "openai_compat"])
async def test_no_key_configured_or_in_the_providers_variable_is_an_authentication_failure(
    kind: ClientType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    client = kind("keyless", ModelEntry(model="openai/gpt-a"))

    with pytest.raises(AuthenticationFailed, match="no credentials: no API key found"):
        await client.complete(ask())


@pytest.mark.parametrize("kind", CLIENTS, ids=["litellm", "openai_compat"])
def test_each_client_is_a_model_client_named_after_the_alias(kind: ClientType) -> None:
    client = kind("fast", ModelEntry(model="openai/gpt-4o-mini"))

    assert isinstance(client, ModelClient)
    assert client.name == "fast"


# -- parity: the same exchange on both paths gives the same result ----------------------------------


async def _outcome(client: ModelClient, request: CompletionRequest) -> Completion | ModelError:
    try:
        return await client.complete(request)
    except ModelError as exc:
        return exc


def _comparable(outcome: Completion | ModelError) -> object:
    if isinstance(outcome, Completion):
        return outcome.model_dump(exclude={"latency_s"})
    retry_after = getattr(outcome, "retry_after", None)
    return (
        type(outcome).__name__,
        str(outcome),
        None if retry_after is None else round(retry_after),
        getattr(outcome, "status_code", None),
    )


PARITY_ANSWERS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "priced by the map",
        "gpt-4o-mini",
        {"prompt_tokens": 1234, "completion_tokens": 56, "response_model": "gpt-4o-mini-2024-07-18"},
        {},
    ),
    (
        "priced by override",
        "house",
        {"prompt_tokens": 10, "completion_tokens": 5},
        {"input_cost_per_mtok": "0.5", "output_cost_per_mtok": "1.5"},
    ),
    ("unpriced", "house", {}, {}),
    ("no usage", "gpt-4o-mini", {"include_usage": False}, {}),
    (
        "logprobs",
        "gpt-a",
        {"logprobs": [("Paris", -0.25)], "top_logprobs": [{"Paris": -0.25, " Paris": -2.0, "Lyon": -3.5}]},
        {},
    ),
    ("truncated", "gpt-a", {"finish_reason": "length"}, {}),
]


@pytest.mark.parametrize(
    ("script", "entry"), [(s, e) for _, _, s, e in PARITY_ANSWERS], ids=[i for i, _, _, _ in PARITY_ANSWERS]
)
async def test_both_paths_return_the_same_completion(
    fake_openai: FakeOpenAI, script: dict[str, Any], entry: dict[str, Any]
) -> None:
    name = next(n for _, n, s, e in PARITY_ANSWERS if s is script and e is entry)
    fake_openai.script(name, "Paris", **script)
    request = ask(logprobs="logprobs" in script, max_tokens=20)

    outcomes = [
        _comparable(await _outcome(build(kind, fake_openai, name, **entry), request)) for kind in CLIENTS
    ]

    assert outcomes[0] == outcomes[1]
    assert fake_openai.requests[0].body == fake_openai.requests[1].body
    if "top_logprobs" in script:  # both asked for alternatives, and both read them
        assert isinstance(outcomes[0], dict)
        assert outcomes[0]["logprobs"][0]["top"] == script["top_logprobs"][0]


async def test_both_paths_send_the_same_body_for_a_seeded_structured_request(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o-mini", '{"approved": false, "issues": ["x"]}')
    request = ask(seed=3, temperature=0.5, max_tokens=20, response_schema=VERDICT)

    for kind in CLIENTS:
        await build(kind, fake_openai, "gpt-4o-mini").complete(request)

    litellm_body, fast_body = (r.body for r in fake_openai.requests)
    assert litellm_body == fast_body
    assert fast_body["seed"] == 3 and fast_body["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize(
    "fault",
    [f for _, f, _ in FAULTS] + [Fault.unauthorized(echo_key=True)],
    ids=[*FAULT_IDS, "401 echoing the key"],
)
async def test_both_paths_report_a_fault_with_the_same_error_and_message(
    fake_openai: FakeOpenAI, fault: Fault
) -> None:
    fake_openai.script("gpt-a", fault)

    outcomes = [_comparable(await _outcome(build(kind, fake_openai, "gpt-a"), ask())) for kind in CLIENTS]

    assert outcomes[0] == outcomes[1]


async def test_both_paths_report_a_time_out_the_same_way(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", Fault.hang())
    request = ask(timeout_s=0.2)

    outcomes = [_comparable(await _outcome(build(kind, fake_openai, "gpt-a"), request)) for kind in CLIENTS]

    assert (
        outcomes[0]
        == outcomes[1]
        == ("ModelTimeout", "alias-gpt-a: timed out: no answer within 0.2s", None, None)
    )
