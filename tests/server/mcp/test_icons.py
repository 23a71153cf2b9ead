"""Icons for the server and every tool, and the tools' annotations, as clients of both eras see them."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from mcp import Client
from mcp.types import Icon
from mcp_types import SERVER_INFO_META_KEY

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio

PREFIX = "data:image/svg+xml,"


def _svg_of(icons: list[Icon] | None) -> ElementTree.Element:
    assert icons and len(icons) == 1 and icons[0].src.startswith(PREFIX)
    root = ElementTree.fromstring(icons[0].src.removeprefix(PREFIX))  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 8 8"
    assert len(root) > 0  # it draws something
    return root


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_server_and_every_tool_have_an_svg_icon_in_both_eras(
    server_config: ChorusConfig, mode: str
) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "B"))
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        assert client.server_info is not None  # from initialize (legacy) or server/discover's stamp (auto)
        _svg_of(client.server_info.icons)
        tools = (await client.list_tools()).tools
        drawn = {tool.name: ElementTree.tostring(_svg_of(tool.icons)) for tool in tools}
        assert (
            drawn["ensemble_vote"]
            != drawn["cascade_ask"]
            != drawn["route_specialist"]
            != drawn["run_pipeline"]
        )


async def test_tool_results_identify_the_server_without_carrying_its_icon(
    server_config: ChorusConfig,
) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "B"))
    async with Client(server) as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("list_models", {})
    stamp = (result.meta or {})[SERVER_INFO_META_KEY]
    assert stamp["name"] == "chorus" and "icons" not in stamp  # ~90 tokens a model would read on every result


async def test_tool_annotations_say_what_each_tool_does(server_config: ChorusConfig) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "B"))
    async with Client(server) as client:
        tools = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    for name in ("ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"):
        hints = tools[name]
        # They call providers (open world), spend money and write the session: neither read-only nor
        # idempotent (a repeat is another turn), but they destroy nothing.
        assert hints is not None and hints.read_only_hint is False and hints.destructive_hint is False
        assert hints.open_world_hint is True and not hints.idempotent_hint
    for name in ("list_models", "list_strategies"):
        hints = tools[name]
        assert hints is not None and hints.read_only_hint is True and hints.open_world_hint is False
    start, end = tools["start_session"], tools["end_session"]
    assert start is not None and start.read_only_hint is False and start.destructive_hint is False
    assert end is not None and end.destructive_hint is True and end.idempotent_hint is True
