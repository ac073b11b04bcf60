"""``newsbot check --targets``: can each target be posted to, asked without posting anything.

For each target: is the server reachable and what are its limits, what
software runs it (NodeInfo, else the instance's ``version``), is the token
accepted and whose account it is, and which scopes the token's application
was granted: the questions the publisher asks before a pass
(:func:`newsbot.mastodon.account_check.check_account`), all asked even after
a refusal, so that every problem is named at once. Only GET requests are
sent, and only to the target's own server: a NodeInfo link to another host
is not followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from newsbot.mastodon.account_check import check_account
from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.documents import Limits, Software
from newsbot.mastodon.errors import AuthError
from newsbot.settings import TargetSettings


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
    asked = check_account(client, software=True, scopes=True, keep_going=True)
    if asked.unreachable is not None:
        found.problems.append(f"server not reachable: {asked.unreachable}")
        return found
    found.reachable = True
    found.limits = asked.limits
    found.software = _software(asked.software)
    found.account = asked.account.acct if asked.account is not None else None
    for failure in asked.failures:
        if failure.question == "limits":
            found.problems.append(f"instance document: {failure.error}")
        elif isinstance(failure.error, AuthError):
            found.problems.append(f"the access token was refused: {failure.error}")
        else:
            found.problems.append(f"verify_credentials: {failure.error}")
    found.scopes = asked.scopes
    if missing := asked.missing_scopes():
        found.problems.append("the token lacks the scope(s) " + ", ".join(missing))
    return found


def _software(found: Software | None) -> str | None:
    """``name version`` as NodeInfo says, else the instance's ``version`` text."""
    if found is None:
        return None
    if found.name:
        return f"{found.name} {found.version or ''}".strip()
    return f"version {found.instance_version}" if found.instance_version else None
