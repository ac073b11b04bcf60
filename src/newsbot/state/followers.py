"""The actor's followers, as rows: who, where their server wants activities, which Follow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from newsbot.state.schema import ap_followers


class FollowerRows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def store(self, actor: str, inbox: str, shared_inbox: str | None, follow_id: str | None,
              host: str, now: datetime) -> None:  # fmt: skip
        """Store (or refresh) a follower; a second Follow from one actor replaces the first."""
        values = {"inbox": inbox, "shared_inbox": shared_inbox, "follow_id": follow_id,
                  "host": host}  # fmt: skip
        with self.engine.begin() as conn:
            done = conn.execute(
                update(ap_followers).where(ap_followers.c.actor == actor).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(ap_followers).values(actor=actor, created=int(now.timestamp()), **values)
                )

    def remove(self, actor: str, follow_id: str | None = None) -> int:
        """Remove the actor (only its row with that Follow id, when given); how many went.

        Always within the actor: a Follow id names nobody else's row, so an
        Undo signed by one actor cannot remove another who followed.
        """
        match = ap_followers.c.actor == actor
        if follow_id is not None:
            match = and_(ap_followers.c.follow_id == follow_id, match)
        with self.engine.begin() as conn:
            return conn.execute(delete(ap_followers).where(match)).rowcount

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ap_followers)).scalar_one())

    def by_host(self) -> dict[str, int]:
        query = select(ap_followers.c.host, func.count()).group_by(ap_followers.c.host)
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def page(self, offset: int, limit: int) -> list[str]:
        query = (
            select(ap_followers.c.actor)
            .order_by(ap_followers.c.created.desc(), ap_followers.c.actor)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())


def delivery_inboxes(conn: Connection) -> list[str]:
    """Every distinct inbox that an activity to all followers goes to (shared inboxes once)."""
    inbox = func.coalesce(ap_followers.c.shared_inbox, ap_followers.c.inbox)
    return list(conn.execute(select(inbox).distinct()).scalars())
