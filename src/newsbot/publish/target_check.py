"""``newsbot check --targets``: can each target be posted to, asked without posting anything.

For each target: is the server reachable and what are its limits (the
instance document), what software runs it (NodeInfo, else the instance's
``version``), is the token accepted and whose account it is
(``verify_credentials``), and which scopes the token's application was
granted (``/api/v1/apps/verify_credentials``; Mastodon reports the
application's scopes, and a token can have fewer, so a missing scope is
certain but a listed one is not). Only GET requests are sent, and only to
the target's own server: a NodeInfo link to another host is not followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from newsbot.mastodon.client import BearerToken, MastodonClient
from newsbot.mastodon.documents import Limits, Software
from newsbot.mastodon.errors import AuthError, MastodonError, TransientError
from newsbot.settings import TargetSettings

NEEDED_SCOPES = ("read:accounts", "write:statuses", "write:media")
"""What a pass uses: the account (verify_credentials), posting, and uploading images."""

_PARENTS = ("read", "write")


@dataclass
class TargetCheck:
    """What was learnt of one target; ``problems`` empty means it can be posted to."""

    name: str
    server: str
    reachable: bool = False
    software: str | None = None
    limits: Limits | None = None
    account: str | None = None
    scopes: list[str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "target": self.name,
            "server": self.server,
            "reachable": self.reachable,
            "software": self.software,
            "max_characters": None if limits is None else limits.max_characters,
            "characters_reserved_per_url": (
                None if limits is None else limits.characters_reserved_per_url
            ),
            "account": self.account,
            "scopes": self.scopes,
            "problems": self.problems,
        }


def missing_scopes(granted: list[str]) -> list[str]:
    """The needed scopes that ``granted`` does not cover (``write`` covers ``write:media``)."""
    have = set(granted)
    return [
        scope
        for scope in NEEDED_SCOPES
        if scope not in have
        and scope.split(":")[0] not in have
        and not (scope == "read:accounts" and "profile" in have)
    ]


def check_target(name: str, target: TargetSettings, http: httpx.Client) -> TargetCheck:
    """Ask the target's server everything a pass relies on, without posting."""
    server = str(target.server)
    found = TargetCheck(name, server)
    try:
        token = target.access_token()
    except OSError as exc:
        found.problems.append(f"cannot read targets.{name}.token_file: {exc.strerror}")
        return found
    if token is None:
        found.problems.append(f"no access token (targets.{name}.token or token_file)")
        return found
    client = MastodonClient(server, token, http)
    try:
        found.limits = client.instance_limits()
    except TransientError as exc:
        found.problems.append(f"server not reachable: {exc}")
        return found
    except MastodonError as exc:
        found.problems.append(f"instance document: {exc}")
    found.reachable = True
    found.software = _software(client.server_software())
    try:
        account = client.verify_credentials()
        found.account = account.acct
    except AuthError as exc:
        found.problems.append(f"the access token was refused: {exc}")
    except MastodonError as exc:
        found.problems.append(f"verify_credentials: {exc}")
    found.scopes = _app_scopes(http, server, BearerToken(token))
    if found.scopes is not None and (missing := missing_scopes(found.scopes)):
        found.problems.append("the token lacks the scope(s) " + ", ".join(missing))
    return found


def _app_scopes(http: httpx.Client, server: str, auth: httpx.Auth) -> list[str] | None:
    data = _get_json(http, urljoin(server, "/api/v1/apps/verify_credentials"), auth)
    scopes = (data or {}).get("scopes")
    if isinstance(scopes, list):
        return [str(scope) for scope in scopes]
    if isinstance(scopes, str):
        return scopes.split()
    return None


def _get_json(
    http: httpx.Client, url: str, auth: httpx.Auth | None = None
) -> dict[str, Any] | None:
    try:
        response = http.get(url, auth=auth) if auth is not None else http.get(url)
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _software(found: Software) -> str | None:
    """``name version`` as NodeInfo says, else the instance's ``version`` text."""
    if found.name:
        return f"{found.name} {found.version or ''}".strip()
    return f"version {found.instance_version}" if found.instance_version else None
