"""Span attributes: OpenInference names for what Phoenix understands, `chorus.*` for the rest.

Every string that could hold text from a user, a model or a provider passes through
`strategies.core.errors.redact`, so no API key or bearer token reaches a span. Prompt and answer text is
only attached while `capture_content()` is true (config `tracing.capture_content`).
"""

from __future__ import annotations

import json
from decimal import Decimal

from openinference.semconv.trace import (
    MessageAttributes,
    OpenInferenceMimeTypeValues,
    OpenInferenceSpanKindValues,
    SpanAttributes,
)
from opentelemetry.util.types import AttributeValue

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import redact
from chorus_mcp.strategies.core.result import (
    ConfidenceDecision,
    Decision,
    FallbackDecision,
    FanOutDecision,
    NoteDecision,
    ReviewDecision,
    RouteDecision,
    StrategyResult,
    Totals,
    VoteDecision,
)

Attributes = dict[str, AttributeValue]

KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
LLM = OpenInferenceSpanKindValues.LLM.value
CHAIN = OpenInferenceSpanKindValues.CHAIN.value
AGENT = OpenInferenceSpanKindValues.AGENT.value
TOOL = OpenInferenceSpanKindValues.TOOL.value

_MILLION = Decimal(1_000_000)
MAX_TEXT = 32_000
"""Longest text put on one attribute; longer text is cut (collectors reject huge spans)."""

# litellm's provider prefixes → OpenInference `llm.provider` values (what Phoenix prices by).
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "bedrock": "aws",
    "sagemaker": "aws",
    "mistral": "mistralai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "xai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "fireworks_ai": "fireworks",
    "together_ai": "together",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "moonshot": "moonshot",
    "meta_llama": "meta",
}

_capture_content = True


def capture_content() -> bool:
    """Whether prompt and answer text goes on spans."""
    return _capture_content


def set_capture_content(value: bool) -> None:
    """Set once at start-up from `tracing.capture_content` (process-wide, like the tracer provider)."""
    global _capture_content
    _capture_content = value


def text(value: str) -> str:
    """`value` made safe for a span: secrets removed, bounded in length."""
    value = redact(value)
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def provider_of(model_id: str) -> str | None:
    """The OpenInference provider of a litellm model id (`anthropic/claude-…` → `anthropic`)."""
    if "/" not in model_id:
        return None
    prefix = model_id.split("/", 1)[0].lower()
    return _PROVIDERS.get(prefix, prefix)


def bare_model(model_id: str) -> str:
    """The provider's own name for a model, without litellm's provider prefix."""
    return model_id.split("/", 1)[1] if "/" in model_id else model_id


def output_capped(request: CompletionRequest, limit: int | None) -> CompletionRequest:
    """`request` as a client capped at `limit` output tokens sends it (the cap's rule, `server.http.limits`:
    `max_tokens` at most `limit`, and `limit` when unset)."""
    if limit is None or (request.max_tokens is not None and request.max_tokens <= limit):
        return request
    return request.model_copy(update={"max_tokens": limit})


def invocation_parameters(request: CompletionRequest) -> str:
    """The settings the call was made with, as JSON: temperature, max_tokens, seed, time-out, logprobs and
    structured output as the request sends them. (Chorus has no reasoning-effort setting to show; an
    OpenAI reasoning model's client sends `max_tokens` as `max_completion_tokens` and leaves out a
    temperature other than 1, which the span does not follow.)"""
    params: dict[str, object] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "seed": request.seed,
        "timeout_s": None if request.timeout_s is None else round(request.timeout_s, 3),
    }
    if request.logprobs:
        params["logprobs"] = True
    if request.response_schema is not None:
        params["response_format"] = "json_schema"
    return json.dumps({k: v for k, v in params.items() if v is not None}, sort_keys=True)


