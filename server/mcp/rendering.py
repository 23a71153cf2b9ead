"""A `StrategyResult` as an MCP tool result: a short text plus the structured record, at one of two details.

Clients give the calling model both the text content and the structured content, so what the two hold
is chosen not to say the same thing twice:

- the **structured content** is the evidence: the `StrategyResult` record (its schema is the tool's
  `outputSchema`);
- the **text** is what to read first: the answer, then one line per decision (the vote and its count,
  the route, an escalation...) and one line of totals with the `session_id`.

`detail="summary"` (the default) keeps a result small enough to leave in the agent's context: each
member's answer is cut to an excerpt (`EXCERPT_CHARS`), the raw text beside an extracted answer, the
per-call token counts and a cache hit's saved cost are left out (the totals keep them), vote keys are
cut like answers. The final answer and every error are kept whole. `detail="full"` returns the whole
record, and the text lists every call too. Full transcripts also stay readable afterwards through the
session's resource.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from mcp.types import CallToolResult, InputRequiredResult, TextContent

from chorus_mcp.strategies.core.result import StrategyResult

Detail = Literal["summary", "full"]

EXCERPT_CHARS = 72
"""A member's answer in a summary: a dozen words, enough to see what it said."""
KEY_CHARS = 24
"""A vote key (the answer itself, for a free-text vote) in a summary."""
NOTE_CHARS = 80
"""A decision's reason or message in a summary."""

_SUMMARY_DROPS = ("text", "prompt_tokens", "completion_tokens", "saved_cost_usd")
_DEFAULT_FLAGS = {"partial": False, "early_stop": False, "cost_complete": True}
"""Flags left out of a summary when they have their usual value."""


def render(result: StrategyResult, detail: Detail = "full") -> CallToolResult:
    """The tool result for `result` at `detail`."""
    data = result.model_dump(mode="json", exclude_none=True)
    return _result(data, detail, is_error=not result.ok)


@overload
def shaped(result: CallToolResult, detail: Detail) -> CallToolResult: ...
@overload
def shaped(result: InputRequiredResult, detail: Detail) -> InputRequiredResult: ...
@overload
def shaped(
    result: CallToolResult | InputRequiredResult, detail: Detail
) -> CallToolResult | InputRequiredResult: ...
def shaped(
    result: CallToolResult | InputRequiredResult, detail: Detail
) -> CallToolResult | InputRequiredResult:
    """A rendered (full) tool result at `detail`; anything else (an input request) as it is."""
    if detail == "full" or not isinstance(result, CallToolResult) or result.structured_content is None:
        return result
    return _result(result.structured_content, detail, is_error=bool(result.is_error))


def _result(data: dict[str, Any], detail: Detail, *, is_error: bool) -> CallToolResult:
    if detail == "summary":
        data = summarised(data)
    return CallToolResult(
        content=[TextContent(type="text", text=text_of(data, detail))],
        structured_content=data,
        is_error=is_error,
    )


def summarised(data: dict[str, Any]) -> dict[str, Any]:
    """The structured record with answers cut to excerpts (see the module docstring)."""
    calls = []
    for call in data.get("calls", []):
        call = {key: value for key, value in call.items() if key not in _SUMMARY_DROPS}
        if isinstance(call.get("answer"), str):
            call["answer"] = excerpt(call["answer"], EXCERPT_CHARS)
        calls.append(call)
    decisions = [_summarised_decision(decision) for decision in data.get("decisions", [])]
    summary = {**data, "calls": calls, "decisions": decisions}
    if isinstance(data.get("totals"), dict):
        totals = _without_defaults(data["totals"])
        if isinstance(totals.get("latency_s"), float):
            totals["latency_s"] = round(totals["latency_s"], 3)
        summary["totals"] = totals
    return _without_defaults(summary)


def _without_defaults(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if _DEFAULT_FLAGS.get(key, ...) != value}


