"""`ClientWrapper`: the base of every client that wraps another (instrumentation, the response cache).

A wrapper must not hide what the core checks a client for — a warm-up (`WarmsUp`), a pre-call cost
estimate (`CostEstimator`) — nor offer what the wrapped client lacks. `wrap` builds the wrapper from
the subclass of its class that forwards exactly the capabilities the wrapped client has; every other
attribute is the wrapped client's (`__getattr__`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar, cast

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.client import CostEstimator, ModelClient, WarmsUp


class ClientWrapper:
    """Wraps one client; `name` and any other attribute are the wrapped client's."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.name = inner.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (half-built instance): do not recurse
            raise AttributeError(name)
        return getattr(self.inner, name)


class _ForwardsWarmUp(ClientWrapper):
    async def ready(self) -> None:
        # `cast`, not `assert isinstance`: this runs per model call, and an isinstance against a runtime-
        # checkable Protocol walks its members each time; `wrap` checked the wrapped client once.
        await cast(WarmsUp, self.inner).ready()


class _ForwardsEstimate(ClientWrapper):
    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        return cast(CostEstimator, self.inner).estimate_cost_usd(request)  # (see `_ForwardsWarmUp.ready`)


W = TypeVar("W", bound=ClientWrapper)

_subclasses: dict[tuple[type[ClientWrapper], bool, bool], type[ClientWrapper]] = {}
"""Made once per wrapper class and set of capabilities, not per client."""


def wrap(cls: type[W], inner: ModelClient, *args: Any, **kwargs: Any) -> W:
    """`cls(inner, *args, **kwargs)`, as the subclass of `cls` that also forwards `inner`'s warm-up and cost
    estimate when `inner` has them."""
    key = (cls, isinstance(inner, WarmsUp), isinstance(inner, CostEstimator))
    subclass = _subclasses.get(key)
    if subclass is None:
        _, warms, estimates = key
        kept = [mixin for mixin, has in ((_ForwardsWarmUp, warms), (_ForwardsEstimate, estimates)) if has]
        subclass = type(cls.__name__, (cls, *kept), {"__module__": cls.__module__}) if kept else cls
        _subclasses[key] = subclass
    return cast(W, subclass(inner, *args, **kwargs))