def llm_request(alias: str, model_id: str, request: CompletionRequest) -> Attributes:
    """An LLM span's attributes known before the call."""
    attributes: Attributes = {
        KIND: LLM,
        SpanAttributes.LLM_MODEL_NAME: bare_model(model_id),
        SpanAttributes.LLM_REQUEST_MODEL_NAME: bare_model(model_id),
        SpanAttributes.LLM_INVOCATION_PARAMETERS: invocation_parameters(request),
        "chorus.model": alias,
        "chorus.model_id": model_id,
    }
    provider = provider_of(model_id)
    if provider is not None:
        attributes[SpanAttributes.LLM_PROVIDER] = provider
    if capture_content():
        prefix = SpanAttributes.LLM_INPUT_MESSAGES
        for index, message in enumerate(request.messages):
            attributes[f"{prefix}.{index}.{MessageAttributes.MESSAGE_ROLE}"] = message.role
            attributes[f"{prefix}.{index}.{MessageAttributes.MESSAGE_CONTENT}"] = text(message.content)
        user = [m.content for m in request.messages if m.role == "user"]
        if user:
            attributes.update(io_value(SpanAttributes.INPUT_VALUE, user[-1]))
    return attributes


def llm_response(completion: Completion, rates_per_mtok: tuple[Decimal, Decimal] | None = None) -> Attributes:
    """An LLM span's attributes from the answer: tokens, cost, latency, text.

    `llm.model_name` stays the configured model (set before the call): it is what Chorus prices the call
    by, and what Phoenix prices the span by; the name the provider answered under is
    `llm.response.model_name`. `rates_per_mtok` (the model's prompt and completion prices) splits the cost
    into `llm.cost.prompt` and `llm.cost.completion` when they add up to the call's cost exactly."""
    attributes: Attributes = {
        SpanAttributes.LLM_RESPONSE_MODEL_NAME: bare_model(completion.model),
        "chorus.latency_s": round(completion.latency_s, 4),
        "chorus.call.status": "cached" if completion.cached else "ok",
        "chorus.cached": completion.cached,
        "chorus.cost_known": completion.cost_usd is not None,
    }
    if completion.cached:
        # Nothing was sent: token counts would make Phoenix price the span; the cache's own attributes
        # (`chorus.cache*`, set by the caching client) say what the hit saved.
        attributes[SpanAttributes.LLM_COST_TOTAL] = 0.0
        attributes["chorus.cost_usd"] = 0.0
    else:
        attributes.update(_tokens_and_cost(completion, rates_per_mtok))
    if completion.finish_reason is not None:
        attributes[SpanAttributes.LLM_FINISH_REASON] = completion.finish_reason
    if capture_content():
        prefix = f"{SpanAttributes.LLM_OUTPUT_MESSAGES}.0"
        attributes[f"{prefix}.{MessageAttributes.MESSAGE_ROLE}"] = "assistant"
        attributes[f"{prefix}.{MessageAttributes.MESSAGE_CONTENT}"] = text(completion.text)
        attributes.update(io_value(SpanAttributes.OUTPUT_VALUE, completion.text))
    return attributes


def _tokens_and_cost(completion: Completion, rates_per_mtok: tuple[Decimal, Decimal] | None) -> Attributes:
    attributes: Attributes = {}
    prompt, answer = completion.prompt_tokens, completion.completion_tokens
    if prompt is not None:
        attributes[SpanAttributes.LLM_TOKEN_COUNT_PROMPT] = prompt
    if answer is not None:
        attributes[SpanAttributes.LLM_TOKEN_COUNT_COMPLETION] = answer
    if completion.total_tokens is not None:
        attributes[SpanAttributes.LLM_TOKEN_COUNT_TOTAL] = completion.total_tokens
    cost = completion.cost_usd
    if cost is None:
        return attributes  # unknown stays absent (with chorus.cost_known=false): never a made-up 0
    attributes["chorus.cost_usd"] = float(cost)
    attributes[SpanAttributes.LLM_COST_TOTAL] = float(cost)
    if rates_per_mtok is not None and prompt is not None and answer is not None:
        prompt_cost = prompt * rates_per_mtok[0] / _MILLION
        answer_cost = answer * rates_per_mtok[1] / _MILLION
        if prompt_cost + answer_cost == cost:  # not when a long-context tier priced the call
            attributes[SpanAttributes.LLM_COST_PROMPT] = float(prompt_cost)
            attributes[SpanAttributes.LLM_COST_COMPLETION] = float(answer_cost)
    return attributes


