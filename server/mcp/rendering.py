"""A `StrategyResult` as an MCP tool result: a short text plus the structured record, at one of two details.

Clients give the calling model both the text content and the structured content, so what the two hold
is chosen not to say the same thing twice:

- the **structured content** is the evidence: the `StrategyResult` record (its schema is the tool's
  `outputSchema`);
- the **text** is what to read first: the answer, then one line per decision (the vote: who said what,
  strongest first; the route, an escalation, a fan-out's failed items with their reasons...) and one
  line of totals with the `session_id`. A result that failed but still has an answer (a pipeline whose
  latest revision was not approved) shows the error first, then that answer, labelled as not accepted.

`detail="summary"` (the default) keeps a result small enough to leave in the agent's context: each
member's answer is cut to an excerpt (`EXCERPT_CHARS`; a vote's seat, whose answer is its vote key, to
`KEY_CHARS`), the raw text beside an extracted answer and each call's figures (tokens, cost, latency,
a cache hit's saved cost) are left out (the totals keep them), vote keys (in the counts, the answer
groups and a tie) are cut alike, an answer group keeps its answer, its models and the seats not
counted (its weight only in a weighted vote: otherwise it is the answer's count), and the text names
at most `SUMMARY_GROUPS` answers of a vote. The final answer and every error are kept whole.
`detail="full"` returns the whole record, and the text lists every call too. Full transcripts also
stay readable afterwards through the session's resource. `tests/server/mcp/test_footprint.py` keeps
both within token budgets.
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
SUMMARY_GROUPS = 6
"""Distinct answers of a vote named in a summary's text; the rest are counted (`+3 more answers`)."""

_SUMMARY_DROPS = (
    "text",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_s",
    "saved_cost_usd",
)
"""A call's figures, left to the totals in a summary (and its raw text, beside the extracted answer)."""
_DEFAULT_FLAGS = {"partial": False, "early_stop": False, "cost_complete": True, "one_model": False}
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
    votes = {d.get("stage") for d in data.get("decisions", []) if d.get("kind") == "vote" and d.get("groups")}
    calls = []
    for call in data.get("calls", []):
        call = {key: value for key, value in call.items() if key not in _SUMMARY_DROPS}
        if isinstance(call.get("answer"), str):
            # A vote's seat answered with its vote key, which the vote's answer groups hold: cut it alike.
            limit = KEY_CHARS if _seat_of(call.get("stage"), votes) else EXCERPT_CHARS
            call["answer"] = excerpt(call["answer"], limit)
        calls.append(call)
    decisions = [_summarised_decision(decision) for decision in data.get("decisions", [])]
    summary = {**data, "calls": calls, "decisions": decisions}
    if isinstance(data.get("totals"), dict):
        totals = _without_defaults(data["totals"])
        if isinstance(totals.get("latency_s"), float):
            totals["latency_s"] = round(totals["latency_s"], 3)
        summary["totals"] = totals
    return _without_defaults(summary)


def _seat_of(stage: Any, votes: set[Any]) -> bool:
    """True for a call made by a vote's member itself (`ensemble/member-2`, not `.../member-2/tier-1`)."""
    if not isinstance(stage, str) or "/" not in stage:
        return False
    parent, _, seat = stage.rpartition("/")
    return parent in votes and bool(seat)


def _without_defaults(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if _DEFAULT_FLAGS.get(key, ...) != value}


def _summarised_decision(decision: dict[str, Any]) -> dict[str, Any]:
    decision = _without_defaults(decision)
    if isinstance(decision.get("counts"), dict):
        counts: dict[str, float] = {}
        for key, count in decision["counts"].items():
            short = excerpt(key, KEY_CHARS)
            counts[short] = counts.get(short, 0) + count
        decision["counts"] = {key: _whole(count) for key, count in counts.items()}
    if isinstance(decision.get("winner"), str):
        decision["winner"] = excerpt(decision["winner"], KEY_CHARS)
    if isinstance(decision.get("groups"), list):
        weighted = decision.get("mode") == "weighted"
        decision["groups"] = [_summarised_group(group, weighted) for group in decision["groups"]]
    if isinstance(decision.get("tie"), list):
        decision["tie"] = [
            excerpt(key, KEY_CHARS) if isinstance(key, str) else key for key in decision["tie"]
        ]
    for key in ("reason", "message"):
        if isinstance(decision.get(key), str):
            decision[key] = excerpt(decision[key], NOTE_CHARS)
    if isinstance(decision.get("failed"), list):  # a fan-out's failed items: the item and its reason cut
        decision["failed"] = [_summarised_failure(failure) for failure in decision["failed"]]
    return decision


