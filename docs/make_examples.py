"""Regenerate docs/EXAMPLES.md: each orchestration tool called through a real MCP client session.

The models are scripted stand-ins (no keys, no network), so the answers are illustrative; everything
else — votes, confidences, routes, reviews, call records, totals, the text a client shows — is exactly
what the server returns.

    uv run python docs/make_examples.py > docs/EXAMPLES.md
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import TextContent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.models.testing import ScriptedClient

CONFIG = """
models:
  gpt-mini: {model: openai/gpt-4.1-mini}
  haiku: {model: anthropic/claude-haiku-4-5}
  flash: {model: gemini/gemini-2.5-flash}
  sonnet: {model: anthropic/claude-sonnet-4-5}
  gpt: {model: openai/gpt-4.1}
strategies:
  ensemble: {kind: ensemble, members: [gpt-mini, haiku, flash], quorum: 2}
  cascade: {kind: cascade, tiers: [gpt-mini, gpt], estimator: self_report, threshold: 0.8}
  route:
    kind: route
    default: general
    routes:
      - {name: code, keywords: [python, bug, function], target: sonnet}
      - {name: general, target: {kind: strategy, name: cascade}}
  pipeline:
    kind: pipeline
    stages:
      - {name: plan, prompt: "Plan, in numbered steps, how to do this: {input}", step: gpt}
      - {name: code, prompt: "Implement the plan.\\nTask: {input}\\nPlan:\\n{plan}", step: sonnet}
      - {name: review, prompt: "Review this code for the task {input}:\\n{code}", step: gpt, review: true}
    refine: {stage: code, prompt: "Fix these issues:\\n{issues}\\n\\nCode:\\n{code}", max_iterations: 2}
"""

CODE_V1 = "def is_leap(year):\n    return year % 4 == 0"
CODE_V2 = "def is_leap(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)"


def _gpt(request: Any) -> str:
    text = request.messages[-1].content
    if "Review this code" in text:
        if "year % 400" in text:
            return '{"approved": true, "issues": []}'
        return '{"approved": false, "issues": ["century years such as 1900 are not leap years"]}'
    if "Plan" in text:
        return "1. Divisible by 4 is a leap year\n2. except centuries\n3. unless divisible by 400"
    return "Canberra\nConfidence: 97%"


def _mini(request: Any) -> str:
    if "A) Sydney" in request.messages[-1].content:
        return "The answer is (B) Canberra."
    return "Sydney, I think.\nConfidence: 55%"


def _clients() -> dict[str, ScriptedClient]:
    cheap = Decimal("0.00004")
    return {
        "gpt-mini": ScriptedClient("gpt-mini", _mini, delay_s=0.05, cost_usd=cheap),
        "haiku": ScriptedClient("haiku", "B", delay_s=0.08, cost_usd=cheap),
        "flash": ScriptedClient("flash", "**B**", delay_s=0.3, cost_usd=cheap),
        "sonnet": ScriptedClient("sonnet", [CODE_V1, CODE_V2], delay_s=0.05, cost_usd=Decimal("0.0009")),
        "gpt": ScriptedClient("gpt", _gpt, delay_s=0.05, cost_usd=Decimal("0.0007")),
    }


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("ensemble_vote", {"prompt": "What is the capital of Australia? A) Sydney B) Canberra C) Melbourne"}),
    ("cascade_ask", {"prompt": "What is the capital of Australia?"}),
    ("route_specialist", {"prompt": "Write a python function that tells whether a year is a leap year"}),
    ("run_pipeline", {"input": "a function that tells whether a year is a leap year"}),
]


async def main() -> None:
    print("# Worked examples\n")
    print("Each tool called through a real MCP client session. The models are scripted stand-ins (no keys,")
    print("no network), so the answers are illustrative; everything else is what the server returns.")
    print("Regenerate with `uv run python docs/make_examples.py > docs/EXAMPLES.md`.\n")
    for tool, arguments in CALLS:
        clients = _clients()  # fresh scripts for each tool, as if it were the first call
        server = build_server(parse_config(CONFIG, env={}), lambda alias, _entry, c=clients: c[alias])
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
            block = result.content[0]
            text = block.text if isinstance(block, TextContent) else ""
            print(f"## `{tool}`\n\nArguments: `{json.dumps(arguments)}`\n")
            print("What the client shows (text content):\n\n```text\n" + text + "\n```\n")
            print("Structured content (the tool's `outputSchema`):\n")
            print("```json\n" + json.dumps(result.structured_content, indent=2) + "\n```\n")
    await research_example()


RESEARCH_CONFIG = """
models:
  gpt-mini: {model: openai/gpt-4.1-mini}
  gpt: {model: openai/gpt-4.1}
