"""`LiteLLMClient` against the fake OpenAI server: real litellm, real HTTP, loopback only."""

from __future__ import annotations

import email.utils
import subprocess
import sys
import time
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from strategies.catalog import ModelEntry
from strategies.client import ModelClient
from strategies.completion import CompletionRequest, Message
from strategies.errors import (
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
from strategies.providers import LiteLLMClient, estimate_prompt_tokens, litellm_client_factory
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[3]
KEY_ENV = "CHORUS_TEST_FAKE_KEY"
# Deliberately not shaped like a provider key, so only `register_secret` can catch it.
KEY = "dummy-credential-7f3a9c2e51b8d406"


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def client_for(fake: FakeOpenAI, name: str, **entry: object) -> LiteLLMClient:
    settings: dict[str, object] = {"model": f"openai/{name}", "api_base": fake.base_url}
    settings.update(api_key_env=KEY_ENV, **entry)
    return LiteLLMClient(f"alias-{name}", ModelEntry.model_validate(settings))


def ask(prompt: str = "What is the capital of France?", **settings: Any) -> CompletionRequest:
    return CompletionRequest.of(prompt, **settings)


async def test_a_plain_answer_carries_text_usage_latency_and_finish_reason(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "Paris", latency_s=0.05, prompt_tokens=14, completion_tokens=2,
                       response_model="gpt-a-2025-01-01")

    completion = await client_for(fake_openai, "gpt-a").complete(ask())

    assert completion.text == "Paris"
    assert completion.model == "gpt-a-2025-01-01"
    assert (completion.prompt_tokens, completion.completion_tokens) == (14, 2)
    assert completion.finish_reason == "stop"
    assert 0.05 <= completion.latency_s < 5
    assert completion.logprobs is None


async def test_the_request_carries_messages_sampling_settings_and_the_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "ok")

    request = ask("hello", system="be brief", max_tokens=7, temperature=0.3)
    await client_for(fake_openai, "gpt-a").complete(request)

    sent = fake_openai.last_request
    assert sent.model == "gpt-a"
    assert sent.messages == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert sent.body["max_tokens"] == 7
    assert sent.body["temperature"] == 0.3
    assert "logprobs" not in sent.body
    assert sent.headers["authorization"] == f"Bearer {KEY}"


async def test_logprobs_are_returned_per_token_when_asked(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "Paris.", logprobs=[("Paris", -0.01), (".", -0.5)])

    completion = await client_for(fake_openai, "gpt-a").complete(ask(logprobs=True))

    assert fake_openai.last_request.body["logprobs"] is True
    assert completion.logprobs is not None
    assert [(t.token, t.logprob) for t in completion.logprobs] == [("Paris", -0.01), (".", -0.5)]


async def test_cost_comes_from_the_entrys_price_override(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=1000, completion_tokens=500)
    client = client_for(fake_openai, "house-model", input_cost_per_mtok="1.00", output_cost_per_mtok="2.00")

    completion = await client.complete(ask())

    assert completion.cost_usd == Decimal("0.002")


