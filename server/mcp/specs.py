"""Turning a tool call's arguments into a strategy spec: a named strategy, optionally with overrides."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import Step, StrategyRef, models_in
from chorus_mcp.strategies.models.catalog import ModelCatalog

SpecT = TypeVar("SpecT", bound=BaseModel)


def named(config: ChorusConfig, name: str, expected: type[SpecT] | None = None) -> Step:
    """The configured strategy `name`, following references, checked to be of the expected kind."""
    seen: set[str] = set()
    step: Step | None = config.strategies.get(name)
    while isinstance(step, StrategyRef) and step.name not in seen:
        seen.add(step.name)
        step = config.strategies.get(step.name)
    if step is None:
        known = ", ".join(sorted(config.strategies)) or "none configured"
        raise UserInputError(f"strategy: unknown strategy {name!r}; configured: {known}")
    if expected is not None and not isinstance(step, expected):
        kind = getattr(step, "kind", type(step).__name__)
        wanted = expected.model_fields["kind"].default
        raise UserInputError(f"strategy: {name!r} is a {kind} strategy, this tool needs a {wanted} strategy")
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


def describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "invalid arguments: " + "; ".join(parts)


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
