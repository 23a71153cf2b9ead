"""`chorus-mcp ask "…"`: one tool call from the command line, through a real MCP client session.

It starts `chorus-mcp serve` over stdio (or connects to `--url`), calls the tool the way any MCP client
would, shows progress on stderr as models finish, and prints the result on stdout as a table: each
model's answer and vote, its status, tokens, cost and latency, then the totals and the session id to
continue with. `--json` prints the tool's structured result instead.

Which tool: `--tool`, else the one whose published schema accepts `--strategy` (read from `tools/list`,
no extra tool call), else `ensemble_vote`. When no model could answer, it says what to set up (keys, a
local server, the embedded model). Exit status: 0 answered, 1 no answer, 2 a usage or start-up problem.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, TextIO, cast

from chorus_mcp.server.cli.flags import number

ORCHESTRATION_TOOLS = {
    "ensemble": "ensemble_vote",
    "cascade": "cascade_ask",
    "route": "route_specialist",
    "pipeline": "run_pipeline",
}
"""A strategy's kind → the tool that runs it."""
TOOLS = [*ORCHESTRATION_TOOLS.values(), "list_models", "list_strategies"]
VOTE_CHARS = 20
"""A vote as shown: a free-text vote is the whole normalised answer, cut to this."""


def add_ask_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ask = commands.add_parser(
        "ask",
        help="ask through a real MCP session (starts `chorus-mcp serve`) and show a table of the answers",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    ask.add_argument("prompt", nargs="?", default="", help="the question (for run_pipeline: the task)")
    ask.add_argument("--strategy", help="a configured strategy (or pipeline); its kind picks the tool")
    ask.add_argument(
        "--tool", choices=TOOLS, help="the tool to call (default: from --strategy, else ensemble_vote)"
    )
    ask.add_argument("--models", help="comma-separated models: an ensemble's members or a cascade's tiers")
    ask.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other tool argument (a JSON value, else text); repeatable",
    )
    ask.add_argument("--session", help="continue this session")
    ask.add_argument(
        "--deadline",
        type=number("a number of seconds more than 0", above=0),
        help="seconds; a partial answer after that",
    )
    ask.add_argument(
        "--max-cost",
        type=number("an amount in USD of 0 or more", at_least=0),
        help="cost cap for this call, USD",
    )
    ask.add_argument(
        "--config", help="config file for the server (default: $CHORUS_CONFIG, else the bundled one)"
    )
    ask.add_argument("--url", help="use a running streamable-HTTP server instead of starting one")
    ask.add_argument(
        "--protocol", choices=["auto", "legacy"], default="auto", help="MCP protocol era to speak"
    )
    ask.add_argument("--json", action="store_true", help="print the structured result as JSON")
    ask.set_defaults(handler=run_ask)


def run_ask(args: argparse.Namespace) -> int:
    import anyio

    try:
        arguments = _extra_arguments(args.arg)
    except ValueError as exc:
        print(f"chorus-mcp ask: {exc}", file=sys.stderr)
        return 2
    if not args.prompt and args.tool not in ("list_models", "list_strategies"):
        print('chorus-mcp ask: give the question, e.g. chorus-mcp ask "Is 91 prime?"', file=sys.stderr)
        return 2
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog_file:
        errlog = cast(TextIO, errlog_file)
        try:
            code: int = anyio.run(_ask, args, arguments, errlog)
        except BrokenPipeError:
            raise  # stdout's reader went away: `main` ends quietly
        except Exception as exc:
            errlog.seek(0)
            said = errlog.read().strip()
            print(f"chorus-mcp ask: {connection_problem(args.url, exc)}", file=sys.stderr)
            if said:
                print(said[-4000:], file=sys.stderr)
            return 2
    return code


