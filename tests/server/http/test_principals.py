"""Who a request is from: a token's name, an OAuth subject (never mistaken for the local user or a
team), admins by name or scope, teams from config; and the config refuses admins and team members
that are not configured tokens."""

from __future__ import annotations

import pytest
from mcp.server.auth.provider import AccessToken

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import AuthConfig
from chorus_mcp.server.http.principals import Principals
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.sessions.ownership import LOCAL, LOCAL_USER

TOKENS = {"alice": {"env": "A_TOKEN"}, "bob": {"env": "B_TOKEN"}, "ops": {"env": "O_TOKEN"}}
OAUTH = {
    "issuer_url": "https://auth.example.com",
    "resource_server_url": "https://chorus.example.com/mcp",
    "introspection_url": "https://auth.example.com/introspect",
}


def token(client_id: str, subject: str | None = None, scopes: list[str] | None = None) -> AccessToken:
    return AccessToken(token="[bearer token]", client_id=client_id, scopes=scopes or [], subject=subject)


def test_a_static_tokens_principal_is_its_name_with_its_teams_and_admin_flag() -> None:
    principals = Principals(AuthConfig(tokens=TOKENS, admins=["ops"], teams={"eng": ["alice", "bob"]}))

    alice = principals.of(token("alice"))
    ops = principals.of(token("ops"))

    assert (alice.id, alice.admin, alice.teams) == ("alice", False, frozenset({"eng"}))
    assert ops.admin and not ops.teams
    assert principals.of(None) == LOCAL_USER


def test_an_oauth_principal_is_its_subject_and_never_the_local_user_or_a_team() -> None:
    principals = Principals(AuthConfig(oauth=OAUTH, admin_scope="chorus:admin", teams={"eng": ["u-42"]}))

    assert principals.of(token("app", subject="u-42")).id == "u-42"
    assert principals.of(token("app", subject="u-42")).teams == frozenset({"eng"})
    assert principals.of(token("app")).id == "app"  # no subject: the client id
    assert principals.of(token("app", subject=LOCAL)).id == "oauth:@local"
    assert principals.of(token("app", subject="team:eng")).id == "oauth:team:eng"
    assert principals.of(token("app", subject="u-7", scopes=["chorus:admin"])).admin


def test_grants_must_name_a_configured_token_or_team_and_any_subject_with_oauth() -> None:
    static = Principals(AuthConfig(tokens=TOKENS, teams={"eng": ["alice"]}))
    oauth = Principals(AuthConfig(oauth=OAUTH))

    assert static.known_grant("bob") and static.known_grant("team:eng")
    assert not static.known_grant("mallory") and not static.known_grant("team:sales")
    assert oauth.known_grant("any-subject") and not oauth.known_grant("team:eng")


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [
        ({"tokens": TOKENS, "admins": ["root"]}, "admins: 'root': not a configured token name"),
        (
            {"tokens": TOKENS, "teams": {"eng": ["alice", "eve"]}},
            "teams.eng: 'eve': not a configured token name",
        ),
        ({"tokens": TOKENS, "teams": {"bad team": ["alice"]}}, "teams: name 'bad team'"),
    ],
)
def test_admins_and_team_members_that_are_not_configured_tokens_are_refused(
    auth: dict[str, object], fragment: str
) -> None:
    import json

    with pytest.raises(ConfigError) as raised:
        parse_config(json.dumps({"auth": auth}), source="team.yaml", env={})

    assert fragment in str(raised.value)