def _summarised_decision(decision: dict[str, Any]) -> dict[str, Any]:
    decision = _without_defaults(decision)
    if isinstance(decision.get("counts"), dict):
        counts: dict[str, float] = {}
        for key, count in decision["counts"].items():
            short = excerpt(key, KEY_CHARS)
            counts[short] = counts.get(short, 0) + count
        decision["counts"] = counts
    if isinstance(decision.get("winner"), str):
        decision["winner"] = excerpt(decision["winner"], KEY_CHARS)
    for key in ("reason", "message"):
        if isinstance(decision.get(key), str):
            decision[key] = excerpt(decision[key], NOTE_CHARS)
    return decision


def excerpt(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (with "…")."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.") + "…"


def text_of(data: dict[str, Any], detail: Detail) -> str:
    """What a person (or the calling model) reads first: the answer, how it was decided, what it cost."""
    lines: list[str] = []
    if data.get("ok"):
        lines.append(str(data.get("answer") or ""))
        if data.get("partial"):
            lines.append(f"[partial: {data.get('partial_reason')}]")
    else:
        lines.append(f"No answer: {data.get('error')}")
    lines.append("")
    for decision in data.get("decisions", []):
        if detail == "full" or decision.get("kind") != "note":  # notes stay in the structured record
            lines.append(_decision_line(decision))
    if detail == "full":
        for call in data.get("calls", []):
            said = call.get("answer") if call.get("status") == "ok" else call.get("error")
            status = f"[{call.get('status')}{', cached' if call.get('cached') else ''}]"
            lines.append(f"- {call.get('stage')} {call.get('model')} {status} {excerpt(said or '', 80)}")
    lines.append(_totals_line(data))
    return "\n".join(lines)


def _decision_line(decision: dict[str, Any]) -> str:
    kind = decision.get("kind")
    if kind == "vote":
        counts = decision.get("counts") or {}
        total = sum(counts.values())
        winner = decision.get("winner")
        share = f"{counts.get(winner, 0):g}/{total:g}" if winner is not None else "no votes"
        agreed = "consensus" if decision.get("consensus") else "no consensus"
        stopped = ", early stop" if decision.get("early_stop") else ""
        return f"vote ({decision.get('mode')}): {excerpt(str(winner), KEY_CHARS)} {share}, {agreed}{stopped}"
    if kind == "confidence":
        confidence = decision.get("confidence")
        shown = "unknown" if confidence is None else f"{confidence:.2f}"
        verdict = "escalated" if decision.get("escalate") else "accepted"
        return f"confidence {decision.get('model')}: {shown} vs {decision.get('threshold')} → {verdict}"
    if kind == "route":
        return f"route: {decision.get('route')} ({decision.get('method')})"
    if kind == "fallback":
        return f"fallback: {decision.get('from_model')} → {decision.get('to_model') or 'none'}"
    if kind == "review":
        verdict = "approved" if decision.get("approved") else f"{len(decision.get('issues') or [])} issues"
        return f"review #{decision.get('iteration')}: {verdict}"
    return f"note: {excerpt(str(decision.get('message', '')), NOTE_CHARS)}"


def _totals_line(data: dict[str, Any]) -> str:
    totals = data.get("totals") or {}
    cost = totals.get("cost_usd")
    shown = "cost unknown" if cost is None else f"${float(cost):.6f}"
    if cost is not None and not totals.get("cost_complete", True):
        shown += " (some prices unknown)"
    tokens = f"{totals.get('prompt_tokens', 0)}+{totals.get('completion_tokens', 0)} tokens"
    line = f"{totals.get('calls', 0)} calls, {tokens}, {shown}, {float(totals.get('latency_s', 0)):.2f}s"
    if totals.get("cached_calls"):
        saved = totals.get("saved_cost_usd")
        line += f", {totals['cached_calls']} cached" + (f" (saved ${float(saved):.6f})" if saved else "")
    if data.get("session_id"):
        line += f", session_id {data['session_id']}"
    return line
