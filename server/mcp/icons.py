"""Icons for the server, its tools and its prompts: small SVGs inlined as `data:` URIs.

Inlined because Chorus has no web origin of its own to serve them from (stdio has none at all) and must
work offline; tiny because every tool's icon travels in each `tools/list` result. Clients only display
icons (they are not part of what a model reads), and the footprint test counts them apart from the
definitions a model reads (`tests/server/mcp/test_footprint.py`). One colour, readable on a light or a
dark background, so no `theme` variants are needed.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import DiscoverResult, Icon, ListToolsResult, RequestParams
from mcp_types import SERVER_INFO_META_KEY

_SVG = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 8 8' fill='slateblue'>{}</svg>"
"""Single quotes and a named colour: nothing in it needs escaping in JSON or percent-encoding but its
spaces and angle brackets, which every client's image loader accepts in a `data:` URI as they are."""
_SHAPES = {
    # three voices: the server itself
    "chorus": "<circle cx='2' cy='5' r='2'/><circle cx='6' cy='5' r='2'/><circle cx='4' cy='2' r='2'/>",
    # three answers over one: a vote
    "ensemble_vote": "<path d='M0 0h2v2H0zm3 0h2v2H3zm3 0h2v2H6zM1 5h6v3H1z'/>",
    # steps up: cheap first, then stronger
    "cascade_ask": "<path d='M0 6h3v2H0zm3-3h3v5H3zm3-3h2v8H6z'/>",
    # one in, three out: a router
    "route_specialist": "<path d='M0 3h4V0h4v2H6v4h2v2H4V5H0z'/>",
    # stages in a row
    "run_pipeline": "<path d='M0 2h2v4H0zm3 0h2v4H3zm3 0h2v4H6z'/>",
    # a list
    "list": "<path d='M0 0h8v2H0zm0 3h8v2H0zm0 3h8v2H0z'/>",
    # a speech bubble: a conversation
    "session": "<path d='M0 0h8v6H3L1 8V6H0z'/>",
}
_SHAPE_OF_TOOL = {
    "list_models": "list",
    "list_strategies": "list",
    "start_session": "session",
    "end_session": "session",
}


def icon_for(name: str) -> list[Icon]:
    """The icon of the tool or prompt `name` (the server's own for anything without one)."""
    shape = _SHAPES.get(_SHAPE_OF_TOOL.get(name, name), _SHAPES["chorus"])
    return [Icon(src="data:image/svg+xml," + _SVG.format(shape))]  # the URI names its type: no mimeType


SERVER_ICONS = icon_for("chorus")
"""The server's icon (in `serverInfo` and `server/discover`)."""


def add_icons(server: MCPServer[Any]) -> None:
    """Give every registered tool its icon, whoever registered it, and keep the server's icon out of the
    `serverInfo` stamp on 2026-07-28 results.

    That stamp (`_meta`) identifies the server on every result: with the icon in it, each tool result
    would carry ~90 more tokens, and the calling model reads results. The icon stays where clients look
    for it, in `server/discover` and `initialize`.
    """
    for tool in server._tool_manager.list_tools():  # the SDK's registry holds what tools/list publishes
        tool.icons = icon_for(tool.name)
    lowlevel = server._lowlevel_server
    full = lowlevel.server_info.model_dump(by_alias=True, mode="json", exclude_none=True)
    plain = lowlevel.server_info.model_copy(update={"icons": None})
    # The SDK computes the stamp's dump once, as a cached property: this is that cache, filled first.
    lowlevel.__dict__["_server_info_stamp_source"] = plain.model_dump(
        by_alias=True, mode="json", exclude_none=True
    )
    default_discover = lowlevel._handle_discover

    async def discover(ctx: ServerRequestContext[Any, Any], params: RequestParams | None) -> DiscoverResult:
        # A 2026-07-28 client learns who the server is from this stamp (a handler's own value wins).
        result = await default_discover(ctx, params)
        return result.model_copy(update={"meta": {**(result.meta or {}), SERVER_INFO_META_KEY: full}})

    lowlevel.add_request_handler("server/discover", RequestParams, discover)


ICONS_BUDGET = 700
"""o200k_base tokens that every tool's icon together may add to a `tools/list` result on the wire."""


def without_icons(listed: ListToolsResult) -> ListToolsResult:
    """`listed` as a model reads it: clients display icons, they do not put them into the context."""
    return listed.model_copy(
        update={"tools": [tool.model_copy(update={"icons": None}) for tool in listed.tools]}
    )
