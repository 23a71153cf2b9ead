"""Who each request is from: the `Principal` that owns what it creates and is counted by the quotas.

A bearer token's principal is its name (`auth.tokens`); an OAuth token's is its subject (else its client
id). A request with no token — stdio, or HTTP on loopback without authentication — is the local user.
`PrincipalScope` (server middleware, outermost) runs every request `acting_as` its principal, so tools,
resources, the response cache and the usage ledger all see the same one.

The SDK carries the authenticated user into request handlers through a context variable (set by its
HTTP authentication middleware, copied with every message into the session's task), which
`get_access_token()` reads; over stdio there is none.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from chorus_mcp.config.schema import AuthConfig
from chorus_mcp.strategies.sessions.ownership import LOCAL_USER, Principal, acting_as, principal_id


class Principals:
    """Turns an access token into a `Principal`, with its admin flag and teams from `auth`."""

    def __init__(self, auth: AuthConfig) -> None:
        self._oauth = auth.oauth is not None
        self._admins = frozenset(auth.admins)
        self._admin_scope = auth.admin_scope
        self._teams = {team: frozenset(members) for team, members in auth.teams.items()}
        self._token_names = frozenset(auth.tokens)

    def of(self, token: AccessToken | None) -> Principal:
        if token is None:
            return LOCAL_USER
        # A static token's client id is its configured name; an OAuth token names its subject.
        name = (token.subject or token.client_id) if self._oauth else token.client_id
        admin = name in self._admins or (self._admin_scope is not None and self._admin_scope in token.scopes)
        teams = frozenset(team for team, members in self._teams.items() if name in members)
        return Principal(principal_id(name), admin=admin, teams=teams)

    def current(self) -> Principal:
        """The principal of the request being served."""
        return self.of(get_access_token())

    def known_grant(self, grant: str) -> bool:
        """Whether a grant can ever match: a configured team, or (with static tokens) a token name."""
        if grant.startswith("team:"):
            return grant[5:] in self._teams
        return self._oauth or grant in self._token_names


class PrincipalScope:
    """Server middleware: the rest of the chain runs as the request's principal."""

    def __init__(self, principals: Principals) -> None:
        self._principals = principals

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        with acting_as(self._principals.current()):
            return await call_next(ctx)
