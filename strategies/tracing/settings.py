"""The `tracing:` section of the configuration, and where its spans are sent."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

TRACES_PATH = "/v1/traces"


class TracingSettings(BaseModel):
    """OpenTelemetry export. Off unless an endpoint is configured (here or in the standard variables)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    """Export spans over OTLP/HTTP. Unset: on when `endpoint`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_ENDPOINT` is set. `OTEL_SDK_DISABLED=true` turns it off whatever this says."""
    endpoint: str | None = None
    """Base URL of an OTLP/HTTP collector, e.g. `http://127.0.0.1:6006` for a local Phoenix; `/v1/traces`
    is appended unless the URL already ends with it. Headers (a collector's API key) belong in
    `OTEL_EXPORTER_OTLP_HEADERS`, never in this file."""
    capture_content: bool = True
    """Put prompts and answers on spans (input/output values, LLM messages, review issues, vote keys).
    False keeps models, tokens, costs, latencies and decisions, but no text a user or model wrote."""
    project: str = Field(default="chorus", min_length=1)
    """The project the traces land in, in Phoenix (resource attribute `openinference.project.name`)."""
    service_name: str = Field(default="chorus-mcp", min_length=1)
    phoenix_port: int = Field(default=6006, ge=1, le=65535)
    """Where `chorus-mcp serve --phoenix` starts (or finds) the local Phoenix; another free port is
    taken when this one is busy with something else."""

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


def traces_url(base: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL."""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def export_target(settings: TracingSettings, env: Mapping[str, str] | None = None) -> str | None:
    """The traces URL spans go to, or None when export is off."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or settings.enabled is False:
        return None
    if settings.endpoint:
        return traces_url(settings.endpoint)
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return traces_url(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    if settings.enabled:
        return traces_url("http://localhost:4318")  # the OTLP/HTTP default
    return None