strategies:
  research:
    kind: pipeline
    stages:
      - name: outline
        prompt: "List the sections a short report on this needs, as a JSON array of titles: {input}"
        step: gpt-mini
      - name: sections
        for_each: {stage: outline, max_items: 5, concurrency: 3}
        prompt: "Request: {input}\\nSection: {item}\\nWrite this section's key facts in at most 40 words."
        step: gpt-mini
      - name: report
        prompt: "Write the report on {input} from these notes:\\n{sections}"
        step: gpt
"""


def _research_mini(request: Any) -> Any:
    from chorus_mcp.strategies.core.errors import BadRequest

    text = request.messages[-1].content
    if text.startswith("List the sections"):
        return '["What raises the tide", "Spring and neap tides", "Tides and the coast"]'
    section = text.split("Section: ", 1)[1].split("\n", 1)[0]
    if section == "Tides and the coast":
        return BadRequest("gpt-mini", "request rejected (HTTP 400): the prompt was flagged")
    if section == "What raises the tide":
        return "The Moon's gravity pulls the near-side ocean into a bulge; inertia makes a second, far side."
    return "When Sun and Moon line up (new and full Moon) tides are largest; at quarter Moons, smallest."


def _research_gpt(request: Any) -> str:
    return (
        "Tides are the ocean's response to the Moon's and the Sun's pull: two bulges, two high tides a day, "
        "largest when the two line up (spring tides) and smallest at quarter Moons (neap tides). "
        "(No notes on the coast's effect were available.)"
    )


async def research_example() -> None:
    """The fan-out pipeline: one section's research fails (the provider rejects it), the rest go on."""
    clients = {
        "gpt-mini": ScriptedClient("gpt-mini", _research_mini, delay_s=0.05, cost_usd=Decimal("0.00004")),
        "gpt": ScriptedClient("gpt", _research_gpt, delay_s=0.05, cost_usd=Decimal("0.0007")),
    }
    server = build_server(parse_config(RESEARCH_CONFIG, env={}), lambda alias, _entry: clients[alias])
    arguments = {"input": "how tides work", "pipeline": "research", "detail": "full"}
    async with Client(server) as client:
        result = await client.call_tool("run_pipeline", arguments)
    block = result.content[0]
    text = block.text if isinstance(block, TextContent) else ""
    print("## `run_pipeline` with a fan-out (`research`)\n")
    print("A stage with `for_each` runs its step once per item of an earlier stage's list, at most")
    print("`concurrency` at once, under the call's deadline and budget. Here the provider rejects the")
    print("request for one section: that item is named in the decision trail and its call record, and")
    print("the report is written from the others.\n")
    print("```yaml" + RESEARCH_CONFIG + "```\n")
    print(f"Arguments: `{json.dumps(arguments)}`\n")
    print("What the client shows (text content):\n\n```text\n" + text + "\n```\n")
    print("Structured content (the tool's `outputSchema`):\n")
    print("```json\n" + json.dumps(result.structured_content, indent=2) + "\n```\n")