def connection_problem(url: str | None, exc: BaseException) -> str:
    """Why the session with the server failed, in the voice of every other Chorus error: with `--url`,
    the address, what happened there and what was expected."""
    from chorus_mcp.config.problems import problem

    leaf = _leaf(exc)
    kinds = {cls.__name__ for cls in type(leaf).__mro__}
    if url is None:
        return f"the server it started stopped talking ({type(leaf).__name__}: {leaf}); its log follows"
    expected = "expected the MCP endpoint of a running `chorus-mcp serve --http` (path /mcp by default)"
    if kinds & {"ConnectError", "ConnectTimeout", "TransportError", "OSError"}:
        reason = str(leaf).strip() or type(leaf).__name__
        if "All connection attempts failed" in reason:
            reason = "nothing is listening there"
        return problem("--url", f"{url} (cannot connect: {reason})", expected)
    if "MCPError" in kinds:
        return problem("--url", f"{url} (the server answered: {leaf})", expected)
    return problem("--url", f"{url} ({type(leaf).__name__}: {leaf})", expected)


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside task-group wrappers: the one that says what happened."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _extra_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--arg {pair!r}: expected NAME=VALUE")
        try:
            arguments[name] = json.loads(raw)
        except ValueError:
            arguments[name] = raw
    return arguments


async def _ask(args: argparse.Namespace, extra: dict[str, Any], errlog: TextIO) -> int:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    target: Any
    if args.url:
        target = args.url
    else:
        command = ["-m", "chorus_mcp.server.cli.main", "serve", "--log-level", "WARNING"]
        if args.config:
            command += ["--config", args.config]
        # The server's own stderr is kept aside, and shown only if the session fails.
        params = StdioServerParameters(command=sys.executable, args=command, env=dict(os.environ))
        target = stdio_client(params, errlog=errlog)
    progress = Progress(sys.stderr)
    async with Client(target, mode=args.protocol) as client:
        # One `tools/list` says both which tool runs the strategy (each publishes the names it accepts)
        # and whether it takes `detail`: no extra tool call before the one asked for.
        schemas = {tool.name: tool.input_schema or {} for tool in (await client.list_tools()).tools}
        tool = args.tool or tool_for(schemas, args.strategy)
        if tool is None:
            return 2
        arguments = {**_arguments(tool, args), **extra}
        if "detail" not in arguments and "detail" in schemas.get(tool, {}).get("properties", {}):
            arguments["detail"] = "full"  # every call's tokens and raw text, for the table
        progress.start(tool)
        try:
            result = await client.call_tool(tool, arguments, progress_callback=progress.update)
        finally:
            progress.stop()
    data = result.structured_content
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    if args.json:
        print(json.dumps(data if data is not None else {"text": text}, indent=2))
    elif tool in ORCHESTRATION_TOOLS.values() and data and "calls" in data:
        print(render_result(data, width=shutil.get_terminal_size((120, 20)).columns))
    elif result.is_error and data is None:  # the call was refused: name the flag that set what it names
        print(f"chorus-mcp ask: {in_flags(text, set(extra))}", file=sys.stderr)
    else:
        print(text if result.is_error or data is None else json.dumps(data, indent=2))
    if not result.is_error:
        return 0
    if data and "calls" in data and not any(c.get("status") == "ok" for c in data["calls"]):
        print(_setup_hint(args.config), file=sys.stderr)
        return 1
    return 1 if data else 2


FLAG_OF = {
    "prompt": "the question",
    "input": "the question",
    "strategy": "--strategy",
    "pipeline": "--strategy",
    "models": "--models",
    "tiers": "--models",
    "session_id": "--session",
    "deadline_s": "--deadline",
    "max_cost_usd": "--max-cost",
}
"""A tool argument → the flag (or the positional question) `ask` sets it from."""


def in_flags(message: str, given_by_arg: set[str]) -> str:
    """A refusal naming tool arguments (`deadline_s: -1; ...`) with the flags that set them in front
    (`--deadline (deadline_s): -1; ...`); an argument given with `--arg NAME=VALUE` is `--arg NAME`."""
    lines = []
    for line in message.splitlines():
        name = line.split(":", 1)[0].split("[", 1)[0]
        flag = f"--arg {name}" if name in given_by_arg else FLAG_OF.get(name)
        lines.append(f"{flag} ({name}){line[len(name) :]}" if flag and ":" in line else line)
    return "\n".join(lines)


STRATEGY_ARGUMENTS = {"run_pipeline": "pipeline"}
"""The argument that names a strategy, where it is not `strategy`."""


