"""Reading a reviewer's verdict: `{"approved": bool, "issues": [str]}`, found robustly in free text.

A reviewer is a model, so its answer is data to be read carefully, not trusted to be well formed:
the JSON may sit in a ``` fence or after some prose. What cannot be read is *not* approved: an
unreadable verdict must never let unchecked work through as if it had been reviewed.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

REVIEW_INSTRUCTION = (
    "\n\nAnswer ONLY with a JSON object of this form, nothing else:\n"
    '{"approved": true or false, "issues": ["each problem that must be fixed, one per item"]}\n'
    "Set approved to true only when nothing needs to change; then issues may be empty."
)
"""Appended to every review stage's prompt."""

_PLAIN_APPROVAL = re.compile(r"^[\s*_#>`]*(approved|lgtm)\b(?!\s*[\"':=])", re.IGNORECASE)
"""The answer *starts* with the word (markdown emphasis allowed), and it is not a JSON-ish key."""
_EXCERPT = 200
_MAX_CANDIDATES = 50


@dataclass(frozen=True)
class Verdict:
    approved: bool
    issues: list[str] = field(default_factory=list)


def parse_verdict(text: str) -> Verdict:
    """The verdict in a reviewer's answer. Unreadable means not approved, with an issue saying so."""
    found = _first_verdict_object(text)
    if found is not None:
        approved = _as_bool(found.get("approved"))
        if approved is not None:
            issues = _as_issues(found.get("issues"))
            if not approved and not issues:
                issues = ["(the reviewer did not approve but named no specific issue)"]
            return Verdict(approved=approved, issues=issues)
    if _PLAIN_APPROVAL.match(text):
        return Verdict(approved=True)
    excerpt = " ".join(text.split())[:_EXCERPT] or "(empty answer)"
    return Verdict(approved=False, issues=[f"reviewer verdict unreadable: {excerpt}"])


def _first_verdict_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` that has an `approved` key (fences and prose around it are fine)."""
    decoder = json.JSONDecoder()
    # Bounded: a long answer full of braces must not make reading the verdict quadratic.
    for match in itertools.islice(re.finditer(r"\{", text), _MAX_CANDIDATES):
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and "approved" in value:
            return value
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no"):
        return False
    return None


def _as_issues(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    issues = [item if isinstance(item, str) else json.dumps(item) for item in items]
    return [issue.strip() for issue in issues if issue.strip()]
