"""Build hook: put `chorus_mcp/__init__.py` into the built wheel (not into an editable install)."""

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ChorusWheelHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "standard":
            # The wheel's `sources` rule prefixes every path with `chorus_mcp/`, this one included.
            build_data["force_include"][str(Path(self.root) / "chorus_mcp" / "__init__.py")] = "__init__.py"
