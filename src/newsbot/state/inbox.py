"""Activities received at the actor's inbox: stored before the 202, processed after."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from newsbot.state.schema import ap_inbox


@dataclass(frozen=True, slots=True)
class Received:
    id: int
    actor: str
    body: str


class InboxRows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def store(self, activity_id: str | None, actor: str, kind: str, body: str, at: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(ap_inbox).values(
                activity_id=activity_id, actor=actor, type=kind[:50], body=body, received=at,
            ))  # fmt: skip

    def unprocessed(self, limit: int) -> list[Received]:
        """The oldest stored activities not yet acted on."""
        query = (
            select(ap_inbox.c.id, ap_inbox.c.actor, ap_inbox.c.body)
            .where(ap_inbox.c.processed.is_(None))
            .order_by(ap_inbox.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Received(r.id, r.actor, r.body) for r in conn.execute(query)]

    def processed(self, row_id: int, at: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(ap_inbox).where(ap_inbox.c.id == row_id).values(processed=at))
