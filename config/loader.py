"""Reading the configuration once at start-up: bundled default, a user file, then environment overrides.

Where it comes from, in order: `--config PATH`, else `$CHORUS_CONFIG`, else the bundled `default.yaml`.
Then `CHORUS__SECTION__FIELD=value` environment variables override single values
(e.g. `CHORUS__DEFAULTS__DEADLINE_S=20`). A broken file stops start-up with a `ConfigError` naming the
file, the field path and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.strategies.core.errors import ConfigError

BUNDLED_DEFAULT = Path(__file__).with_name("default.yaml")
ENV_PREFIX = "CHORUS__"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("CHORUS_CONFIG")
    return Path(from_env) if from_env else BUNDLED_DEFAULT


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> ChorusConfig:
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration file ({exc.strerror or exc})") from exc
    return parse_config(text, source=str(source), env=os.environ if env is None else env)


def parse_config(
    text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> ChorusConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    _apply_env_overrides(data, env or {})
    try:
        return ChorusConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: `file: field.path: what was expected (got ...)`."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        # Discriminated unions put the tag in the path (`members.0.ensemble.quorum`): kept, it names the kind.
        path = ".".join(str(part) for part in error["loc"]) or "(top level)"
        got = error.get("input")
        # Values of unknown keys are not echoed: a key pasted into the wrong place must not be printed.
        echo = got is not None and not isinstance(got, dict | list) and error["type"] != "extra_forbidden"
        shown = f" (got {str(got)[:60]!r})" if echo else ""
        lines.append(f"{source}: {path}: {error['msg']}{shown}")
    head = f"invalid configuration ({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n  "
    return head + "\n  ".join(lines)


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        target = data
        for part in path[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        # YAML parsing gives numbers, booleans and lists their types ("20" → 20, "[a, b]" → list).
        target[path[-1]] = yaml.safe_load(raw)
