"""Figure 4, tool footprint: o200k_base tokens of what Chorus puts into the calling model's context —
the `tools/list` result (bundled default configuration) without the tools' icons, which clients display
and do not put into the context (their own weight on the wire is a figure of its own), and a default
`ensemble_vote` result for 5 members answering ~100 words each (the same fixture as
tests/server/mcp/test_footprint.py), both as serialised on the wire; and the text content alone of a
default result (what a client that reads only the text puts in context: the answer, who said what, the
totals) for 5 members giving short answers and for the 5 long answers. The baseline is the same
server's schemas as the SDK would publish them without `server.mcp.footprint.compact_tools`.

    .venv/bin/python bench/footprint.py
"""

from __future__ import annotations

import argparse
import logging
from typing import Any
from unittest import mock

import anyio
from mcp import Client
from pydantic import TypeAdapter

from bench._harness import Figure
from chorus_mcp.config.loader import load_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.footprint import TOOLS_LIST_BUDGET
from chorus_mcp.server.mcp.icons import ICONS_BUDGET, without_icons
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.server.mcp.test_footprint import (
    RESULT_BUDGET,
    SHORT_TEXT_BUDGET,
    _ensemble_result,
    _short_vote_result,
    text_tokens,
)
from tests.tokens import wire_tokens


async def _tools_list_tokens(compact: bool) -> tuple[int, int, int]:
    def factory(alias: str, _entry: Any) -> ScriptedClient:
        return ScriptedClient(alias, "ok")

    if compact:
        server = build_server(load_config(None), factory)
    else:  # what the SDK would publish: the full pydantic schemas
        with (
            mock.patch("chorus_mcp.server.app.compact_tools", lambda server: None),
            mock.patch(
                "chorus_mcp.server.mcp.footprint.output_schema_of",
                lambda model: TypeAdapter(model).json_schema(),
            ),
        ):
            server = build_server(load_config(None), factory)
    async with Client(server) as client:
        listed = await client.list_tools()
    read = wire_tokens(without_icons(listed))
    return read, len(listed.tools), wire_tokens(listed) - read


async def measure() -> dict[str, int]:
    compact, tools, icons = await _tools_list_tokens(compact=True)
    published, _, _ = await _tools_list_tokens(compact=False)
    summary = await _ensemble_result({})
    full = await _ensemble_result({"detail": "full"})
    short = await _short_vote_result()
    return {
        "tools": tools,
        "tools_list": compact,
        "tools_list_uncompacted": published,
        "icons": icons,
        "result": wire_tokens(summary),
        "result_full": wire_tokens(full),
        "short_text": text_tokens(short),
        "short_result": wire_tokens(short),
        "long_text": text_tokens(summary),
    }


def figures(result: dict[str, int]) -> list[Figure]:
    return [
        Figure(
            f"tools/list tokens a model reads (o200k_base, {result['tools']} tools, icons apart)",
            str(result["tools_list"]),
            f"<= {TOOLS_LIST_BUDGET:,}",
            result["tools_list"] <= TOOLS_LIST_BUDGET,
            f"{result['tools_list'] / result['tools_list_uncompacted']:.2f} of the SDK's default "
            f"{result['tools_list_uncompacted']:,}",
        ),
        Figure(
            "tools/list tokens of the tools' icons (displayed by clients, not read by the model)",
            str(result["icons"]),
            f"<= {ICONS_BUDGET}",
            result["icons"] <= ICONS_BUDGET,
            f"whole tools/list on the wire: {result['tools_list'] + result['icons']:,}",
        ),
        Figure(
            "default ensemble_vote result, 5 x ~100 words (tokens)",
            str(result["result"]),
            f"<= {RESULT_BUDGET}",
            result["result"] <= RESULT_BUDGET,
            f"detail=full: {result['result_full']:,}",
        ),
        Figure(
            "default ensemble_vote text content, 5 short answers (tokens)",
            str(result["short_text"]),
            f"<= {SHORT_TEXT_BUDGET}",
            result["short_text"] <= SHORT_TEXT_BUDGET,
            f"5 x ~100 words: {result['long_text']}; whole short result: {result['short_result']}",
        ),
    ]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None).parse_args()
    logging.disable(logging.INFO)  # the in-process server's run logs
    result = anyio.run(measure)
    for figure in figures(result):
        print(f"{figure.name}: {figure.value} (target {figure.target}) - {figure.note}")


if __name__ == "__main__":
    main()
