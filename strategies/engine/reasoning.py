"""Which reasoning effort a call to one model is sent with, and what its record says about it.

The call's effort (a tool's `reasoning_effort`) wins over the model's configured one (`models.<alias>.
reasoning_effort`). It is sent only where it can mean something: not to a model that takes none by the
catalog (`catalog.capabilities`: the config's `reasoning`, the embedded runtime, litellm's model map),
nor to the client's own model (MCP sampling has no such parameter). Either way the call still runs, and
its record says what became of the effort, so nothing is dropped silently and nothing fails for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_mcp.strategies.core.completion import CompletionRequest, ReasoningEffort
from chorus_mcp.strategies.core.result import CallRecord
from chorus_mcp.strategies.models.catalog import ModelCatalog
from chorus_mcp.strategies.models.sampling import is_sampling_model


@dataclass(frozen=True)
class Effort:
    """What a call to one model is sent with, and what its record says."""

    request: CompletionRequest
    """The request with the effort to send (or none)."""
    note: str | None = None
    """Why an effort asked for was not sent, or what is not known about the one sent."""

    @property
    def sent(self) -> ReasoningEffort | None:
        return self.request.reasoning_effort

    def mark(self, record: CallRecord) -> CallRecord:
        """`record` saying the effort sent and the note."""
        record.reasoning_effort = self.sent
        record.reasoning_note = self.note
        return record


def effort_for(catalog: ModelCatalog, model: str, request: CompletionRequest) -> Effort:
    """The effort `request` (the call's, else `model`'s configured one) is sent to `model` with."""
    entry = catalog.entry(model)
    asked = request.reasoning_effort or entry.reasoning_effort
    if asked is None:
        return Effort(request)
    unsent = request.model_copy(update={"reasoning_effort": None})
    if is_sampling_model(entry.model):
        return Effort(unsent, f"reasoning effort {asked} not sent: MCP sampling cannot carry one")
    facts = catalog.capabilities(model)
    if facts.reasoning is False:
        source = facts.sources.get("reasoning", "model map")
        return Effort(
            unsent, f"reasoning effort {asked} not sent: {entry.model} takes none (by the {source})"
        )
    sent = (
        request
        if request.reasoning_effort == asked
        else request.model_copy(update={"reasoning_effort": asked})
    )
    if facts.reasoning is None:
        return Effort(sent, f"sent, though the model map does not say whether {entry.model} reasons")
    return Effort(sent)