def io_value(key: str, value: str) -> Attributes:
    """`input.value` / `output.value` with its MIME type (plain text)."""
    mime = (
        SpanAttributes.INPUT_MIME_TYPE
        if key == SpanAttributes.INPUT_VALUE
        else SpanAttributes.OUTPUT_MIME_TYPE
    )
    return {key: text(value), mime: OpenInferenceMimeTypeValues.TEXT.value}


def step_result(result: StrategyResult) -> Attributes:
    """What a strategy step (or the whole run) came to."""
    attributes: Attributes = {"chorus.ok": result.ok, "chorus.partial": result.partial}
    if result.partial_reason:
        attributes["chorus.partial_reason"] = text(result.partial_reason)
    if result.error:
        attributes["chorus.error"] = text(_content_free_error(result.error))
    if result.answer is not None and capture_content():
        attributes.update(io_value(SpanAttributes.OUTPUT_VALUE, result.answer))
    return attributes


def totals(value: Totals) -> Attributes:
    attributes: Attributes = {
        "chorus.totals.calls": value.calls,
        "chorus.totals.prompt_tokens": value.prompt_tokens,
        "chorus.totals.completion_tokens": value.completion_tokens,
        "chorus.totals.cost_complete": value.cost_complete,
        "chorus.totals.latency_s": round(value.latency_s, 4),
    }
    if value.cost_usd is not None:
        attributes["chorus.totals.cost_usd"] = float(value.cost_usd)
    return attributes


def decision_name(decision: Decision) -> str:
    """`route decision`, `vote decision`, `confidence decision`, `review decision`, `fallback decision`."""
    return f"{decision.kind} decision"


def decision(decision: Decision) -> Attributes:
    """A decision span's attributes (route, vote, confidence, review, fallback, fan-out)."""
    attributes: Attributes = {KIND: CHAIN, "chorus.decision": decision.kind, "chorus.stage": decision.stage}
    match decision:
        case RouteDecision():
            attributes |= {
                "chorus.route": decision.route,
                "chorus.route.method": decision.method,
                "chorus.reason": text(decision.reason),
            }
            attributes.update(io_value(SpanAttributes.OUTPUT_VALUE, decision.route))
        case VoteDecision():
            attributes |= {
                "chorus.vote.mode": decision.mode,
                "chorus.vote.agreement": round(decision.agreement, 4),
                "chorus.vote.consensus": decision.consensus,
                "chorus.vote.early_stop": decision.early_stop,
                "chorus.vote.answers": len(decision.counts),
            }
            if capture_content():
                counts = json.dumps(decision.counts, sort_keys=True, ensure_ascii=False)
                attributes["chorus.vote.counts"] = text(counts)
                if decision.winner is not None:
                    attributes["chorus.vote.winner"] = text(decision.winner)
                    attributes.update(io_value(SpanAttributes.OUTPUT_VALUE, decision.winner))
        case ConfidenceDecision():
            attributes |= {
                "chorus.confidence.model": decision.model,
                "chorus.confidence.estimator": decision.estimator,
                "chorus.confidence.threshold": decision.threshold,
                "chorus.escalate": decision.escalate,
                "chorus.reason": text(decision.reason),
            }
            if decision.confidence is not None:
                attributes["chorus.confidence"] = round(decision.confidence, 4)
            attributes.update(
                io_value(SpanAttributes.OUTPUT_VALUE, "escalate" if decision.escalate else "accept")
            )
        case ReviewDecision():
            attributes |= {
                "chorus.review.iteration": decision.iteration,
                "chorus.review.approved": decision.approved,
                "chorus.review.issue_count": len(decision.issues),
            }
            if capture_content() and decision.issues:
                attributes["chorus.review.issues"] = [text(issue) for issue in decision.issues]
            attributes.update(
                io_value(SpanAttributes.OUTPUT_VALUE, "approved" if decision.approved else "not approved")
            )
        case FallbackDecision():
            attributes |= {
                "chorus.fallback.from": decision.from_model,
                "chorus.reason": text(decision.reason),
            }
            if decision.to_model is not None:
                attributes["chorus.fallback.to"] = decision.to_model
        case FanOutDecision():
            attributes |= {
                "chorus.for_each.items": decision.items,
                "chorus.for_each.answered": decision.answered,
                "chorus.for_each.failed": [failure.number for failure in decision.failed],
            }
            if decision.failed:
                reasons = "; ".join(f"[{f.number}] {f.error}" for f in decision.failed)
                attributes["chorus.reason"] = text(reasons)
        case NoteDecision():
            attributes["chorus.note"] = text(decision.message)
    return attributes


