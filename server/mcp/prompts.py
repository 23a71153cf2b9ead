"""MCP prompts for the common workflows, and completions for their arguments from the live config.

A prompt is a message the user picks in the client (a slash command in most of them); Chorus's prompts
turn one into the exact tool call that runs the workflow, arguments spelled out as JSON, so the agent
makes the call the user meant instead of guessing parameters:

    ask_ensemble    ensemble_vote on a question (a strategy or a list of models)
    second_opinion  ensemble_vote asked to check a proposed answer (yes/no vote, with reasons)
    code_review     run_pipeline on a task and its code (plan → code → review → refine by default)
    debate          ensemble_vote with synthesis: members answer independently, a judge weighs their
                    arguments and writes one answer (one round; Chorus has no multi-round debate)

Arguments naming a strategy, pipeline or model are checked against the config when the prompt is read
(an unknown one is refused with the configured names), and `completion/complete` offers them: strategies
of the kind the prompt runs, model aliases (each item of a comma-separated list), and the ids of recent
sessions for the `session://{session_id}` resources.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, cast

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)
from mcp_types import INVALID_PARAMS
from pydantic import Field

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.mcp.icons import icon_for
from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.core.spec import EnsembleSpec, PipelineSpec, Step, StrategyRef

MAX_VALUES = 100
"""The protocol's cap on the values of one completion."""
RECENT_SESSIONS = 50

Question = Annotated[str, Field(description="The question or task.")]
Strategy = Annotated[str | None, Field(description="A configured ensemble strategy (default: the config's).")]
ModelList = Annotated[
    str | None, Field(description="Model aliases, comma-separated (instead of a strategy).")
]

_ENSEMBLE_PROMPTS = ("ask_ensemble", "second_opinion", "debate")
_MODEL_ARGUMENTS = ("models", "model", "judge")


def register_prompts(server: MCPServer[Any], state: ChorusState) -> None:
    """The four workflow prompts and the completion handler (which the SDK calls without a request
    context, so the state is passed in here, as for the static resources)."""
    config = state.config

    @server.prompt(title="Ask the ensemble", icons=icon_for("ensemble_vote"))
    def ask_ensemble(question: Question, strategy: Strategy = None, models: ModelList = None) -> str:
        """Ask several models at once and get one voted answer with every vote shown."""
        arguments: dict[str, Any] = {"prompt": question}
        arguments |= _ensemble_choice(config, strategy, models)
        return _call(
            "ensemble_vote", arguments, "Then give me the answer, how each model voted, and the cost."
        )

    @server.prompt(title="Second opinion", icons=icon_for("ensemble_vote"))
    def second_opinion(
        question: Question,
        answer: Annotated[str, Field(description="The answer to check.")],
        strategy: Strategy = None,
        models: ModelList = None,
    ) -> str:
        """Have other models check a proposed answer: each says yes or no, and why."""
        check = (
            f"Is the proposed answer to this question correct? Answer yes or no on the first line, then say "
            f"why in a few sentences.\n\nQuestion:\n{question}\n\nProposed answer:\n{answer}"
        )
        arguments: dict[str, Any] = {"prompt": check, "extract": "yes_no"}
        arguments |= _ensemble_choice(config, strategy, models)
        return _call("ensemble_vote", arguments, "Then tell me the verdict, who disagreed and their reasons.")

    @server.prompt(title="Code review pipeline", icons=icon_for("run_pipeline"))
    def code_review(
        task: Annotated[str, Field(description="What the code must do.")],
        code: Annotated[str | None, Field(description="Existing code to review and fix (optional).")] = None,
        pipeline: Annotated[
            str | None, Field(description="A configured pipeline (default: the config's).")
        ] = None,
    ) -> str:
        """Plan, write or revise, and review code with several models until a reviewer approves it."""
        work = task if not code else f"{task}\n\nExisting code to review and improve:\n{code}"
        arguments: dict[str, Any] = {"input": work}
        if pipeline is not None:
            _check_strategy(config, pipeline, PipelineSpec, "pipeline")
            arguments["pipeline"] = pipeline
        return _call("run_pipeline", arguments, "Then show me the final code and what the review found.")

    @server.prompt(title="Debate", icons=icon_for("ensemble_vote"))
    def debate(
        question: Question,
        judge: Annotated[str | None, Field(description="The model that weighs the answers.")] = None,
        strategy: Strategy = None,
        models: ModelList = None,
    ) -> str:
        """Models answer independently with their reasons; a judge weighs them and writes one answer."""
        ask = f"{question}\n\nGive your answer and the strongest reasons for it."
        arguments: dict[str, Any] = {"prompt": ask, "aggregation": "synthesis"}
        arguments |= _ensemble_choice(config, strategy, models)
        if judge is not None:
            _check_models(config, [judge], "judge")
            arguments["judge"] = judge
        elif "models" in arguments or not _has_judge(config, strategy):
            arguments["judge"] = _default_judge(config, arguments.get("models", []))
        return _call("ensemble_vote", arguments, "Then give me the answer and where the models disagreed.")

    @_completion_handler(server)
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if isinstance(ref, ResourceTemplateReference):
            if argument.name != "session_id" or not ref.uri.startswith("session://"):
                return None
            recent = await state.sessions.list_recent(RECENT_SESSIONS)
            return completion(argument.value, [session.id for session in recent])
        return complete_prompt_argument(config, ref.name, argument.name, argument.value)


