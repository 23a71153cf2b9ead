"""Who is calling, and what of the shared state they may see: sessions, usage, cached answers.

A `Principal` is one client of the server: a bearer token's name, an OAuth subject, or — over stdio and
on a loopback HTTP server without authentication — the local user (`LOCAL`). The server works out the
principal of each request (`server.http.auth.principal_of`) and runs the request `acting_as` it, so
code below the server (the response cache, the usage ledger) can ask `current_principal()` without
knowing about MCP.

Sessions belong to the principal that created them. Their owner may *grant* them to other principals
(by name) or to a team (`team:<name>`, teams come from `auth.teams`): a grantee may read and continue
the session, only the owner (or an admin) may end it. Admins (`auth.admins`, or an OAuth token carrying
`auth.admin_scope`) see every session. Everyone else gets the same "not found" for another principal's
session as for an id that never existed, so an id reveals nothing.

Sessions stored before ownership existed have no owner: they are the local user's (`LOCAL`), and
admins see them too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from chorus_mcp.strategies.core.errors import UserInputError

LOCAL = "@local"
"""The local user: stdio, or HTTP on loopback without authentication. No token name can be this."""
TEAM_PREFIX = "team:"
GRANT_PATTERN = re.compile(r"(team:)?[A-Za-z0-9._+\-][A-Za-z0-9._@+\-]{0,127}")
"""A grant names a principal (token name, OAuth subject) or a team (`team:<name>`); never `@local`."""
MAX_GRANTS = 32


@dataclass(frozen=True)
class Principal:
    id: str
    """The stored owner of what this principal creates: a token name, an OAuth subject, or `LOCAL`."""
    admin: bool = False
    """Sees (and may end) every session, and the server-wide usage."""
    teams: frozenset[str] = field(default_factory=frozenset)
    """The `auth.teams` this principal is a member of."""

    @property
    def names(self) -> frozenset[str]:
        """Every name a grant may use to reach this principal: its id and `team:<name>` of its teams."""
        return frozenset({self.id, *(TEAM_PREFIX + team for team in self.teams)})

    def owns(self, owner: str | None) -> bool:
        return (owner or LOCAL) == self.id

    def may_read(self, owner: str | None, grants: Sequence[str]) -> bool:
        """May read and continue a session of `owner` shared with `grants`."""
        return self.admin or self.owns(owner) or not self.names.isdisjoint(grants)

    def may_end(self, owner: str | None) -> bool:
        return self.admin or self.owns(owner)

    @property
    def cache_scope(self) -> str:
        """Whose cached answers this principal shares: its first team's, else its own."""
        return TEAM_PREFIX + min(self.teams) if self.teams else self.id


LOCAL_USER = Principal(LOCAL)
"""The principal of a process with no authentication (stdio): one user."""


def principal_id(subject: str) -> str:
    """A stored id for an authenticated subject that can never be taken for `LOCAL` or a team."""
    if subject.startswith(("@", TEAM_PREFIX, "oauth:")):
        return "oauth:" + subject
    return subject


def check_grants(grants: Sequence[str]) -> list[str]:
    """`grants` as stored (deduplicated, in order); `UserInputError` naming a bad one."""
    if len(grants) > MAX_GRANTS:
        raise UserInputError(f"share_with: {len(grants)} names; at most {MAX_GRANTS}")
    kept: list[str] = []
    for i, grant in enumerate(grants):
        if not isinstance(grant, str) or not GRANT_PATTERN.fullmatch(grant):
            raise UserInputError(
                f"share_with[{i}]: expected a client name (a token name or OAuth subject: letters, digits, "
                "'.', '_', '@', '+', '-') or 'team:<name>'"
            )
        if grant not in kept:
            kept.append(grant)
    return kept


_current: ContextVar[Principal] = ContextVar("chorus_principal", default=LOCAL_USER)


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Everything inside (and every task it starts) runs on behalf of `principal`."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def current_principal() -> Principal:
    return _current.get()
