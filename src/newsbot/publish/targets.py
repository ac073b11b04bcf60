"""The configured targets, each with the reason it cannot run, if it cannot.

Read from the settings only; :mod:`newsbot.app` wires a publisher to each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from newsbot.errors import NewsbotError
from newsbot.settings import Settings, TargetSettings


class NoToken(NewsbotError):
    """A target has no access token configured."""


@dataclass(frozen=True, slots=True)
class Target:
    """A configured target and why it cannot run, if it cannot."""

    name: str
    settings: TargetSettings
    problem: str | None

    def token(self) -> SecretStr:
        """The access token; `NoToken` when none is configured."""
        token = self.settings.access_token()
        if token is None:
            raise NoToken()
        return token


def targets(settings: Settings, only: Sequence[str] = ()) -> list[Target]:
    """The enabled targets (or the ones named), each with its configuration problem if any."""
    found = []
    for name, target in sorted(settings.targets.items()):
        if (only and name not in only) or (not only and not target.enabled):
            continue
        problem = _server_problem(name, target)
        try:
            if problem is None and target.access_token() is None:
                problem = (
                    f"no access token: set NEWSBOT_TARGETS__{name.upper()}__TOKEN "
                    f"or targets.{name}.token_file"
                )
        except OSError as exc:
            problem = problem or f"cannot read targets.{name}.token_file: {exc.strerror}"
        found.append(Target(name, target, problem))
    return found


def _server_problem(name: str, target: TargetSettings) -> str | None:
    """A server address that is an API or profile address: every request would get a 404.

    ``https://mastodon.example/api/v1/`` or ``https://mastodon.example/@news`` is
    a mistake: the API's paths are added to the server's address. Any other path
    stays allowed: Friendica, for one, may be installed in a subfolder, and its
    API is then under it.
    """
    parts = urlsplit(str(target.server))
    segments = [segment for segment in parts.path.split("/") if segment]
    if not any(segment == "api" or segment.startswith("@") for segment in segments):
        return None
    return (
        f"targets.{name}.server has a path ({parts.path}) that is an API or profile address: "
        f"the API's paths are added to the server's, so set it to {server_root(target)}"
    )


def server_root(target: TargetSettings) -> str:
    """The target's server as logs show it: scheme, host and port, never a user or password."""
    parts = urlsplit(str(target.server))
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"


def fingerprint(settings: TargetSettings) -> str:
    """A digest of a target's settings (its token masked, as in every dump): a pass's mark
    (`newsbot.state.pass_marks`) holds only under the settings it was made with."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:32]