def _summarised_failure(failure: Any) -> Any:
    if not isinstance(failure, dict):
        return failure
    cut = {"item": KEY_CHARS, "error": NOTE_CHARS}
    return {k: excerpt(v, cut[k]) if k in cut and isinstance(v, str) else v for k, v in failure.items()}


def _summarised_group(group: Any, weighted: bool) -> Any:
    """A vote's answer group in a summary: its answer cut, who gave it, and the seats not counted (if
    any); its weight only in a weighted vote (otherwise it is the answer's count), `how` left out."""
    if not isinstance(group, dict):
        return group
    drops = {"how"} | (set() if weighted else {"weight"})
    group = {key: value for key, value in group.items() if key not in drops and value != []}
    if isinstance(group.get("answer"), str):
        group["answer"] = excerpt(group["answer"], KEY_CHARS)
    if "weight" in group:
        group["weight"] = _whole(group["weight"])
    return group


def _whole(number: Any) -> Any:
    """A whole float as an int (`2` rather than `2.0`: the same number, fewer tokens)."""
    return int(number) if isinstance(number, float) and number.is_integer() else number


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
    lines = headline(data)
    lines.append("")
    for decision in data.get("decisions", []):
        if detail == "full" or decision.get("kind") != "note":  # notes stay in the structured record
            lines.append(_decision_line(decision, detail))
    if detail == "full":
        for call in data.get("calls", []):
            said = call.get("answer") if call.get("status") == "ok" else call.get("error")
            status = f"[{call.get('status')}{', cached' if call.get('cached') else ''}]"
            lines.append(f"- {call.get('stage')} {call.get('model')} {status} {excerpt(said or '', 80)}")
    lines.append(_totals_line(data))
    return "\n".join(lines)


def headline(data: dict[str, Any], *, answered: str = "") -> list[str]:
    """The answer (after `answered`), or why there is none; a failed result that kept an answer (a
    pipeline's latest revision, not approved) says so, then shows it. Also `chorus-mcp ask`'s first lines."""
    lines: list[str] = []
    if data.get("ok"):
        lines.append(f"{answered}{data.get('answer') or ''}")
    elif data.get("answer"):  # failed, yet an answer was kept (a pipeline's latest, unapproved revision)
        lines.append(f"Not accepted: {data.get('error')}")
        lines.append("Latest answer (not accepted):")
        lines.append(str(data["answer"]))
    else:
        lines.append(f"No answer: {data.get('error')}")
    if data.get("partial") and (data.get("ok") or data.get("answer")):
        lines.append(f"[partial: {data.get('partial_reason')}]")
    return lines


def _decision_line(decision: dict[str, Any], detail: Detail) -> str:
    kind = decision.get("kind")
    if kind == "vote" and decision.get("groups"):
        return vote_line(decision, detail)
    if kind == "vote":  # a vote recorded before answer groups existed (an older stored session)
        counts = decision.get("counts") or {}
        total = sum(counts.values())
        winner = decision.get("winner")
        share = f"{counts.get(winner, 0):g}/{total:g}" if winner is not None else "no votes"
        agreed = "consensus" if decision.get("consensus") else "no consensus"
        stopped = ", early stop" if decision.get("early_stop") else ""
        return f"vote ({decision.get('mode')}): {excerpt(str(winner), KEY_CHARS)} {share}, {agreed}{stopped}"
    if kind == "ranking":
        return ranking_line(decision)
    if kind == "debate":
        return debate_line(decision, detail)
    if kind == "confidence":
        confidence = decision.get("confidence")
        shown = "unknown" if confidence is None else f"{confidence:.2f}"
        verdict = "escalated" if decision.get("escalate") else "accepted"
        return f"confidence {decision.get('model')}: {shown} vs {decision.get('threshold')} → {verdict}"
    if kind == "route":
        return f"route: {decision.get('route')} ({decision.get('method')})"
    if kind == "fallback":
        return f"fallback: {decision.get('from_model')} → {decision.get('to_model') or 'none'}"
    if kind == "for_each":
        return fan_out_line(decision, detail)
    if kind == "review":
        verdict = "approved" if decision.get("approved") else f"{len(decision.get('issues') or [])} issues"
        return f"review #{decision.get('iteration')}: {verdict}"
    return f"note: {excerpt(str(decision.get('message', '')), NOTE_CHARS)}"