_Completer = Callable[
    [PromptReference | ResourceTemplateReference, CompletionArgument, CompletionContext | None],
    Awaitable[Completion | None],
]


def _completion_handler(server: MCPServer[Any]) -> Callable[[_Completer], _Completer]:
    """`server.completion()`, typed (the SDK's decorator is not)."""
    return cast(Callable[[_Completer], _Completer], server.completion())  # type: ignore[no-untyped-call]


def complete_prompt_argument(
    config: ChorusConfig, prompt: str, argument: str, value: str
) -> Completion | None:
    """What `argument` of `prompt` may be, among names starting with `value` (None: nothing to offer)."""
    if argument == "strategy" and prompt in _ENSEMBLE_PROMPTS:
        return completion(value, _strategies_of(config, EnsembleSpec))
    if argument == "pipeline" and prompt == "code_review":
        return completion(value, _strategies_of(config, PipelineSpec))
    if argument in _MODEL_ARGUMENTS:
        aliases = sorted(config.models)
        if argument != "models":
            return completion(value, aliases)
        # A comma-separated list: complete its last item, keeping the ones before.
        head, _, last = value.rpartition(",")
        chosen = {item.strip() for item in head.split(",")}
        prefix = f"{head}, " if head else ""
        left = [alias for alias in aliases if alias not in chosen]
        found = completion(last.strip(), left)
        return Completion(
            values=[prefix + v for v in found.values], total=found.total, has_more=found.has_more
        )
    return None


def completion(value: str, candidates: Iterable[str]) -> Completion:
    """The candidates starting with `value` (case-insensitive), at most `MAX_VALUES` of them."""
    wanted = value.casefold()
    matching = [name for name in candidates if name.casefold().startswith(wanted)]
    return Completion(values=matching[:MAX_VALUES], total=len(matching), has_more=len(matching) > MAX_VALUES)


def _refused(message: str) -> MCPError:
    """A bad prompt argument: the SDK passes an MCPError on as it is (anything else becomes 'Error rendering
    prompt X', without the reason)."""
    return MCPError(code=INVALID_PARAMS, message=message)


def _call(tool: str, arguments: dict[str, Any], then: str) -> str:
    shown = json.dumps(arguments, indent=2, ensure_ascii=False)
    return f"Call the Chorus tool `{tool}` with these arguments:\n\n```json\n{shown}\n```\n\n{then}"


def _ensemble_choice(config: ChorusConfig, strategy: str | None, models: str | None) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    if strategy is not None:
        _check_strategy(config, strategy, EnsembleSpec, "strategy")
        chosen["strategy"] = strategy
    if models is not None:
        names = [name.strip() for name in models.split(",") if name.strip()]
        if not names:
            raise _refused("models: give model aliases separated by commas, e.g. 'fast, strong'")
        _check_models(config, names, "models")
        chosen["models"] = names
    return chosen


def _check_strategy(config: ChorusConfig, name: str, kind: type[Step], argument: str) -> None:
    known = _strategies_of(config, kind)
    if name not in known:
        wanted = kind.model_fields["kind"].default
        raise _refused(f"{argument}: no {wanted} strategy {name!r}; configured: {', '.join(known) or 'none'}")


def _check_models(config: ChorusConfig, names: list[str], argument: str) -> None:
    if config.allow_unlisted_models:
        return  # a provider id the config does not list is allowed, and checked when the tool runs
    unknown = [name for name in names if name not in config.models]
    if unknown:
        known = ", ".join(sorted(config.models)) or "none"
        raise _refused(f"{argument}: unknown model {', '.join(map(repr, unknown))}; configured: {known}")


def _strategies_of(config: ChorusConfig, kind: type[Step]) -> list[str]:
    return sorted(name for name in config.strategies if isinstance(_resolved(config, name), kind))


def _resolved(config: ChorusConfig, name: str) -> Step | None:
    step = config.strategies.get(name)
    seen: set[str] = set()
    while isinstance(step, StrategyRef) and step.name not in seen:
        seen.add(step.name)
        step = config.strategies.get(step.name)
    return step


def _has_judge(config: ChorusConfig, strategy: str | None) -> bool:
    step = _resolved(config, strategy or config.defaults.ensemble)
    return isinstance(step, EnsembleSpec) and step.judge is not None


def _default_judge(config: ChorusConfig, members: list[str]) -> str:
    """A synthesis needs a judge: the one a configured ensemble uses, else a model tagged `strong`, else the
    first member, else the first configured model."""
    for name in sorted(config.strategies):
        step = _resolved(config, name)
        if isinstance(step, EnsembleSpec) and isinstance(step.judge, str):
            return step.judge
    strong = [alias for alias, entry in config.models.items() if "strong" in entry.tags]
    return (strong or members or sorted(config.models) or ["strong"])[0]
