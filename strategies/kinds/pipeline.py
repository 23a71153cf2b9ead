"""The `pipeline` strategy: stages in order, each seeing earlier outputs, refined until a reviewer approves.

Each stage's prompt is a safe template (`strategies.core.templates`) over `{input}` (the latest user
message) and the outputs of earlier stages, and replaces the latest user message of the request
(the caller's system prompt and history are kept; a stage with its own `context` mode gets the
session's history rebuilt in that mode, `strategies.engine.context_passing.for_stage`). A stage's step is
any `Step`, run as `{stage}/{name}`; a stage's second and later runs (after a refinement) are
`{stage}/{name}#2`, `#3`...

A `for_each` stage is a fan-out (`strategies.kinds.fanout`): the list an earlier stage gave (read by
`strategies.kinds.items`; a fan-out stage's list is its results) is cut to `max_items` (a note says
so), and the stage's step runs once per item, `{item}` in its prompt, at most `concurrency` at once,
each item staged `{stage}/{name}[n]`. Its output, for later templates and as an answer, is the answered
items' results under their items' headings; failed items are named in the stage's `FanOutDecision`
and the rest go on. No list (no JSON array where one was required, an empty array, no line), or every
item failing, stops the pipeline with an error naming the stage. A review stage sees a fan-out's output
fenced as one value, like any other, so nothing an item says can pass for the reviewer's verdict.

A review stage answers with a JSON verdict (`strategies.core.verdict`). Its prompt holds every value
fenced as data (the work under review cannot speak to the reviewer as the prompt, nor pass for its
verdict), followed by `REVIEW_INSTRUCTION`: end with exactly one verdict object. Its request asks for
that object as structured output (`response_schema`), which the clients send only to models that
support it; the last verdict object of the answer is read either way. When it does not approve and
`refine` is configured for an earlier stage, the refine prompt (with `{issues}` as a bullet list and
every output so far) is run, its answer replaces that stage's output, and the stages after it are run
again up to and including the review. Every review is recorded as a `ReviewDecision`.

Outcomes, decided here:

- approved (or no review): `ok=True`, answer = output of `spec.output` or the last non-review stage;
- still not approved after `refine.max_iterations` refinements, or not approved with no refinement
  configured for it: the pipeline stops there with `ok=False`, `partial=False` (nothing was cut
  short), the latest revision kept in `answer` (the output stage's if it has run, else the latest
  non-review output), and `error` = `not approved after N refinement(s): <issues joined with "; ">`.
  Unapproved work is not an answer an agent may take as reviewed; the last `ReviewDecision` carries
  the open issues, and a `NoteDecision` says when no refinement was configured;
- a stage produces no answer: `ok=False`, the error names the stage and its reasons, calls are kept;
- the deadline passes or the budget runs out mid-pipeline: `partial=True` with the latest output so
  far (the output stage's if it has one, otherwise the most recent non-review stage's).

Template mistakes (a field that is not a plain name, an unknown field) are checked before any model
is called and raised as `UserInputError` naming the stage, the field and the names available.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.result import NoteDecision, ReviewDecision, StrategyResult
from chorus_mcp.strategies.core.spec import RESERVED_STAGE_NAMES, PipelineSpec, Stage, Step
from chorus_mcp.strategies.core.templates import check_fields, latest_user_text, render, with_prompt
from chorus_mcp.strategies.core.verdict import REVIEW_INSTRUCTION, VERDICT_SCHEMA, fence, parse_verdict
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.context_passing import for_stage
from chorus_mcp.strategies.kinds.fanout import run_items
from chorus_mcp.strategies.kinds.items import read_items
from chorus_mcp.strategies.sessions.session import ContextMode


def check_pipeline(spec: PipelineSpec, stage: str) -> None:
    """Validate every template against the names it may use, before anything runs."""
    names = [s.name for s in spec.stages]
    for reserved in RESERVED_STAGE_NAMES:
        if reserved in names:
            raise UserInputError(f"{stage}: a stage may not be named {reserved!r} (it is a template field)")
    for index, st in enumerate(spec.stages):
        item = ["item"] if st.for_each is not None else []
        check_fields(st.prompt, ["input", *item, *names[:index]], where=f"{stage}: stage {st.name!r}")
    if spec.refine is not None:
        check_fields(spec.refine.prompt, ["input", "issues", *names], where=f"{stage}: refine prompt")


@dataclass
class _Run:
    """The state of one pipeline run."""

    spec: PipelineSpec
    request: CompletionRequest
    ctx: RunContext
    stage: str
    result: StrategyResult
    outputs: dict[str, str] = field(default_factory=dict)
    """Latest output of each stage that has run; `input` is the request text."""
    lists: dict[str, list[str]] = field(default_factory=dict)
    """Latest results of each fan-out stage that has run, one per item that answered, in item order."""
    runs: Counter[str] = field(default_factory=Counter)
    """How many times each stage has run (for the `#2` label suffix and the review iteration)."""
    latest_work: str | None = None
    """The most recent non-review output: the best answer available if the run is cut short."""
    refinements: int = 0

    def label(self, name: str) -> str:
        count = self.runs[name]
        return f"{self.stage}/{name}" if count <= 1 else f"{self.stage}/{name}#{count}"

    def inputs_for(self, name: str, request: CompletionRequest) -> CompletionRequest:
        """A later stage reads the earlier stages' output: sent without the images if it cannot see them."""
        if request.inputs is None or name == self.spec.stages[0].name:
            return request
        return request.model_copy(update={"inputs": request.inputs.seen_by("the earlier stages")})

    async def run(
        self, name: str, step: Step, prompt: str, *, review: bool, context: ContextMode | None = None
    ) -> StrategyResult:
        """Run one stage's step (or a refinement of it) and keep its output when it answers."""

        self.runs[name] += 1
        request = with_prompt(self.request, prompt)
        if review:
            request = request.model_copy(update={"response_schema": VERDICT_SCHEMA})
        if context is not None:
            # The stage chose its own context: its history is rebuilt from the session for it.
            request = await for_stage(request, context, step, self.ctx, self.label(name))
        request = self.inputs_for(name, request)
        child = await self.ctx.run_child(step, request, self.label(name))
        self.result.include(child)
        if child.partial:
            self.result.partial = True
            self.result.partial_reason = f"stage {name!r}: {child.partial_reason}"
        if child.ok and child.answer is not None:
            self.outputs[name] = child.answer
            if not review:
                self.latest_work = child.answer
        return child

    async def fan_out(self, st: Stage) -> StrategyResult:
        """Run a `for_each` stage: its step once per item of its source's list, concurrently."""
        assert st.for_each is not None
        each = st.for_each
        self.runs[st.name] += 1
        label = self.label(st.name)
        source = "the request" if each.stage == "input" else f"stage {each.stage!r}"
        if each.stage in self.lists:
            items, how = self.lists[each.stage], "its results"
        else:
            text = latest_user_text(self.request) if each.stage == "input" else self.outputs[each.stage]
            read = read_items(text, each.parse)
            if read.problem is not None:
                return StrategyResult(
                    strategy="for_each", ok=False, error=f"nothing to map over: {source} gave {read.problem}"
                )
            items, how = read.items, read.how
        if len(items) > each.max_items:
            _note(
                self,
                label,
                f"{source} gave {len(items)} items; the first {each.max_items} were run "
                f"(for_each.max_items), items {each.max_items + 1}-{len(items)} were not",
            )
            items = items[: each.max_items]
        values = self.values()
        prompts = [
            render(st.prompt, {**values, "item": item}, where=f"{self.stage}: stage {st.name!r}")
            for item in items
        ]
        requests = [with_prompt(self.request, prompt) for prompt in prompts]
        if st.context is not None:
            # The history is rebuilt once for the stage (a summary would otherwise be written per item),
            # sized with the first item's prompt; each item's prompt then replaces the latest message.
            shared = await for_stage(requests[0], st.context, st.step, self.ctx, label)
            requests = [with_prompt(shared, prompt) for prompt in prompts]
        requests = [self.inputs_for(st.name, request) for request in requests]
        ran = await run_items(
            st.step,
            items,
            requests,
            self.ctx,
            label,
            concurrency=each.concurrency,
            source=f"{source}, read as {how}",
        )
        child = ran.result
        self.result.include(child)
        if child.partial:
            self.result.partial = True
            self.result.partial_reason = f"stage {st.name!r}: {child.partial_reason}"
        if child.ok and child.answer is not None:
            self.outputs[st.name] = child.answer
            self.lists[st.name] = ran.answers
            self.latest_work = child.answer
        return child

    def values(self, **extra: str) -> dict[str, str]:
        return {"input": latest_user_text(self.request), **self.outputs, **extra}

    def review_values(self) -> dict[str, str]:
        """The values for a review prompt, each fenced as data (see `strategies.core.verdict.fence`)."""
        return {name: fence(name, value) for name, value in self.values().items()}