def vote_line(decision: dict[str, Any], detail: Detail = "summary") -> str:
    """A vote with answer groups: each answer with the models that gave it, strongest first, then how
    many independent voters agree, e.g.
    `vote (majority): 391 ← gpt-4o, claude | 381 ← mistral; 2 of 3 independent voters agree, consensus`.
    When the voters are all samples of one model (`one_model`) it says so instead (`2 of 2 samples of one
    model agree`): their agreement shares that model's biases, it is not independent corroboration."""
    groups = [g for g in decision.get("groups") or [] if isinstance(g, dict)]
    shown = groups[:SUMMARY_GROUPS] if detail == "summary" else groups
    tie = {excerpt(str(key), KEY_CHARS) for key in decision.get("tie") or []}
    winner = decision.get("winner")
    weighted = decision.get("mode") == "weighted"
    tied = [g for g in shown if excerpt(str(g.get("answer")), KEY_CHARS) in tie]
    if winner is not None:  # a broken tie: the answer that won it first
        short = excerpt(str(winner), KEY_CHARS)
        tied.sort(key=lambda g: excerpt(str(g.get("answer")), KEY_CHARS) != short)
    rest = [g for g in shown if g not in tied]
    parts = [_group_text(g, weighted) for g in tied]
    if tied:
        parts[0] = "tie: " + parts[0]
        parts[-1] += f" ({_tie_break_text(decision.get('tie_break'), winner)})"
    parts += [_group_text(g, weighted) for g in rest]
    if len(groups) > len(shown):
        more = len(groups) - len(shown)
        parts.append(f"+{more} more answer{'s' if more != 1 else ''}")
    voters = decision.get("voters")
    if not isinstance(voters, int):
        voters = sum(_independent(g) for g in groups)
    summary = []
    backing = next((g for g in groups if winner is not None and g.get("answer") == winner), None)
    if backing is None and winner is not None:  # keys cut in a summary: match them cut
        short = excerpt(str(winner), KEY_CHARS)
        backing = next((g for g in groups if excerpt(str(g.get("answer")), KEY_CHARS) == short), None)
    debated = decision.get("after_debate") or 0
    if backing is not None and voters > 1:  # a single voter agrees with itself: nothing to say
        agree = _independent(backing)
        who = "samples of one model" if decision.get("one_model") else "independent voters"
        if debated:
            who = "samples of one model" if decision.get("one_model") else "members"
        said = f"{agree} of {voters} {who} {'agrees' if agree == 1 else 'agree'}"
        if debated:
            said += f" after {debated} round{'s' if debated != 1 else ''} of debate (not independent)"
        summary.append(said)
    if not debated:  # after debate the agreement is the debate's outcome, not a consensus of voters
        summary.append("consensus" if decision.get("consensus") else "no consensus")
    if decision.get("early_stop"):
        summary.append("early stop")
    return f"vote ({decision.get('mode')}): {' | '.join(parts)}; {', '.join(summary)}"


def fan_out_line(decision: dict[str, Any], detail: Detail = "summary") -> str:
    """A `for_each` stage: how many items failed and each one's reason, e.g. `fan-out pipeline/research:
    2 of 5 items failed: item 3 'Waves' (researcher: no answer within 2.0s), item 5 'Tides' (HTTP 400)`;
    or `5 of 5 items answered`. A summary names at most `SUMMARY_GROUPS` failed items (`+2 more`)."""
    items = decision.get("items", 0)
    failed = [f for f in decision.get("failed") or [] if isinstance(f, dict)]
    head = f"fan-out {decision.get('stage')}: "
    if not failed:
        return f"{head}{decision.get('answered', 0)} of {items} items answered"
    shown = failed[:SUMMARY_GROUPS] if detail == "summary" else failed
    parts = [f"item {f.get('number')} {str(f.get('item'))!r} ({f.get('error')})" for f in shown]
    if len(failed) > len(shown):
        parts.append(f"+{len(failed) - len(shown)} more")
    return f"{head}{len(failed)} of {items} items failed: {', '.join(parts)}"


def debate_line(decision: dict[str, Any], detail: Detail = "summary") -> str:
    """A debate: the rounds run, why it stopped, who changed from what to what, and the moderator, e.g.
    `debate: 1 of 2 rounds (every member agrees after round 1); member-2 (b) changed no → yes`."""
    rounds = [r for r in decision.get("rounds") or [] if isinstance(r, dict)]
    run = max(len(rounds) - 1, 0)
    parts = [
        f"debate: {run} of {decision.get('max_rounds')} round{'s' if decision.get('max_rounds') != 1 else ''}"
    ]
    parts[0] += f" ({decision.get('stopped')})"
    first = {t.get("seat"): t for t in (rounds[0].get("turns") if rounds else None) or []}
    last = {t.get("seat"): t for t in (rounds[-1].get("turns") if rounds else None) or []}
    changed = [str(seat) for seat in decision.get("changed") or []]
    shown = changed[:SUMMARY_GROUPS] if detail == "summary" else changed
    for seat in shown:
        was, now = first.get(seat) or {}, last.get(seat) or {}
        before = excerpt(str(was.get("answer")), KEY_CHARS)
        after = excerpt(str(now.get("answer")), KEY_CHARS)
        parts.append(f"{seat} ({now.get('model') or '?'}) changed {before} → {after}")
    if len(changed) > len(shown):
        parts.append(f"+{len(changed) - len(shown)} more changed")
    if run and not changed:
        parts.append("no member changed its answer")
    stances = decision.get("stances") or {}
    if stances:
        parts.append("stances " + ", ".join(f"{seat} {stance}" for seat, stance in stances.items()))
    if decision.get("moderator"):
        parts.append(f"moderator {decision['moderator']}")
    return "; ".join(parts)