def tool_for(schemas: Mapping[str, Mapping[str, Any]], strategy: str | None) -> str | None:
    """The orchestration tool whose published schema accepts `strategy` (its argument's `enum`)."""
    if strategy is None:
        return "ensemble_vote"
    known: set[str] = set()
    for tool in ORCHESTRATION_TOOLS.values():
        argument = STRATEGY_ARGUMENTS.get(tool, "strategy")
        names = schemas.get(tool, {}).get("properties", {}).get(argument, {}).get("enum") or []
        if strategy in names:
            return tool
        known.update(str(name) for name in names)
    listing = ", ".join(sorted(known)) or "none"
    print(f"chorus-mcp ask: --strategy: {strategy!r}; expected one of {listing}", file=sys.stderr)
    return None


def _arguments(tool: str, args: argparse.Namespace) -> dict[str, Any]:
    if tool in ("list_models", "list_strategies"):
        return {}
    arguments: dict[str, Any] = {"input" if tool == "run_pipeline" else "prompt": args.prompt}
    if args.strategy:
        arguments["pipeline" if tool == "run_pipeline" else "strategy"] = args.strategy
    if args.models:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        arguments["tiers" if tool == "cascade_ask" else "models"] = models
    if args.session:
        arguments["session_id"] = args.session
    if args.deadline is not None:
        arguments["deadline_s"] = args.deadline
    if args.max_cost is not None:
        arguments["max_cost_usd"] = args.max_cost
    return arguments


def _setup_hint(config: str | None) -> str:
    from chorus_mcp.config.loader import load_config
    from chorus_mcp.strategies.models.availability import check_models, how_to_enable

    try:
        statuses = check_models(load_config(config).models)
    except Exception:  # the server already said what is wrong with the config
        return "No model could answer: see `chorus-mcp doctor`."
    usable = [a for a, s in statuses.items() if s.usable and s.source != "client"]
    if usable:
        return (
            f"No model answered, though {', '.join(usable)} can run here: see each reason above. "
            "A slow model may need a longer --deadline; `chorus-mcp doctor` asks each one."
        )
    lines = ["No model could answer. To get answers, set up at least one model:"]
    lines += [f"  - {line}" for line in how_to_enable(statuses)]
    lines.append("`chorus-mcp doctor` shows what is usable here.")
    return "\n".join(lines)


# ── progress on stderr ──────────────────────────────────────────────────────────────────────────────