async def model_facts_and_reasoning_effort() -> None:
    """`list_models` with each model's facts from litellm's model map, then one call with a reasoning effort:
    sent to the members that reason, said in the record of the one that does not."""
    # Every member answers (no early stop), so each record shows what it was sent.
    considered = "  considered: {kind: ensemble, members: [gpt-mini, haiku, flash], early_stop: false}\n"
    config = parse_config(CONFIG + considered, env={})
    clients = _clients()
    server = build_server(config, lambda alias, _entry: clients[alias])
    async with Client(server) as client:
        listed = await client.call_tool("list_models", {})
        arguments = {
            "prompt": "What is the capital of Australia? A) Sydney B) Canberra C) Melbourne",
            "strategy": "considered",
            "reasoning_effort": "high",
        }
        voted = await client.call_tool("ensemble_vote", arguments)
    print("## Model facts and reasoning effort\n")
    print("`list_models` says what each model can do and costs, from litellm's bundled model map (its")
    print("version is `model_map`); `facts_from` names the source of the figures (`config: ...` for what the")
    print("configuration sets, `unknown to the map` for a model it does not list).\n")
    print("```json\n" + json.dumps(listed.structured_content, indent=2) + "\n```\n")
    print(f"Then `ensemble_vote` with `{json.dumps(arguments)}`: `gpt-4.1-mini` takes no reasoning effort")
    print("by the map, so it is asked without one and its record says so; the others get `high`")
    print("(litellm turns it into a 4,096-token thinking budget for Claude and Gemini).\n")
    assert voted.structured_content is not None
    calls = [
        {k: v for k, v in call.items() if k in ("model", "status", "reasoning_effort", "reasoning_note")}
        for call in voted.structured_content["calls"]
    ]
    print("```json\n" + json.dumps(calls, indent=2) + "\n```\n")


DOT_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


async def files_and_images() -> None:
    """`ensemble_vote` with an image and a text file given inline: the members that read images get both,
    the one that does not is skipped with its reason, and the result names what was attached."""
    # One more model, which litellm's map says reads no images, and an ensemble of it with two that do.
    added = (
        "  text-only: {model: deepseek/deepseek-chat}\nstrategies:\n"
        "  looking: {kind: ensemble, members: [gpt-mini, haiku, text-only], early_stop: false}\n"
    )
    config = parse_config(CONFIG.replace("strategies:\n", added, 1), env={})
    clients = {**_clients(), "text-only": ScriptedClient("text-only", "B")}
    clients["gpt-mini"] = ScriptedClient("gpt-mini", "A red dot on white.")
    clients["haiku"] = ScriptedClient("haiku", "A red dot on white.")
    server = build_server(config, lambda alias, _entry: clients[alias])
    arguments: dict[str, Any] = {
        "prompt": "Does the picture match the spec?",
        "strategy": "looking",
        "detail": "full",
        "files": [
            {"type": "image", "data": DOT_PNG, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "mem://spec.md", "text": "A single red dot."}},
        ],
    }
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", arguments)
    assert result.structured_content is not None
    shown = {**arguments, "files": [{**arguments["files"][0], "data": "<base64 PNG>"}, arguments["files"][1]]}
    print("## Files and images\n")
    print(f"`ensemble_vote` with `{json.dumps(shown)}`. The image goes to the members litellm's model map")
    print(
        "says read images (`gpt-4.1-mini`, `claude-haiku-4-5`); `deepseek-chat` does not, so it is not called"
    )
    print("and its record says why, while the vote goes on with the two that can see. The text resource is")
    print("sent to every member that is called, as a `<file>` block after the prompt. A path (`/abs/file.py`")
    print("or `file://...`) is read the same way when it lies inside `inputs.roots` (or, over stdio, the")
    print("client's MCP roots).\n")
    calls = [
        {k: v for k, v in c.items() if k in ("model", "status", "answer", "error")}
        for c in result.structured_content["calls"]
    ]
    notes = [d for d in result.structured_content["decisions"] if d.get("stage") == "inputs"]
    print("```json\n" + json.dumps({"calls": calls, "decisions": notes}, indent=2) + "\n```\n")