def tool_call_request(tool: str, arguments: dict[str, object]) -> Attributes:
    """The tool-call span (the trace's root) before the run: the tool, and the prompt as its input.

    A tool without a `prompt` argument shows its arguments as JSON instead."""
    attributes: Attributes = {KIND: TOOL, SpanAttributes.TOOL_NAME: tool, "chorus.tool": tool}
    if not capture_content():
        return attributes
    prompt = arguments.get("prompt")
    if isinstance(prompt, str):
        attributes.update(io_value(SpanAttributes.INPUT_VALUE, prompt))
    elif arguments:
        shown = json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)
        attributes[SpanAttributes.INPUT_VALUE] = text(shown)
        attributes[SpanAttributes.INPUT_MIME_TYPE] = OpenInferenceMimeTypeValues.JSON.value
    return attributes


def tool_call_result(structured: object, message: str | None, is_error: bool) -> Attributes:
    """The tool-call span after the run: the answer (or the error) as its output, the run's totals.

    `structured` is the tool's structured result (a `StrategyResult` as JSON for the strategy tools),
    `message` its text content. The totals are Chorus's own figures: Phoenix's cost column sums the LLM
    spans below, priced by the model prices Chorus gave it (see `server.ops.phoenix_prices`)."""
    data = structured if isinstance(structured, dict) else {}
    attributes: Attributes = {"chorus.ok": not is_error}
    error = data.get("error") if is_error else None
    if is_error:
        shown = error if isinstance(error, str) else message or "error"
        attributes["chorus.error"] = text(_content_free_error(shown))
    for flag in ("partial", "strategy", "session_id"):
        if isinstance(data.get(flag), str | bool):
            attributes[f"chorus.{flag}"] = data[flag]
    totals = data.get("totals")
    if isinstance(totals, dict):
        attributes.update(_totals_from_json(totals))
    if capture_content():
        answer = data.get("answer")
        output = answer if isinstance(answer, str) else error if isinstance(error, str) else message
        if output:
            attributes.update(io_value(SpanAttributes.OUTPUT_VALUE, output))
    return attributes


def _content_free_error(error: str) -> str:
    if not capture_content() and error.startswith("not approved after"):
        # The open issues after the colon are the reviewer's words: content, kept out of spans.
        return error.split(": ", 1)[0]
    return error


def _totals_from_json(totals: dict[str, object]) -> Attributes:
    attributes: Attributes = {}
    for key in ("calls", "prompt_tokens", "completion_tokens", "cached_calls"):
        value = totals.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            attributes[f"chorus.totals.{key}"] = value
    if isinstance(totals.get("cost_complete"), bool):
        attributes["chorus.totals.cost_complete"] = bool(totals["cost_complete"])
    for key in ("cost_usd", "saved_cost_usd", "latency_s"):
        value = totals.get(key)
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                attributes[f"chorus.totals.{key}"] = float(value)
            except ValueError:
                continue
    return attributes
