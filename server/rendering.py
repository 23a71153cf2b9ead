"""A `StrategyResult` as an MCP tool result: a short readable text plus the full structured record."""

from __future__ import annotations

from mcp.types import CallToolResult, TextContent

from strategies.result import StrategyResult


def render(result: StrategyResult) -> CallToolResult:
    structured = result.model_dump(mode="json", exclude_none=True)
    return CallToolResult(
        content=[TextContent(type="text", text=summary(result))],
        structured_content=structured,
        is_error=not result.ok,
    )


def summary(result: StrategyResult) -> str:
    """What a person (or the calling model) reads first: the answer, then who said what and the cost."""
    lines: list[str] = []
    if result.ok:
        lines.append(result.answer or "")
        if result.partial:
            lines.append(f"[partial: {result.partial_reason}]")
    else:
        lines.append(f"No answer: {result.error}")
    lines.append("")
    for call in result.calls:
        said = call.answer if call.status == "ok" else call.error
        said = (said or "").replace("\n", " ")
        if len(said) > 80:
            said = said[:77] + "..."
        lines.append(f"- {call.stage} {call.model} [{call.status}] {said}")
    totals = result.totals
    cost = "unknown" if totals.cost_usd is None else f"${totals.cost_usd:.6f}"
    if totals.cost_usd is not None and not totals.cost_complete:
        cost += " (some prices unknown)"
    lines.append(f"{totals.calls} calls, {totals.prompt_tokens}+{totals.completion_tokens} tokens, {cost}, "
                 f"{totals.latency_s:.2f}s")
    if result.session_id:
        lines.append(f"session_id: {result.session_id}")
    return "\n".join(lines)
