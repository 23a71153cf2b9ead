"""Reading the configuration once at start-up: bundled default, a user file, then environment overrides.

Where it comes from, in order: `--config PATH`, else `$CHORUS_CONFIG`, else the bundled `default.yaml`.
Then `CHORUS__SECTION__FIELD=value` environment variables override single values
(e.g. `CHORUS__DEFAULTS__DEADLINE_S=20`). A broken file stops start-up with a `ConfigError` naming the
file and the field path (or the variable, for a value it set), what was given and what is accepted.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chorus_mcp.config.problems import Location, dotted, problems_of
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
    overrides = _apply_env_overrides(data, env or {})
    try:
        return ChorusConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, overrides)) from None


Overrides = dict[tuple[str, ...], str]
"""The key paths set from the environment → the variable that set each."""


def describe_validation_error(exc: ValidationError, source: str, overrides: Overrides | None = None) -> str:
    """One line per problem, in the voice of `config.problems`: `file: key.path: given; accepted`, or
    `VARIABLE (key.path): given; accepted` for a value an environment variable set."""
    overrides = overrides or {}

    def where(loc: Location) -> str:
        # Discriminated unions put the tag in the path (`members.0.ensemble.quorum`): kept, it names the kind.
        variable = _variable_for(loc, overrides)
        return f"{variable} ({dotted(loc)})" if variable else f"{source}: {dotted(loc) or '(top level)'}"

    lines: list[str] = []
    for line, error in zip(problems_of(exc, where), exc.errors(include_url=False), strict=True):
        if error["type"] == "extra_forbidden" and (known := _known_keys(tuple(error["loc"])[:-1])):
            line += f"; expected one of {', '.join(known)}"
        if not error["loc"]:
            line = _located(line, source, overrides)
        lines.append(line)
    head = f"invalid configuration ({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n  "
    return head + "\n  ".join(lines)


def _variable_for(loc: Location, overrides: Overrides) -> str | None:
    """The variable that set the value at `loc` (or a section holding it), if one did."""
    names = tuple(str(part) for part in loc)
    # A tagged union's kind sits in the error's path, not in the variable's: try without each part too.
    candidates = [names, *(names[:i] + names[i + 1 :] for i in range(len(names)))]
    for path, variable in sorted(overrides.items(), key=lambda item: -len(item[0])):
        if any(candidate[: len(path)] == path for candidate in candidates):
            return variable
    return None


def _located(line: str, source: str, overrides: Overrides) -> str:
    """A whole-config check's line (`defaults.deadline_s: ...`) with where its values came from: the
    file, or the variables that set the key it names and those it compares with."""
    path, sep, rest = line.partition(": ")
    if not sep or " " in path:
        return f"{source}: {line}"
    variable = _variable_for(tuple(path.split(".")), overrides)
    located = f"{variable} ({path}): {rest}" if variable else f"{source}: {line}"
    for other, setter in sorted(overrides.items()):
        key = ".".join(other)
        if key != path and key in rest:
            located += f" ({key} is set by {setter})"
    return located


def _known_keys(loc: Location) -> list[str]:
    """The keys the section at `loc` accepts (empty when that is not a fixed set)."""
    model: Any = ChorusConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = field.annotation
        if typing.get_origin(model) is dict:  # `models: {alias: ModelEntry}`: the next part is the alias
            if not parts:
                return []
            parts.pop(0)
            model = typing.get_args(model)[1]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> Overrides:
    """Set each `CHORUS__SECTION__FIELD` variable's value into `data`; return which variable set what."""
    overrides: Overrides = {}
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
        # YAML parsing gives numbers, booleans and lists their types ("20" → 20, "[a, b]" → list);
        # what is not valid YAML ("[a") is taken as the text it is, for the schema to judge.
        try:
            target[path[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            target[path[-1]] = raw
        overrides[tuple(path)] = key
    return overrides