async def test_cost_comes_from_litellms_price_map_for_a_known_model(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-4o-mini", "ok", prompt_tokens=1_000_000, completion_tokens=1_000_000)

    completion = await client_for(fake_openai, "gpt-4o-mini").complete(ask())

    # gpt-4o-mini is $0.15 in / $0.60 out per million tokens in litellm's bundled map.
    assert completion.cost_usd == Decimal("0.75")


async def test_cost_is_unknown_not_zero_for_a_model_the_price_map_lacks(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=10, completion_tokens=5)

    completion = await client_for(fake_openai, "house-model").complete(ask())

    assert completion.cost_usd is None
    assert completion.prompt_tokens == 10


async def test_a_half_price_override_still_needs_the_price_map_for_the_other_half(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("house-model", "ok", prompt_tokens=10, completion_tokens=5)

    completion = await client_for(fake_openai, "house-model", input_cost_per_mtok="1").complete(ask())

    assert completion.cost_usd is None


async def test_usage_the_provider_did_not_report_is_unknown_not_zero(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("house-model", "ok", include_usage=False)
    client = client_for(fake_openai, "house-model", input_cost_per_mtok="1", output_cost_per_mtok="2")

    completion = await client.complete(ask())

    assert (completion.prompt_tokens, completion.completion_tokens) == (None, None)
    assert completion.cost_usd is None


async def test_a_truncated_answer_reports_finish_reason_length(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "The capital of", finish_reason="length")

    completion = await client_for(fake_openai, "gpt-a").complete(ask(max_tokens=3))

    assert completion.finish_reason == "length"


def _http_date_in(seconds: int) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


FAULTS: list[tuple[str, Fault, type[ModelError]]] = [
    ("429 with Retry-After", Fault.rate_limited(retry_after=7), RateLimited),
    ("429 without Retry-After", Fault.rate_limited(), RateLimited),
    ("500", Fault.server_error(), ProviderServerError),
    ("502", Fault.server_error(502), ProviderServerError),
    ("503", Fault.unavailable(), ProviderServerError),
    ("401", Fault.unauthorized(), AuthenticationFailed),
    ("403", Fault.forbidden(), AuthenticationFailed),
    ("context length", Fault.context_length(), ContextWindowExceeded),
    ("400", Fault.bad_request(), BadRequest),
    ("404 unknown model", Fault.not_found("gpt-a"), BadRequest),
    ("422", Fault.http(422, "Unprocessable", type="invalid_request_error"), BadRequest),
    ("connection reset mid-response", Fault.reset(), ProviderUnavailable),
    ("malformed JSON", Fault.malformed_json(), MalformedResponse),
    ("empty content", Fault.empty_content(), MalformedResponse),
    ("null content", Fault.null_content(), MalformedResponse),
    ("no choices", Fault.no_choices(), MalformedResponse),
]


@pytest.mark.parametrize(("fault", "expected"), [(f, e) for _, f, e in FAULTS], ids=[i for i, _, _ in FAULTS])
async def test_each_provider_fault_becomes_one_chorus_error(
    fake_openai: FakeOpenAI, fault: Fault, expected: type[ModelError]
) -> None:
    fake_openai.script("gpt-a", fault)

    with pytest.raises(expected) as caught:
        await client_for(fake_openai, "gpt-a").complete(ask())

    assert type(caught.value) is expected
    assert caught.value.model == "alias-gpt-a"
    assert caught.value.__cause__ is not None or expected is MalformedResponse
    assert len(fake_openai.requests) == 1, "litellm must not retry on its own"


async def test_a_hanging_provider_times_out_at_the_requests_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", Fault.hang())
    started = time.perf_counter()

    with pytest.raises(ModelTimeout):
        await client_for(fake_openai, "gpt-a").complete(ask(timeout_s=0.3))

    assert time.perf_counter() - started < 3


async def test_retry_after_is_parsed_in_seconds_and_absent_when_not_sent(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", [Fault.rate_limited(retry_after=7), Fault.rate_limited()])
    client = client_for(fake_openai, "gpt-a")

    with pytest.raises(RateLimited) as first:
        await client.complete(ask())
    with pytest.raises(RateLimited) as second:
        await client.complete(ask())

    assert first.value.retry_after == 7.0
    assert second.value.retry_after is None


async def test_retry_after_as_an_http_date_becomes_seconds_from_now(fake_openai: FakeOpenAI) -> None:
    fault = Fault.http(429, "slow down", type="requests", headers={"retry-after": _http_date_in(30)})
    fake_openai.script("gpt-a", fault)

    with pytest.raises(RateLimited) as caught:
        await client_for(fake_openai, "gpt-a").complete(ask())

    assert caught.value.retry_after is not None
    assert 20 <= caught.value.retry_after <= 31


async def test_server_errors_keep_the_providers_status_code(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", [Fault.server_error(), Fault.unavailable()])
    client = client_for(fake_openai, "gpt-a")

    codes = []
    for _ in range(2):
        with pytest.raises(ProviderServerError) as caught:
            await client.complete(ask())
        codes.append(caught.value.status_code)

    assert codes == [500, 503]


async def test_a_refused_connection_means_the_provider_is_unavailable() -> None:
    with FakeOpenAI() as fake:
        client = client_for(fake, "gpt-a")
    # The server is gone: nothing listens on that port any more.

    with pytest.raises(ProviderUnavailable):
        await client.complete(ask())


async def test_a_transient_fault_fails_one_call_and_the_next_succeeds(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "fine")
    fake_openai.fail_next(Fault.unavailable(), model="gpt-a")
    client = client_for(fake_openai, "gpt-a")

    with pytest.raises(ProviderServerError):
        await client.complete(ask())
    completion = await client.complete(ask())

    assert completion.text == "fine"


async def test_the_api_key_never_appears_in_an_error_even_when_the_provider_echoes_it(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("gpt-a", Fault.unauthorized(echo_key=True))

    with pytest.raises(AuthenticationFailed) as caught:
        await client_for(fake_openai, "gpt-a").complete(ask())

    assert fake_openai.last_request.contains(KEY)  # the provider really did get (and echo) it
    assert KEY not in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))
    assert "[REDACTED]" in str(caught.value)


async def test_a_missing_key_variable_fails_before_any_request(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    fake_openai.script("gpt-a", "ok")

    with pytest.raises(AuthenticationFailed, match=KEY_ENV):
        await client_for(fake_openai, "gpt-a").complete(ask())

    assert fake_openai.requests == []


async def test_no_key_configured_or_in_the_providers_default_variable_is_an_authentication_failure(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_openai.script("gpt-a", "ok")
    client = LiteLLMClient("keyless", ModelEntry(model="openai/gpt-a", api_base=fake_openai.base_url))

    with pytest.raises(AuthenticationFailed):
        await client.complete(ask())


async def test_the_factory_builds_a_model_client_named_after_the_alias() -> None:
    client = litellm_client_factory("fast", ModelEntry(model="openai/gpt-4o-mini"))

    assert isinstance(client, ModelClient)
    assert client.name == "fast"


def test_importing_the_provider_package_does_not_import_litellm() -> None:
    code = "import sys, strategies.providers; print('litellm' in sys.modules)"
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)

    assert result.stdout.strip() == "False"


def test_prompt_tokens_are_estimated_offline_for_known_and_unknown_models() -> None:
    messages = [Message(role="system", content="be brief"), Message(role="user", content="hello world " * 50)]

    known = estimate_prompt_tokens(ModelEntry(model="openai/gpt-4o-mini"), messages)
    started = time.perf_counter()
    unknown = estimate_prompt_tokens(ModelEntry(model="openai/house-model"), messages)

    assert 100 <= known <= 130
    assert 100 <= unknown <= 130
    assert time.perf_counter() - started < 1


# -- the fake server itself, from plain sync code ---------------------------------------------------


def test_the_fake_answers_sync_clients_from_functions_and_a_wildcard_script(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("shout", lambda request: request.last_user.upper())
    fake_openai.script("*", "anyone")

    with httpx.Client(base_url=fake_openai.base_url) as http:
        def answer(model: str) -> str:
            body = {"model": model, "messages": [{"role": "user", "content": "hi there"}]}
            response = http.post("/chat/completions", json=body)
            return str(response.json()["choices"][0]["message"]["content"])

        assert answer("shout") == "HI THERE"
        assert answer("whoever") == "anyone"
        assert [m["id"] for m in http.get("/models").json()["data"]] == ["shout"]
    assert [r.model for r in fake_openai.requests] == ["shout", "whoever"]


def test_a_hanging_request_is_released_when_its_client_gives_up(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("stuck", Fault.hang())

    with httpx.Client(base_url=fake_openai.base_url) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/chat/completions", json={"model": "stuck", "messages": []}, timeout=0.2)

    deadline = time.monotonic() + 2
    while fake_openai.busy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not fake_openai.busy
