"""Deciding at start-up what can work here, and steering the bundled default's strategies to it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from chorus_mcp.config.loader import BUNDLED_DEFAULT, load_config, parse_config
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.strategies.core.spec import CascadeSpec, EnsembleSpec, ModelStep, PipelineSpec, RouteSpec
from chorus_mcp.strategies.models import availability
from chorus_mcp.strategies.models.availability import (
    Endpoint,
    check_models,
    how_to_enable,
    probe_endpoint,
    use_available,
)
from tests.fake_openai import FakeOpenAI

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nobody listens once the socket is closed


def _ollama(models: list[str] | None) -> Callable[[str], Endpoint]:
    if models is None:
        return lambda url: Endpoint(None, "nothing answers at 127.0.0.1:11434")
    return lambda url: Endpoint(models)


@pytest.fixture
def default() -> ChorusConfig:
    return load_config(BUNDLED_DEFAULT, env={})


def _steer(
    config: ChorusConfig,
    monkeypatch: pytest.MonkeyPatch,
    *,
    keys: tuple[str, ...] = (),
    ollama: list[str] | None = None,
    embedded: bool = True,
    small: bool = True,
) -> ChorusConfig:
    def missing(model: str) -> str | None:
        installed = embedded and (small or model != "local/qwen2.5-coder-0.5b")
        return None if installed else "not installed"

    monkeypatch.setattr(availability, "_embedded_missing", missing)
    env = {key: "sk-test-0123456789" for key in keys}
    statuses = check_models(config.models, env=env, probe=_ollama(ollama))
    steered, _ = use_available(config, statuses)
    return steered


def _members(config: ChorusConfig, name: str) -> list[str]:
    step = config.strategies[name]
    steps = (
        step.members
        if isinstance(step, EnsembleSpec)
        else step.tiers
        if isinstance(step, CascadeSpec)
        else []
    )
    return [s.model for s in steps if isinstance(s, ModelStep)]


def _temperatures(config: ChorusConfig, name: str) -> list[float | None]:
    step = config.strategies[name]
    assert isinstance(step, EnsembleSpec)
    return [s.temperature for s in step.members if isinstance(s, ModelStep)]


def _pipeline(config: ChorusConfig) -> list[str]:
    step = config.strategies["pipeline"]
    assert isinstance(step, PipelineSpec)
    return [s.step.model for s in step.stages if isinstance(s.step, ModelStep)]


def test_with_every_key_the_default_is_unchanged(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch, keys=KEYS)
    assert _members(steered, "ensemble") == ["fast", "claude-fast", "gemini-fast"]
    assert _members(steered, "cascade") == ["small", "fast", "strong"]
    assert _pipeline(steered) == ["strong", "claude", "strong"]


def test_with_no_key_the_local_server_the_clients_model_and_the_embedded_model_vote(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch, ollama=["llama3.2:latest"])
    assert _members(steered, "ensemble") == ["ollama", "client", "local"]
    assert _temperatures(steered, "ensemble") == [None, None, None]  # three models: no resampling
    assert _members(steered, "cascade") == ["local-small", "ollama", "client"]
    route = steered.strategies["route"]
    assert isinstance(route, RouteSpec) and route.classifier == "ollama"


def test_without_a_local_server_the_embedded_model_votes_greedy_and_sampled_beside_the_clients_seats(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch)
    # The client's seats fall back to the embedded model, which already votes: they sample it (T 0.7;
    # the ensemble gives the copy a distinct seed), so in `ask` the vote still has three voters.
    assert _members(steered, "ensemble") == ["local", "client", "client"]
    assert _temperatures(steered, "ensemble") == [None, 0.7, 0.7]
    ensemble = steered.strategies["ensemble"]
    assert isinstance(ensemble, EnsembleSpec) and ensemble.quorum == 2
    # The cascade goes from the small embedded model to the default one, then the client's.
    assert _members(steered, "cascade") == ["local-small", "local", "client"]
    assert _pipeline(steered) == ["client", "client", "client"]
    # The rest of a chain stays as fallbacks, minus what cannot work here.
    code = steered.strategies["pipeline"]
    assert isinstance(code, PipelineSpec)
    step = code.stages[1].step
    assert isinstance(step, ModelStep) and step.fallbacks == ["local"]
    assert steered.models["client"].fallbacks == ["local"]
    assert steered.models["fast"].fallbacks == ["local", "client"]


def test_without_the_small_model_the_no_key_cascade_starts_at_the_default_one(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch, small=False)
    assert _members(steered, "cascade") == ["local", "client"]
    assert _members(steered, "ensemble") == ["local", "client", "client"]


def test_without_diversified_repeats_duplicate_seats_are_dropped(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensemble = default.strategies["ensemble"]
    assert isinstance(ensemble, EnsembleSpec)
    config = default.model_copy(
        update={"strategies": {"ensemble": ensemble.model_copy(update={"diversify_repeats": False})}}
    )
    steered = _steer(config, monkeypatch)
    assert _members(steered, "ensemble") == ["local", "client"]
    assert _temperatures(steered, "ensemble") == [None, None]


def test_with_one_key_its_models_come_first_and_the_rest_is_filled_locally(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch, keys=("ANTHROPIC_API_KEY",))
    assert _members(steered, "ensemble") == ["local", "claude-fast", "client"]
    assert _members(steered, "cascade") == ["local-small", "claude-fast", "claude"]
    assert _pipeline(steered) == ["claude", "claude", "claude"]


def test_with_only_an_openai_key_the_other_cheap_seats_take_its_small_model_not_a_second_sample(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for embedded, client_temperature in ((True, None), (False, 0.7)):
        steered = _steer(default, monkeypatch, keys=("OPENAI_API_KEY",), embedded=embedded)
        # Three distinct models: gpt-4.1-mini, gpt-4.1-nano and the client's own. When the client offers
        # no sampling its seat falls back to the embedded model if installed, else to a model that already
        # votes, which it then samples (T 0.7) rather than echo.
        assert _members(steered, "ensemble") == ["fast", "small", "client"]
        assert _temperatures(steered, "ensemble") == [None, None, client_temperature]
        assert _members(steered, "synthesis") == ["fast", "small", "client"]
        assert _members(steered, "cascade") == ["small", "fast", "strong"]


def test_when_only_the_clients_model_is_left_its_seats_are_its_samples(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    steered = _steer(default, monkeypatch, embedded=False)
    ensemble = steered.strategies["ensemble"]
    assert isinstance(ensemble, EnsembleSpec)
    # The copies are sampled by the ensemble with distinct seeds; the quorum stays two of three.
    assert _members(steered, "ensemble") == ["client", "client", "client"] and ensemble.quorum == 2


def test_a_local_server_without_the_model_is_not_usable_and_says_which_it_has(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = check_models(default.models, env={}, probe=_ollama(["qwen2.5:7b"]))
    ollama = statuses["ollama"]
    assert not ollama.usable and ollama.source == "local server"
    assert "does not have 'llama3.2' (`ollama pull llama3.2`); it has: qwen2.5:7b" in ollama.detail


def test_a_config_that_does_not_opt_in_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(
        "models:\n  a: {model: openai/a, api_key_env: NOPE_KEY, fallbacks: [b]}\n  b: {model: openai/b}\n"
        "strategies:\n  one: {kind: ensemble, members: [a, b]}\n",
        env={},
    )
    assert not config.use_available_models
    assert use_available(config)[0] is config


def test_what_to_set_up_names_each_kind_of_source(default: ChorusConfig) -> None:
    statuses = check_models(default.models, env={}, probe=_ollama(None))
    hints = "\n".join(how_to_enable(statuses))
    assert "set ANTHROPIC_API_KEY, GEMINI_API_KEY or OPENAI_API_KEY" in hints
    assert "`ollama pull llama3.2`" in hints
    assert "MCP client that offers sampling" in hints


def test_a_local_openai_compatible_server_is_probed_for_its_models(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("llama3.2", "hi")
    endpoint = probe_endpoint(fake_openai.base_url + "/models")
    assert endpoint.error is None and endpoint.models == ["llama3.2"]
    base = fake_openai.base_url
    config = parse_config(
        f"models:\n  mine: {{model: openai/llama3.2, api_base: '{base}'}}\n"
        f"  other: {{model: openai/qwen, api_base: '{base}'}}\n",
        env={},
    )
    statuses = check_models(config.models, env={})
    assert statuses["mine"].usable and not statuses["other"].usable


def test_a_port_nobody_listens_on_costs_milliseconds_not_the_time_out() -> None:
    started = time.monotonic()
    endpoint = probe_endpoint(f"http://127.0.0.1:{_closed_port()}/v1/models")
    assert endpoint.models is None and endpoint.error and "nothing answers at 127.0.0.1" in endpoint.error
    assert time.monotonic() - started < 0.2


def test_checking_the_bundled_default_is_fast(default: ChorusConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    started = time.monotonic()
    use_available(default)
    assert time.monotonic() - started < availability.PROBE_TIMEOUT_S + 0.3


def _candidates(config: ChorusConfig) -> list[str]:
    step = config.strategies["route"]
    assert isinstance(step, RouteSpec)
    return step.candidates


def test_a_routes_objective_candidates_keep_only_the_usable_ones(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _candidates(_steer(default, monkeypatch, keys=KEYS)) == [
        "fast",
        "claude-fast",
        "gemini-fast",
        "strong",
        "claude",
        "gemini",
    ]
    assert _candidates(_steer(default, monkeypatch, keys=("ANTHROPIC_API_KEY",))) == ["claude-fast", "claude"]


def test_when_no_candidate_is_usable_each_is_replaced_by_its_stand_in_once(
    default: ChorusConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fast, claude-fast and gemini-fast fall back to the embedded model; the strong ones to the client's.
    assert _candidates(_steer(default, monkeypatch)) == ["local", "client"]