RANKED = {
    "gpt-mini": "Canberra: it was chosen as a compromise between Sydney and Melbourne.",
    "haiku": "Sydney is the capital.",
    "flash": "The capital is Canberra.",
}
"""What each member answers in the peer-ranking example; each then ranks the others' answers."""


def _ranker(name: str) -> Any:
    """A member that answers, and when shown anonymous responses ranks the fullest correct one first."""

    def reply(request: Any) -> str:
        system = next((m.content for m in request.messages if m.role == "system"), "")
        shown = dict(re.findall(r"Response ([A-Z]):\n(.*)", system))
        if not shown:
            return RANKED[name]
        best = sorted(shown, key=lambda label: ("Sydney is" in shown[label], -len(shown[label])))
        lines = "\n".join(f"{n}. Response {label}" for n, label in enumerate(best, 1))
        return f"The Sydney answer is wrong.\nFINAL RANKING:\n{lines}"

    return reply


async def ranking_example() -> None:
    """`ensemble_vote` with `aggregation: ranking`: members rank each other's answers without names."""
    clients = {name: ScriptedClient(name, _ranker(name), cost_usd=Decimal("0.00004")) for name in RANKED}
    server = build_server(parse_config(CONFIG, env={}), lambda alias, _entry: clients[alias])
    arguments = {"prompt": "What is the capital of Australia?", "aggregation": "ranking"}
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", arguments)
    block = result.content[0]
    text = block.text if isinstance(block, TextContent) else ""
    print("## `ensemble_vote` with peer ranking\n")
    print("Each member ranks the others' answers, shown as `Response A`, `Response B` in an order shuffled")
    print("per ranker; the Borda count of the rankings that could be read picks the answer.\n")
    print(f"Arguments: `{json.dumps(arguments)}`\n")
    print("What the client shows (text content):\n\n```text\n" + text + "\n```\n")
    ranking = next(
        d for d in (result.structured_content or {}).get("decisions", []) if d["kind"] == "ranking"
    )
    print("The ranking decision (structured content):\n")
    print("```json\n" + json.dumps(ranking, indent=2) + "\n```\n")


DEBATED = {
    "gpt-mini": ("91 is not prime: 91 = 7 x 13.", None),
    "haiku": ("Yes, 91 is prime.", "No. Checking 7: 7 x 13 = 91, so 91 is not prime."),
    "flash": ("No, 91 = 7 x 13.", None),
}
"""Each debater's first answer, and its answer once shown the others' (None: it keeps its own)."""


def _debater(name: str) -> Any:
    first, then = DEBATED[name]

    def reply(request: Any) -> str:
        system = next((m.content for m in request.messages if m.role == "system"), "")
        return (then or first) if "Your previous answer:" in system else first

    return reply


async def debate_example() -> None:
    """`ensemble_vote` with `aggregation: debate`: members see each other's answers and may revise."""
    clients = {name: ScriptedClient(name, _debater(name), cost_usd=Decimal("0.00004")) for name in DEBATED}
    server = build_server(parse_config(CONFIG, env={}), lambda alias, _entry: clients[alias])
    arguments = {"prompt": "Is 91 a prime number? Answer yes or no.", "aggregation": "debate"}
    async with Client(server) as client:
        result = await client.call_tool("ensemble_vote", arguments)
    block = result.content[0]
    text = block.text if isinstance(block, TextContent) else ""
    print("## `ensemble_vote` with a bounded debate\n")
    print("After answering, each member is shown the others' answers (`Response A`, `Response B`, no names)")
    print("and its own, and gives its final answer; the rounds stop once everyone agrees or nobody changes.")
    print("The vote says the agreement came after debate: the members are no longer independent voters.\n")
    print(f"Arguments: `{json.dumps(arguments)}`\n")
    print("What the client shows (text content):\n\n```text\n" + text + "\n```\n")
    debate = next(d for d in (result.structured_content or {}).get("decisions", []) if d["kind"] == "debate")
    print("The debate decision (structured content):\n")
    print("```json\n" + json.dumps(debate, indent=2) + "\n```\n")


