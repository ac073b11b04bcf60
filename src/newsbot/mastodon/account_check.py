"""Before posting: is the server there, what does it allow and run, whose token is this.

``newsbot check --targets`` and the publisher's start-up ask a server the
same questions, in the same order, through :func:`check_account`: its limits
(the instance document), its software (NodeInfo, when the caller needs it),
the token's account (``verify_credentials``) and, for the check, the scopes
the token's application was granted. Only GET requests are sent.

The publisher stops at the first refusal (nothing more is sent to a server
that refused the token); the check goes on, to name every problem at once.
Either way an unreachable server ends the questions, and the caller words
what the operator reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.documents import Account, Limits, Software
from newsbot.mastodon.errors import MastodonError, TransientError

NEEDED_SCOPES = ("read:accounts", "write:statuses", "write:media")
"""What a pass uses: the account (verify_credentials), posting, and uploading images."""

Question = Literal["limits", "account"]


@dataclass(frozen=True, slots=True)
class Failure:
    """A question the server answered with an error."""

    question: Question
    error: MastodonError


@dataclass
class AccountCheck:
    """What a server answered; a field is ``None`` where it was not asked or not answered.

    ``unreachable`` is the transient failure that ended the check before
    anything was learnt; ``failures`` the other refusals, in the order asked.
    """

    limits: Limits | None = None
    software: Software | None = None
    account: Account | None = None
    scopes: list[str] | None = None
    """The application's scopes, where asked and reported (a token can have fewer)."""
    unreachable: TransientError | None = None
    failures: list[Failure] = field(default_factory=list)

    def answers(self) -> tuple[Limits, Software | None, Account]:
        """The limits, software and account; raises the first error if any question failed."""
        if self.unreachable is not None:
            raise self.unreachable
        if self.failures:
            raise self.failures[0].error
        if self.limits is None or self.account is None:
            raise ValueError("the account check was not asked for limits and account")
        return self.limits, self.software, self.account

    def missing_scopes(self) -> list[str]:
        """The needed scopes the application's scopes do not cover (none if not reported)."""
        return [] if self.scopes is None else missing_scopes(self.scopes)


def check_account(
    client: MastodonClient, *, software: bool, scopes: bool = False, keep_going: bool = False
) -> AccountCheck:
    """Ask the server what posting relies on, without posting.

    ``software`` asks for NodeInfo too (to choose a server profile);
    ``scopes`` asks which scopes the token's application has. With
    ``keep_going`` a refusal is recorded and the next question asked;
    without, the first refusal ends the check. A transient failure of the
    first question always ends it: the server is not there.
    """
    found = AccountCheck()
    try:
        found.limits = client.instance_limits()
    except TransientError as exc:
        found.unreachable = exc
        return found
    except MastodonError as exc:
        found.failures.append(Failure("limits", exc))
        if not keep_going:
            return found
    if software:
        found.software = client.server_software()
    try:
        found.account = client.verify_credentials()
    except MastodonError as exc:
        found.failures.append(Failure("account", exc))
        if not keep_going:
            return found
    if scopes:
        found.scopes = client.application_scopes()
    return found


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
