"""The configuration file's schema. `chorus-mcp config schema` prints it as JSON Schema for editors."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.core.spec import Step, StrategyRef, models_in
from chorus_mcp.strategies.engine.reliability import ReliabilitySettings
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.sessions.session import SessionSettings
from chorus_mcp.strategies.tracing.settings import TracingSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Section):
    """What a tool uses when the call does not say."""

    deadline_s: float = Field(default=45.0, gt=0)
    """Every tool run returns by then, with a partial answer if need be. Keep it below your client's
    time-out (many clients give up at 60 s). At most `limits.max_deadline_s`, the one upper bound."""
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    """Cost cap per tool call; None means no cap."""
    progress_every_s: float = Field(default=3.0, gt=0, le=60)
    """The longest a call stays silent when the client asked for progress: a notification then says what
    it is waiting on (clients that reset their time-out on progress keep a long call alive)."""
    ensemble: str = "ensemble"
    """The named strategy `ensemble_vote` runs when the call names no models."""
    cascade: str = "cascade"
    route: str = "route"
    pipeline: str = "pipeline"


class TaskSettings(_Section):
    """Long calls as tasks (the MCP extension `io.modelcontextprotocol/tasks`, protocol 2026-07-28): the
    call returns a task at once, and the client polls it for the result, however long the run takes."""

    enabled: bool = True
    after_deadline_s: float = Field(default=50.0, ge=0)
    """An orchestration call from a client that declares the extension runs as a task when its deadline
    is above this (clients often cut a call off at 60 s); 0: every such call."""
    ttl_s: float = Field(default=24 * 3600.0, gt=0)
    """How long a task and its result are kept after it was created."""
    poll_interval_s: float = Field(default=2.0, gt=0)
    """How often a client is asked to poll a working task."""
    max_running: int = Field(default=8, ge=1)
    """Tasks running at once, over all clients. Past it a call runs as an ordinary one, held to the
    HTTP limits on requests in progress (a task's run outlives its request, so those do not count it)."""


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    path: str = "/mcp"
    stateless: bool = False
    """Stateless streamable HTTP (for replicas behind a load balancer); progress notifications need
    a stateful session or an SSE response."""
    json_response: bool = False


class BearerToken(_Section):
    """One named bearer token for the HTTP transport. Give `env` or `sha256`, not both.

    Remove the entry (and restart) to revoke it: the other tokens keep working.
    """

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable holding the token (at least 32 characters)."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """The token's SHA-256 digest in hex, so that this file holds nothing a caller could send."""

    @model_validator(mode="after")
    def _one_source(self) -> BearerToken:
        if (self.env is None) == (self.sha256 is None):
            raise ValueError(
                "give exactly one of 'env' (a variable holding the token) or 'sha256' (its digest)"
            )
        return self


class OAuthResourceServer(_Section):
    """Accept access tokens from an OAuth authorization server, checked by token introspection (RFC 7662)."""

    issuer_url: AnyHttpUrl
    """The authorization server clients get tokens from (published in the protected-resource metadata)."""
    resource_server_url: AnyHttpUrl
    """This server's public MCP URL; a token must have been issued for it (its `aud`)."""
    introspection_url: AnyHttpUrl
    """The authorization server's introspection endpoint."""
    client_id_env: str | None = None
    """Variable holding the client id this server authenticates to the introspection endpoint with."""
    client_secret_env: str | None = None
    required_scopes: list[str] = Field(default_factory=list)


class AuthConfig(_Section):
    """Who may use the HTTP transport. Without tokens or OAuth, HTTP binds to loopback only."""

    tokens: dict[str, BearerToken] = Field(default_factory=dict)
    """Named bearer tokens (`Authorization: Bearer <token>`); the name identifies the client in rate
    limits and logs."""
    oauth: OAuthResourceServer | None = None
    """OAuth resource-server mode, instead of `tokens`."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Host header values accepted besides loopback (DNS-rebinding protection), e.g. `chorus.example.com`
    or `10.0.0.5:*` (any port). Needed when binding to 0.0.0.0."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Origin header values accepted besides loopback origins, e.g. `https://app.example.com`."""
    admins: list[str] = Field(default_factory=list)
    """Clients (token names, OAuth subjects) that see and may end every session and see server-wide
    usage. Everyone else sees only their own sessions and those shared with them."""
    admin_scope: str | None = None
    """With `oauth`: an access token carrying this scope is an admin too."""
    teams: dict[str, list[str]] = Field(default_factory=dict)
    """Teams by name, each a list of clients (token names, OAuth subjects). A session shared with
    `team:<name>` is readable by every member; with `cache.scope: team` members share cached answers."""

    @model_validator(mode="after")
    def _one_mode(self) -> AuthConfig:
        for team in self.teams:
            if (
                not team
                or len(team) > 64
                or not team.replace("-", "").replace("_", "").replace(".", "").isalnum()
            ):
                raise ValueError(f"teams: name {team!r} must be 1-64 letters, digits, '.', '-' or '_'")
        if self.tokens:
            known = set(self.tokens)
            for where, names in [
                ("admins", self.admins),
                *((f"teams.{t}", m) for t, m in self.teams.items()),
            ]:
                unknown = sorted(set(names) - known)
                if unknown:
                    raise ValueError(
                        f"{where}: {', '.join(map(repr, unknown))}: not a configured token name (auth.tokens)"
                    )
        for name in self.tokens:
            if (
                not name
                or len(name) > 64
                or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
            ):
                raise ValueError(f"tokens: name {name!r} must be 1-64 letters, digits, '.', '-' or '_'")
        if self.tokens and self.oauth is not None:
            raise ValueError("use either 'tokens' or 'oauth', not both")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or self.oauth is not None


class ClientQuotas(_Section):
    """Per-client quotas (`limits.per_client`). 0 or None turns one off."""

    max_transport_sessions: int = Field(default=64, ge=0)
    """Streamable-HTTP sessions (MCP connections) one client may hold open at once."""
    max_concurrent_tool_calls: int = Field(default=8, ge=0)
    """Tool calls of one client in progress at once; more are refused at once, not queued."""
    requests_per_minute: int = Field(default=0, ge=0)
    """HTTP requests per minute per client, shared by every replica (0: only the per-process
    `limits.rate_limit_per_minute` applies)."""
    max_usd_per_day: Decimal | None = Field(default=None, ge=0)
    """What one client's tool calls may cost per UTC day; a call's cost cap is lowered to what is left."""


class Limits(_Section):
    """The operator's bounds on what one tool call may do, and on HTTP traffic."""

    allowed_models: list[str] | None = None
    """Models a tool call may name (`models`, `tiers`, `judge`). Unset: every configured alias, plus
    provider ids when `allow_unlisted_models` is on. Named strategies may still use others."""
    max_members: int = Field(default=8, ge=1, le=64)
    """Most models a tool call may list in `models` or `tiers`."""
    max_prompt_chars: int = Field(default=200_000, ge=1)
    """Longest `prompt`, `input` or `system` a tool call may send, in characters."""
    max_output_tokens: int | None = Field(default=None, gt=0)
    """Ceiling on `max_tokens` of every model call (a larger or missing value is lowered to it)."""
    max_pipeline_iterations: int = Field(default=5, ge=0)
    """Most refine rounds a `run_pipeline` call may ask for."""
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    """Highest cost cap a tool call may set; also the default cap when `defaults.max_cost_usd` is unset."""
    max_deadline_s: float = Field(default=300.0, gt=0)
    """Longest `deadline_s` a tool call may set."""
    rate_limit_per_minute: int = Field(default=600, ge=0)
    """HTTP requests per minute per client (token name, else address); 0 turns rate limiting off."""
    rate_limit_burst: int = Field(default=60, ge=1)
    """Requests a client may send at once before the per-minute rate applies."""
    max_concurrent_requests: int = Field(default=32, ge=1)
    """HTTP requests in progress at once, over all clients; more get a "busy" error at once."""
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest HTTP request body."""
    per_client: ClientQuotas = Field(default_factory=ClientQuotas)
    """What one client (token name, OAuth subject; the local user over stdio) may use, so that one
    client flooding the server cannot starve the others. Shared by replicas through Redis when sessions
    use Redis; counted in this process otherwise."""


class InputSettings(_Section):
    """Files and images the orchestration tools may be given (`files`)."""

    roots: list[str] = Field(default_factory=list)
    """Folders files may be read from (`~` expanded; symlinks and `..` resolved before the check). Over
    stdio the client's MCP roots are allowed as well; over HTTP only these: with none, paths are refused."""
    client_roots: bool = True
    """Over stdio, also allow the folders the client declares as its MCP roots."""
    max_files: int = Field(default=8, ge=0)
    """Most files and images one call may attach."""
    max_file_bytes: int = Field(default=2_000_000, ge=1)
    """Largest file or image, in bytes."""
    oversize: Literal["excerpt", "refuse"] = "excerpt"
    """A text file larger than its share of a model's context window: sent cut to its share with a
    marker (`excerpt`), or that model is not called, with a message naming the file (`refuse`)."""


class ChorusConfig(_Section):
    """A Chorus configuration file (YAML)."""

    models: dict[str, ModelEntry] = Field(default_factory=dict)
    """Model aliases (`fast`, `strong`, `coder`, ...) and how to reach each."""
    strategies: dict[str, Step] = Field(default_factory=dict)
    """Named strategies, usable by name in any tool call and from other strategies."""
    defaults: Defaults = Field(default_factory=Defaults)
    use_available_models: bool = False
    """Decide at start-up which models can work here (key variable set, local server answering with the
    model, embedded model installed) and steer every strategy from the others to the first usable model
    of their `fallbacks` (strategies/models/availability.py). The bundled default turns it on;
    `chorus-mcp doctor` shows the outcome."""
    allow_unlisted_models: bool = False
    """Let tool calls name provider model ids that are not configured aliases (e.g. `openai/gpt-4o`).
    An opt-in: such a call spends credit on a model the operator did not choose."""
    http: HttpSettings = Field(default_factory=HttpSettings)
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    """Where conversations are kept (SQLite by default, Redis for replicas), their caps, and how their
    history is passed to models."""
    cache: CacheSettings = Field(default_factory=CacheSettings)
    """The response cache in front of every model call: exact repeats (and, opt-in, paraphrases) are
    answered without a provider call. Shares the sessions' store (SQLite by default, Redis for replicas)."""
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    """OpenTelemetry traces (OTLP/HTTP to Phoenix, Jaeger or any collector); off unless an endpoint is set."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    auth: AuthConfig = Field(default_factory=AuthConfig)
    limits: Limits = Field(default_factory=Limits)
    inputs: InputSettings = Field(default_factory=InputSettings)

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> ChorusConfig:
        limits, defaults = self.limits, self.defaults
        if defaults.deadline_s > limits.max_deadline_s:
            raise ValueError(
                f"defaults.deadline_s: {defaults.deadline_s:g}; "
                f"expected at most limits.max_deadline_s ({limits.max_deadline_s:g})"
            )
        if limits.max_cost_usd is not None:
            if defaults.max_cost_usd is None:
                defaults.max_cost_usd = limits.max_cost_usd
            elif defaults.max_cost_usd > limits.max_cost_usd:
                raise ValueError(
                    f"defaults.max_cost_usd: {defaults.max_cost_usd}; "
                    f"expected at most limits.max_cost_usd ({limits.max_cost_usd})"
                )
        for model in limits.allowed_models or []:
            if model not in self.models and not (self.allow_unlisted_models and "/" in model):
                raise ValueError(f"limits.allowed_models: {model!r}; expected {self._an_alias()}")
        return self

    @model_validator(mode="after")
    def _references_resolve(self) -> ChorusConfig:
        for alias, entry in self.models.items():
            for fallback in [*entry.fallbacks, *([entry.context_fallback] if entry.context_fallback else [])]:
                if fallback not in self.models and not (self.allow_unlisted_models and "/" in fallback):
                    raise ValueError(f"models.{alias}.fallbacks: {fallback!r}; expected {self._an_alias()}")
        for name, step in self.strategies.items():
            for model in models_in(step):
                if model not in self.models and not (self.allow_unlisted_models and "/" in model):
                    raise ValueError(f"strategies.{name}: model {model!r}; expected {self._an_alias()}")
            for ref in _references(step):
                if ref not in self.strategies:
                    known = ", ".join(sorted(self.strategies))
                    raise ValueError(
                        f"strategies.{name}: refers to unknown strategy {ref!r}; expected one of {known}"
                    )
        return self

    def _an_alias(self) -> str:
        """What a model reference accepts, for a message."""
        known = ", ".join(sorted(self.models)) or "none configured"
        ids = " or a provider id (allow_unlisted_models is on)" if self.allow_unlisted_models else ""
        return f"a configured model alias ({known}){ids}"


def _references(step: object) -> list[str]:
    """Names of strategies a spec refers to, at any depth."""
    if isinstance(step, StrategyRef):
        return [step.name]
    found: list[str] = []
    if isinstance(step, BaseModel):
        for value in step.__dict__.values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, BaseModel):
                    found.extend(_references(item))
    return found
