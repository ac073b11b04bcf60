"""The actor's followers: who they are, and the one inbox per server that activities go to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from newsbot.state.followers import FollowerRows


@dataclass(frozen=True, slots=True)
class Follower:
    actor: str
    inbox: str
    shared_inbox: str | None
    follow_id: str | None

    @property
    def delivery_inbox(self) -> str:
        """One delivery per server: its shared inbox when it has one."""
        return self.shared_inbox or self.inbox


def host_of(url: str) -> str:
    """``host[:port]`` of a URL, lower case: the unit of breakers, limits and statistics."""
    return httpx.URL(url).netloc.decode("ascii").lower()


class Followers(FollowerRows):
    """The follower rows, keyed by the actor's host (counted by server, never by inbox)."""

    def add(self, follower: Follower, now: datetime) -> None:
        """Store (or refresh) a follower; a second Follow from one actor replaces the first."""
        self.store(follower.actor, follower.inbox, follower.shared_inbox, follower.follow_id,
                   host_of(follower.actor), now)  # fmt: skip
