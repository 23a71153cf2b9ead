"""Turning a tool call's arguments into a strategy spec: a named strategy, optionally with overrides."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chorus_mcp.config.problems import Location, dotted, joined, problems_of, shown
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import Step, StrategyRef, models_in
from chorus_mcp.strategies.models.catalog import ModelCatalog

SpecT = TypeVar("SpecT", bound=BaseModel)


def named(
    config: ChorusConfig, name: str, expected: type[SpecT] | None = None, *, argument: str = "strategy"
) -> Step:
    """The configured strategy `name`, following references, checked to be of the expected kind;
    `argument` is the tool argument that named it, for the message when it is not."""
    step = _resolved(config, name)
    if step is None:
        known = names_of_kind(config, expected)
        kind = f"{expected.model_fields['kind'].default} " if expected is not None else ""
        accepted = (
            f"expected one of {', '.join(known)} (the configured {kind}strategies)"
            if known
            else (f"no {kind}strategy is configured")
        )
        raise UserInputError(f"{argument}: unknown strategy {shown(name)}; {accepted}")
    if expected is not None and not isinstance(step, expected):
        kind = getattr(step, "kind", type(step).__name__)
        wanted = expected.model_fields["kind"].default
        raise UserInputError(
            f"{argument}: {shown(name)} is {_a(kind)} strategy; this tool needs {_a(wanted)} strategy"
        )
    return step


def names_of_kind(config: ChorusConfig, expected: type[BaseModel] | None) -> list[str]:
    """The configured strategy names a tool needing `expected` accepts (references followed)."""
    return sorted(
        name
        for name in config.strategies
        if expected is None or isinstance(_resolved(config, name), expected)
    )


def _resolved(config: ChorusConfig, name: str) -> Step | None:
    seen: set[str] = set()
    step: Step | None = config.strategies.get(name)
    while isinstance(step, StrategyRef) and step.name not in seen:
        seen.add(step.name)
        step = config.strategies.get(step.name)
    return step


def with_overrides(base: SpecT, overrides: dict[str, Any]) -> SpecT:
    """`base` with the given fields replaced (None values mean "not given"), validated again as a whole."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if not given:
        return base
    try:
        return type(base).model_validate({**base.model_dump(exclude_defaults=False), **given})
    except ValidationError as exc:
        raise UserInputError(describe(exc)) from None


def build(spec_type: type[SpecT], fields: dict[str, Any]) -> SpecT:
    try:
        return spec_type.model_validate({key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        raise UserInputError(describe(exc)) from None


ARGUMENT_OF = {"members": "models"}
"""A spec field → the tool argument that sets it, where their names differ."""


def describe(exc: ValidationError) -> str:
    """A spec built from a call's arguments that does not validate, in the arguments' terms."""

    def where(loc: Location) -> str:
        return dotted((ARGUMENT_OF.get(str(loc[0]), loc[0]), *loc[1:])) if loc else "arguments"

    return joined(problems_of(exc, where))


def check_models(step: Step, catalog: ModelCatalog) -> None:
    """Every model the spec names must be known, before any is called: an unknown one is a caller error."""
    problems: list[str] = []
    for name in sorted(set(models_in(step))):
        try:
            catalog.entry(name)
        except UserInputError as exc:
            problems.append(exc.message)
    if problems:
        raise UserInputError("; ".join(problems))


def _a(word: object) -> str:
    return f"{'an' if str(word)[:1] in 'aeiou' else 'a'} {word}"