OBJECTIVE_CONFIG = """
models:
  gpt-mini: {model: openai/gpt-4.1-mini}
  haiku: {model: anthropic/claude-haiku-4-5}
  flash: {model: gemini/gemini-2.5-flash}
  gpt: {model: openai/gpt-4.1}
strategies:
  route:
    kind: route
    default: general
    routes:
      - {name: general, target: gpt-mini}
    candidates: [gpt-mini, haiku, flash, gpt]
    min_samples: 1
cache: {store: memory}
"""

OBJECTIVE_MODELS = {
    "gpt-mini": (0.09, "0.0004"),
    "haiku": (0.05, "0.0008"),
    "flash": (0.14, "0.0002"),
    "gpt": (0.03, "0.0040"),
}
"""Each stand-in's answer time (what its calls measure) and price per call (what it estimates)."""


def _objective_client(name: str) -> ScriptedClient:
    from dataclasses import dataclass

    from chorus_mcp.strategies.core.completion import CompletionRequest

    @dataclass
    class Priced(ScriptedClient):
        """A stand-in that tells the cost cap and the cost objective its price before each call."""

        def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
            return self.cost_usd

    delay_s, price = OBJECTIVE_MODELS[name]
    return Priced(name, f"{name}: Canberra", delay_s=delay_s, cost_usd=Decimal(price))


async def objective_example() -> None:
    """`route_specialist` by objective: each candidate measured once, then the fastest within the cost
    cap (the fastest of all is over it), then the cheapest; the route decision lists every figure."""
    clients = {name: _objective_client(name) for name in OBJECTIVE_MODELS}
    server = build_server(parse_config(OBJECTIVE_CONFIG, env={}), lambda alias, _entry: clients[alias])
    question = "What is the capital of Australia?"
    latency = {"objective": "latency", "max_cost_usd": 0.002}
    async with Client(server) as client:
        for n in range(len(OBJECTIVE_MODELS)):  # min_samples 1: each candidate is explored once first
            arguments = {"prompt": f"{question} ({n})", "objective": "latency"}
            await client.call_tool("route_specialist", arguments)
        fastest = await client.call_tool("route_specialist", {"prompt": question, **latency})
        cheapest = await client.call_tool(
            "route_specialist", {"prompt": question + " Briefly.", "objective": "cost"}
        )
    print("## `route_specialist` by objective (latency, cost)\n")
    print("With `objective` the route is not read from the prompt: one of the `candidates` is chosen by its")
    print("measured latency (a percentile of its last 50 answers), its estimated cost for this request, or")
    print("its quality score, skipping any whose estimate exceeds what is left of the cost cap. Latency")
    print("routing first explores each candidate `min_samples` times (here 1: four calls, one per model).")
    print("Then, under `max_cost_usd` 0.002, the fastest (gpt, estimated at $0.004) is skipped and haiku")
    print("wins; by cost, flash. The agent reads every candidate's figure in the route decision (the")
    print("reason is cut in a summary; `candidates` is not).\n")
    print("```yaml" + OBJECTIVE_CONFIG + "```\n")
    for title, arguments, result in (
        ("By latency, under a cost cap", {"prompt": question, **latency}, fastest),
        ("By cost", {"prompt": question + " Briefly.", "objective": "cost"}, cheapest),
    ):
        block = result.content[0]
        text = block.text if isinstance(block, TextContent) else ""
        route = next(d for d in (result.structured_content or {})["decisions"] if d["kind"] == "route")
        print(f"### {title}\n\nArguments: `{json.dumps(arguments)}`\n")
        print("What the client shows (text content):\n\n```text\n" + text + "\n```\n")
        print("The route decision (structured content):\n")
        print("```json\n" + json.dumps(route, indent=2) + "\n```\n")


if __name__ == "__main__":
    anyio.run(main)
    anyio.run(model_facts_and_reasoning_effort)
    anyio.run(files_and_images)
    anyio.run(ranking_example)
    anyio.run(debate_example)
    anyio.run(objective_example)