class Progress:
    """Model calls as they finish: one line rewritten in place on a terminal, one line each otherwise."""

    def __init__(self, stream: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._tty = stream.isatty()
        self._started = 0.0
        self._last = ""

    def start(self, tool: str) -> None:
        self._started = self._clock()
        self._write(f"{tool}: asking…")

    async def update(self, progress: float, total: float | None, message: str | None) -> None:
        done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
        self._write(f"{done} {message or ''}".rstrip())

    def stop(self) -> None:
        if self._tty and self._last:
            self._stream.write("\r" + " " * len(self._last) + "\r")
            self._stream.flush()

    def _write(self, text: str) -> None:
        line = f"[{self._clock() - self._started:5.1f}s] {text}"
        if self._tty:
            pad = " " * max(0, len(self._last) - len(line))
            self._stream.write("\r" + line + pad)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        self._last = line


# ── the result as a table ───────────────────────────────────────────────────────────────────────────


def render_result(data: Mapping[str, Any], width: int = 120) -> str:
    """A strategy result (the tool's structured content) for people: answer, decisions, one row per call."""
    from chorus_mcp.server.mcp.rendering import headline

    lines = headline(dict(data), answered="Answer: ")
    decisions = [d for d in data.get("decisions", []) if isinstance(d, dict)]
    for decision in decisions:
        lines.append("  " + _cut(describe_decision(decision), width - 2))
    lines.append("")
    votes = {d["stage"]: set(d.get("counts", {})) for d in decisions if d.get("kind") == "vote"}
    rows = [["model", "stage", "status", "answer", "vote", "tokens", "cost", "latency"]]
    for call in data.get("calls", []):
        ok = call.get("status") == "ok"
        said = (call.get("text") or call.get("answer")) if ok else call.get("error")
        vote = ""
        for stage, counted in votes.items():
            if ok and str(call.get("stage", "")).startswith(stage + "/"):
                vote = str(call.get("answer", "")) if call.get("answer") in counted else "(not counted)"
        cost = _cost(call.get("cost_usd"), ok)
        if call.get("cached"):  # answered from the response cache: no provider call, nothing spent
            cost = f"saved {_cost(call['saved_cost_usd'], ok)}" if call.get("saved_cost_usd") else "$0"
        rows.append(
            [
                str(call.get("model", "")),
                str(call.get("stage", "")),
                f"{call.get('status', '')}{', cached' if call.get('cached') else ''}",
                " ".join(str(said or "").split()),
                vote,
                _tokens(call.get("prompt_tokens"), call.get("completion_tokens")),
                cost,
                _seconds(call.get("latency_s")),
            ]
        )
    totals = data.get("totals", {})
    cost = _cost(totals.get("cost_usd"), True)
    if totals.get("cost_usd") is not None and not totals.get("cost_complete", True):
        cost = "≥" + cost
    rows.append(
        [
            "total",
            calls_text(totals),
            "",
            "",
            "",
            _tokens(totals.get("prompt_tokens"), totals.get("completion_tokens")),
            cost,
            _seconds(totals.get("latency_s")),
        ]
    )
    lines += _table(rows, width, stretch=3, caps={0: 16, 1: 28, 4: VOTE_CHARS})
    if data.get("session_id"):
        lines.append("")
        lines.append(f"session {data['session_id']} (continue with --session {data['session_id']})")
    return "\n".join(lines)


def calls_text(totals: Mapping[str, Any]) -> str:
    """`3 calls`, `2 calls + 1 cached`, `3 cached` (every answer from the cache: no call was made)."""
    calls, cached = totals.get("calls") or 0, totals.get("cached_calls") or 0
    parts = [f"{calls} call{'s' if calls != 1 else ''}"] if calls or not cached else []
    return " + ".join([*parts, *([f"{cached} cached"] if cached else [])])


def describe_decision(decision: Mapping[str, Any]) -> str:
    kind = decision.get("kind")
    if kind == "vote" and decision.get("groups"):
        from chorus_mcp.server.mcp.rendering import vote_line

        return vote_line(dict(decision), "full")  # the tool result's own line: who said what
    if kind == "vote":  # a record without answer groups (an older stored session)
        counts = ", ".join(
            f"{_cut(answer, VOTE_CHARS)} {count:g}" for answer, count in decision.get("counts", {}).items()
        )
        agreement = f"{100 * float(decision.get('agreement', 0)):.0f}%"
        verdict = "consensus" if decision.get("consensus") else "no consensus"
        early = ", decided early" if decision.get("early_stop") else ""
        return f"{decision.get('mode')} vote: {counts} (agreement {agreement}, {verdict}{early})"
    if kind == "confidence":
        confidence = decision.get("confidence")
        shown = "unknown" if confidence is None else f"{float(confidence):.2f}"
        action = "escalate" if decision.get("escalate") else "accept"
        threshold = float(decision.get("threshold", 0))
        reason = decision.get("reason")
        return f"{decision.get('model')}: confidence {shown} vs {threshold:.2f} → {action} ({reason})"
    if kind == "route":
        return f"route: {decision.get('route')} by {decision.get('method')} ({decision.get('reason')})"
    if kind == "fallback":
        to = decision.get("to_model") or "nothing left"
        return f"fallback: {decision.get('from_model')} → {to} ({decision.get('reason')})"
    if kind == "review":
        verdict = "approved" if decision.get("approved") else f"{len(decision.get('issues', []))} issue(s)"
        return f"review #{decision.get('iteration')}: {verdict}"
    return f"{decision.get('stage')}: {decision.get('message', '')}"


def _tokens(prompt: Any, completion: Any) -> str:
    if prompt is None and completion is None:
        return "-"
    return f"{prompt or 0}+{completion or 0}"


def _cost(value: Any, ok: bool) -> str:
    if value is None:
        return "unknown" if ok else "-"
    amount = float(value)
    return "$0" if amount == 0 else f"${amount:.6f}"


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}s"


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(rows: list[list[str]], width: int, *, stretch: int, caps: Mapping[int, int]) -> list[str]:
    """Left-aligned columns two spaces apart; column `stretch` takes what `width` leaves (cut with an
    ellipsis), the columns in `caps` are cut at their cap."""
    widths = [min(max(len(row[i]) for row in rows), caps.get(i, 10**6)) for i in range(len(rows[0]))]
    others = sum(w for i, w in enumerate(widths) if i != stretch) + 2 * (len(widths) - 1)
    widths[stretch] = max(12, min(widths[stretch], width - others))
    out = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                cell = cell[: widths[i] - 1] + "…"
            cells.append(cell.ljust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return out