def ranking_line(decision: dict[str, Any]) -> str:
    """A peer ranking: each seat's Borda points best first (the model behind it), how many rankings were
    read, and who decided, e.g. `ranking (Borda): member-1 (a) 2 | member-2 (b) 1 | member-3 (c) 0;
    2 of 3 rankings counted, 1 unparsable; chair judge`."""
    models = {r.get("ranker"): r.get("model") for r in decision.get("rankings") or [] if isinstance(r, dict)}
    scores = decision.get("scores") or {}
    parts = [f"{seat} ({models.get(seat) or '?'}) {float(points):g}" for seat, points in scores.items()]
    rankings = len(decision.get("rankings") or [])
    tail = [f"{decision.get('counted', 0)} of {rankings} rankings counted"]
    if decision.get("unparsable"):
        tail[0] += f", {decision['unparsable']} unparsable"
    if decision.get("one_model"):
        tail.append("rankers are samples of one model")
    if decision.get("winner") is None:
        tail.append("undecided")
    if decision.get("chair"):
        tail.append(f"chair {decision['chair']}")
    return f"ranking (Borda): {' | '.join(parts) or 'no scores'}; {', '.join(tail)}"


def _group_text(group: dict[str, Any], weighted: bool) -> str:
    """`391 ← gpt-4o, claude ×2`, with what was not counted (`(1 independent voter)`) or the weight."""
    seen: dict[str, int] = {}
    for model in group.get("models") or []:
        seen[str(model)] = seen.get(str(model), 0) + 1
    models = ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in seen.items())
    notes = []
    if weighted and isinstance(group.get("weight"), int | float):
        notes.append(f"weight {group['weight']:g}")
    if group.get("echoes"):
        independent = _independent(group)
        notes.append(f"{independent} independent voter{'s' if independent != 1 else ''}")
    noted = f" ({', '.join(notes)})" if notes else ""
    return f"{excerpt(str(group.get('answer')), KEY_CHARS)} ← {models or '?'}{noted}"


def _independent(group: dict[str, Any]) -> int:
    """The group's counted voters: its seats minus those that echoed a counted one."""
    return max(len(group.get("models") or []) - len(group.get("echoes") or []), 0)


def _tie_break_text(tie_break: Any, winner: Any) -> str:
    """How a tie ended; when it was broken, the winner is the first of the tied answers."""
    if tie_break in (None, "unresolved") or winner is None:
        return "unresolved"
    return f"broken by {tie_break}"


def _totals_line(data: dict[str, Any]) -> str:
    totals = data.get("totals") or {}
    cost = totals.get("cost_usd")
    shown = "cost unknown" if cost is None else _dollars(cost)
    if cost is not None and not totals.get("cost_complete", True):
        shown += " (some prices unknown)"
    parts = []
    if totals.get("calls") or not totals.get("cached_calls"):  # answered wholly from the cache: no calls
        tokens = f"{totals.get('prompt_tokens', 0)}+{totals.get('completion_tokens', 0)} tokens"
        if totals.get("reasoning_tokens"):
            tokens += f" ({totals['reasoning_tokens']} reasoning)"
        parts += [f"{totals.get('calls', 0)} calls", tokens, shown]
    if totals.get("cached_calls"):
        saved = totals.get("saved_cost_usd")
        parts.append(f"{totals['cached_calls']} cached" + (f" (saved {_dollars(saved)})" if saved else ""))
    parts.append(f"{float(totals.get('latency_s', 0)):.2f}s")
    line = ", ".join(parts)
    if data.get("session_id"):
        line += f", session_id {data['session_id']}"
    return line


def _dollars(amount: Any) -> str:
    """`$0.0052`: to the millionth of a dollar, trailing zeros dropped."""
    shown = f"{float(amount):.6f}".rstrip("0").rstrip(".")
    return f"${shown}"
