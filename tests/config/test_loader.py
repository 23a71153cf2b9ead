from __future__ import annotations

from pathlib import Path

import pytest

from chorus_mcp.config.loader import BUNDLED_DEFAULT, load_config, parse_config
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.core.spec import CascadeSpec, EnsembleSpec, PipelineSpec, RouteSpec

# `eval-*.yaml` are offline-evaluation files (`chorus-mcp eval run`), checked by the evaluation tests.
EXAMPLES = sorted(
    p for p in (BUNDLED_DEFAULT.parent / "examples").glob("*.yaml") if not p.name.startswith("eval-")
)


def test_the_bundled_default_is_valid_and_names_a_strategy_for_every_tool() -> None:
    config = load_config(BUNDLED_DEFAULT, env={})
    assert isinstance(config.strategies[config.defaults.ensemble], EnsembleSpec)
    assert isinstance(config.strategies[config.defaults.cascade], CascadeSpec)
    assert isinstance(config.strategies[config.defaults.route], RouteSpec)
    assert isinstance(config.strategies[config.defaults.pipeline], PipelineSpec)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_shipped_example_config_is_valid(path: Path) -> None:
    config = load_config(path, env={})
    assert config.models and config.strategies


def test_the_examples_cover_the_three_documented_setups() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"openai-anthropic-gemini.yaml", "openrouter.yaml", "local-openai-compatible.yaml"} <= names


def test_a_broken_field_is_reported_with_file_field_path_and_expectation() -> None:
    text = "strategies:\n  vote:\n    kind: ensemble\n    members: [a]\n    aggregation: loudest\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="team.yaml")
    message = str(caught.value)
    assert message.endswith(
        "team.yaml: strategies.vote.ensemble.aggregation: 'loudest'; "
        "expected one of 'majority', 'weighted', 'synthesis', 'ranking', 'debate'"
    )
    assert "Input should" not in message and "pydantic" not in message


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = "defaults: {deadline_s: -3}\nmodels:\n  x: {model: ''}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.yaml")
    assert "2 problems" in str(caught.value)
    assert "defaults.deadline_s" in str(caught.value) and "models.x.model" in str(caught.value)


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML at line 2, column 7: mapping values"):
        parse_config("models:\n  x: y: z\n", source="c.yaml")


def test_a_reference_to_an_unknown_strategy_is_rejected() -> None:
    text = "strategies:\n  r: {kind: cascade, tiers: [{kind: strategy, name: missing}]}\n"
    with pytest.raises(
        ConfigError, match=r"strategies\.r: refers to unknown strategy 'missing'; expected one of r"
    ):
        parse_config(text)


def test_a_fallback_to_an_unknown_alias_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"models.a.fallbacks: 'b'; expected a configured model alias \(a\)"
    ):
        parse_config("models:\n  a: {model: openai/x, fallbacks: [b]}\n")


def test_unknown_keys_are_rejected_rather_than_ignored() -> None:
    with pytest.raises(
        ConfigError, match=r"models\.a\.api_key: not a known key; expected one of api_base"
    ) as caught:
        parse_config("models:\n  a: {model: openai/x, api_key: my-pasted-secret-value}\n")
    assert "my-pasted-secret-value" not in str(caught.value)


def test_environment_variables_override_single_values() -> None:
    config = parse_config("", env={"CHORUS__DEFAULTS__DEADLINE_S": "12.5", "CHORUS__HTTP__PORT": "9999"})
    assert config.defaults.deadline_s == 12.5 and config.http.port == 9999


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: cannot read"):
        load_config(tmp_path / "nowhere.yaml", env={})


def test_a_strategy_naming_an_unconfigured_model_alias_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"strategies.e: model 'nope'; expected a configured model alias"):
        parse_config("strategies:\n  e: {kind: ensemble, members: [nope]}\n")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CHORUS__DEFAULTS__DEADLINE_S": "abc"},
            "CHORUS__DEFAULTS__DEADLINE_S (defaults.deadline_s): 'abc'; expected a number",
        ),
        (
            {"CHORUS__DEFAULTS__DEADLINE_S": "[a"},
            "CHORUS__DEFAULTS__DEADLINE_S (defaults.deadline_s): '[a'; expected a number",
        ),
        (
            {"CHORUS__DEFAULTS__DEADLINE_S": "400"},
            "CHORUS__DEFAULTS__DEADLINE_S (defaults.deadline_s): 400; "
            "expected at most limits.max_deadline_s (300)",
        ),
        (
            {"CHORUS__HTTP__PORT": "-1"},
            "CHORUS__HTTP__PORT (http.port): -1; expected at least 0",
        ),
        (
            {"CHORUS__DEFAULTS__DEADLNE_S": "3"},
            "CHORUS__DEFAULTS__DEADLNE_S (defaults.deadlne_s): not a known key; "
            "expected one of cascade, deadline_s, ensemble, max_cost_usd, pipeline, progress_every_s, route",
        ),
        (
            {"CHORUS__STRATEGIES__VOTE__AGGREGATION": "loudest"},
            "CHORUS__STRATEGIES__VOTE__AGGREGATION (strategies.vote.ensemble.aggregation): 'loudest'; "
            "expected one of 'majority', 'weighted', 'synthesis', 'ranking', 'debate'",
        ),
    ],
)
def test_a_bad_value_from_an_environment_variable_names_the_variable_not_the_file(
    env: dict[str, str], message: str
) -> None:
    text = "models: {a: {model: x/y}}\nstrategies:\n  vote: {kind: ensemble, members: [a]}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="team.yaml", env=env)
    assert str(caught.value) == f"invalid configuration (1 problem):\n  {message}"


def test_a_check_across_keys_names_the_variable_that_set_either_side() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "defaults: {deadline_s: 20}\n", source="team.yaml", env={"CHORUS__LIMITS__MAX_DEADLINE_S": "10"}
        )
    assert str(caught.value).endswith(
        "team.yaml: defaults.deadline_s: 20; expected at most limits.max_deadline_s (10) "
        "(limits.max_deadline_s is set by CHORUS__LIMITS__MAX_DEADLINE_S)"
    )


def test_a_value_in_the_file_is_still_blamed_on_the_file_when_other_variables_are_set() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("defaults: {deadline_s: abc}\n", source="team.yaml", env={"CHORUS__HTTP__PORT": "9000"})
    assert str(caught.value).endswith("team.yaml: defaults.deadline_s: 'abc'; expected a number")


def test_a_bad_environment_value_stops_the_cli_with_the_variable_named(tmp_path: Path) -> None:
    from tests.support.servers import run_chorus, server_env

    env = {**server_env("unused"), "CHORUS__DEFAULTS__DEADLINE_S": "abc"}
    done = run_chorus("config", "check", env=env, timeout=120)
    assert done.returncode == 2
    assert "CHORUS__DEFAULTS__DEADLINE_S (defaults.deadline_s): 'abc'; expected a number" in done.stderr
    assert "default.yaml" not in done.stderr and "Traceback" not in done.stderr


def test_the_default_deadline_is_bounded_by_the_operator_limit_alone() -> None:
    config = parse_config("limits: {max_deadline_s: 7200}\ndefaults: {deadline_s: 5000}\n", env={})
    assert config.defaults.deadline_s == 5000
