"""The pieces of `server.http.limits` alone: model policy, output-token cap, rate limiter, in-flight cap."""

from __future__ import annotations

from decimal import Decimal

import pytest
from mcp import Client

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.http.limits import InFlight, ModelPolicy, OutputTokenCap, RateLimiter, check_arguments
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio


def test_raw_provider_ids_are_an_opt_in_and_never_a_url() -> None:
    closed = ModelPolicy(parse_config("models: {fast: {model: openai/gpt-4o-mini}}", env={}))
    assert closed.problem("models", "fast") is None
    assert "unknown model 'openai/gpt-4o'" in (closed.problem("models", "openai/gpt-4o") or "")
    opened = ModelPolicy(
        parse_config("models: {fast: {model: openai/gpt-4o-mini}}\nallow_unlisted_models: true", env={})
    )
    assert opened.problem("models", "openai/gpt-4o") is None
    assert opened.problem("models", "anthropic/claude-sonnet-4-5") is None
    for hostile in ("openai/http://127.0.0.1:1/v1", "openai/gpt-4o?api_base=x", "openai/ gpt", "/etc/passwd"):
        assert opened.problem("models", hostile) is not None, hostile


def test_an_allow_list_narrows_what_a_call_may_name_but_not_what_strategies_use() -> None:
    config = parse_config(
        """
models: {fast: {model: fake/fast}, strong: {model: fake/strong}}
strategies: {synth: {kind: ensemble, members: [fast], aggregation: synthesis, judge: strong}}
limits: {allowed_models: [fast]}
""",
        env={},
    )
    policy = ModelPolicy(config)
    assert (
        policy.problem("judge", "strong")
        == "judge: model 'strong' may not be named in a tool call here; allowed: fast"
    )
    assert check_arguments(config.limits, policy, {"prompt": "q", "strategy": "synth"}) is None


def test_the_cost_limit_is_also_the_default_cap() -> None:
    config = parse_config("limits: {max_cost_usd: 0.25}", env={})
    assert config.defaults.max_cost_usd == Decimal("0.25")


async def test_no_model_call_asks_for_more_output_tokens_than_the_limit() -> None:
    config = parse_config(
        """
models: {fast: {model: fake/fast}, router: {model: fake/router}}
strategies:
  ensemble: {kind: ensemble, members: [fast]}
  route:
    kind: route
    classifier: router
    default: general
    routes: [{name: general, target: {kind: model, model: fast, max_tokens: 4000}}]
limits: {max_output_tokens: 100}
""",
        env={},
    )
    fast, router = ScriptedClient("fast", "B"), ScriptedClient("router", "general")
    server = build_server(config, lambda alias, _entry: {"fast": fast, "router": router}[alias])
    async with Client(server) as client:
        await client.call_tool("ensemble_vote", {"prompt": "q"})
        await client.call_tool("route_specialist", {"prompt": "q"})
    assert [r.max_tokens for r in fast.requests] == [100, 100]  # unset, and 4000 from config: both capped
    assert [r.max_tokens for r in router.requests] == [50]  # the classifier's own, smaller, is kept


def test_the_cap_estimates_the_call_as_it_will_be_made() -> None:
    class Priced(ScriptedClient):
        def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
            return Decimal(request.max_tokens or 0)

    capped = OutputTokenCap(Priced("p", "x"), 10)
    assert capped.estimate_cost_usd(CompletionRequest.of("q", max_tokens=1000)) == Decimal(10)
    assert not hasattr(OutputTokenCap(ScriptedClient("s", "x"), 10), "estimate_cost_usd")


def test_the_rate_limiter_allows_a_burst_then_the_rate_per_client() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait is not None and 0.9 < wait <= 1.0 and RateLimiter.retry_after(wait) == 1
    assert limiter.take("b") is None  # another client has its own bucket
    now[0] += 1.0
    assert limiter.take("a") is None and limiter.take("a") is not None


def test_the_rate_limiter_forgets_idle_clients_instead_of_growing() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0], max_clients=100)
    for i in range(100):
        limiter.take(f"client-{i}")
    now[0] += 10  # every bucket has refilled
    limiter.take("newcomer")
    assert len(limiter._buckets) <= 2


def test_in_flight_refuses_over_the_cap_and_frees_a_slot_on_leave() -> None:
    cap = InFlight(2)
    assert cap.try_enter() and cap.try_enter() and not cap.try_enter()
    cap.leave()
    assert cap.try_enter()