async def run_pipeline(
    spec: PipelineSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    """Run the stages in order, refining on a failed review within `refine.max_iterations`."""
    check_pipeline(spec, stage)
    run = _Run(spec, request, ctx, stage, StrategyResult(strategy="pipeline", answer=None, ok=False))
    index = 0
    while index < len(spec.stages):
        st = spec.stages[index]
        if (cut := _cut_short(ctx)) is not None:
            return _partial(run, f"{cut} before stage {st.name!r}")
        if st.for_each is not None:
            child = await run.fan_out(st)
        else:
            values = run.review_values() if st.review else run.values()
            prompt = render(st.prompt, values, where=f"{stage}: stage {st.name!r}")
            if st.review:
                prompt += REVIEW_INSTRUCTION
            child = await run.run(st.name, st.step, prompt, review=st.review, context=st.context)
        if not child.ok or child.answer is None:
            return _stage_failed(run, st.name, child)
        if not st.review:
            index += 1
            continue
        after = await _after_review(run, index, child.answer)
        if isinstance(after, StrategyResult):
            return after
        index = after
    return _finish(run)


async def _after_review(run: _Run, index: int, answer: str) -> int | StrategyResult:
    """Record the review at `index`; refine when it does not approve and a refinement is due.

    Returns the index of the next stage to run, or the final result when the run must stop.
    """
    spec, review = run.spec, run.spec.stages[index]
    verdict = parse_verdict(answer)
    label = run.label(review.name)
    run.result.decisions.append(
        ReviewDecision(
            stage=label, iteration=run.runs[review.name], approved=verdict.approved, issues=verdict.issues
        )
    )
    if verdict.approved:
        return index + 1
    names = [s.name for s in spec.stages]
    refine = spec.refine
    if refine is None or names.index(refine.stage) >= index:
        _note(run, label, f"review {review.name!r} did not approve; no refinement is configured for it")
        return _not_approved(run, verdict.issues)
    if run.refinements >= refine.max_iterations:
        return _not_approved(run, verdict.issues)
    if (cut := _cut_short(run.ctx)) is not None:
        return _partial(run, f"{cut} before refining stage {refine.stage!r}")
    run.refinements += 1
    target = spec.stages[names.index(refine.stage)]
    issues = "\n".join(f"- {issue}" for issue in verdict.issues)
    prompt = render(refine.prompt, run.values(issues=issues), where=f"{run.stage}: refine prompt")
    step = refine.step or target.step
    child = await run.run(target.name, step, prompt, review=False, context=target.context)
    if not child.ok or child.answer is None:
        return _stage_failed(run, target.name, child)
    # The revised output replaces the old one; the stages after it run again, up to this review.
    return names.index(refine.stage) + 1


def _answer_stage(spec: PipelineSpec) -> str:
    if spec.output is not None:
        return spec.output
    return [s.name for s in spec.stages if not s.review][-1]


def _finish(run: _Run) -> StrategyResult:
    run.result.answer = run.outputs[_answer_stage(run.spec)]
    run.result.ok = True
    return run.result


def _not_approved(run: _Run, issues: list[str]) -> StrategyResult:
    """Stop unapproved: `ok=False`, the latest revision kept as the answer, the open issues in the error."""
    result = run.result
    result.answer = run.outputs.get(_answer_stage(run.spec), run.latest_work)
    result.ok = False
    open_issues = "; ".join(" ".join(issue.split()) for issue in issues)
    result.error = f"not approved after {run.refinements} refinement(s): {open_issues}"
    return result


def _note(run: _Run, stage: str, message: str) -> None:
    run.result.decisions.append(NoteDecision(stage=stage, message=message))


def _cut_short(ctx: RunContext, failed: StrategyResult | None = None) -> str | None:
    """Why the run cannot go on (deadline passed, budget spent), or None.

    `failed` is a stage that just failed: if its last call was refused by the budget check (whose
    worst-case estimate can refuse a call before the cap is actually reached), that too is a budget cut.
    """
    if ctx.time_left() <= 0:
        return "deadline reached"
    if not ctx.budget.allows():
        return "cost budget spent"
    if failed is not None and failed.calls:
        last = failed.calls[-1]
        if last.status == "skipped" and (last.error or "").startswith("budget"):
            return "cost budget spent"
    return None


def _partial(run: _Run, reason: str) -> StrategyResult:
    """Stop early with the best output so far: the output stage's, else the latest non-review stage's."""
    result = run.result
    result.answer = run.outputs.get(_answer_stage(run.spec), run.latest_work)
    result.ok = result.answer is not None
    result.partial = True
    result.partial_reason = reason
    if result.answer is None:
        result.error = f"{reason}: no stage had produced an answer yet"
    return result


def _stage_failed(run: _Run, name: str, child: StrategyResult) -> StrategyResult:
    label = run.label(name)
    if (cut := _cut_short(run.ctx, child)) is not None:
        # The stage failed because time or money ran out: that is a cut-short run, not a broken stage.
        partial = _partial(run, f"{cut} during stage {label!r}")
        if partial.error is not None:
            partial.error = f"{partial.error}; stage {label!r}: {child.error}"
        return partial
    run.result.ok = False
    run.result.answer = None
    run.result.error = f"stage {label!r} failed: {child.error or 'no answer'}"
    return run.result
