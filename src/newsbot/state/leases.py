"""Leases: a named lock in the database, so that one process at a time does a job.

Several copies of newsbot may share one database (two replicas on one
PostgreSQL); a publish pass for a target must never run twice at once. A
lease has an owner and an expiry: a crashed holder's lease simply runs out.
Taking one is a single conditional write, which both SQLite and PostgreSQL
make atomic.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from newsbot.state.deliveries import ts
from newsbot.state.schema import leases


class Leases:
    """Take, renew and give back named leases."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    def acquire(self, name: str, now: datetime, ttl: timedelta) -> bool:
        """Take ``name`` if it is free, expired, or already ours; returns whether we hold it."""
        expires = ts(now + ttl)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(
                    leases.c.name == name,
                    (leases.c.expires_at < ts(now)) | (leases.c.owner == self.owner),
                )
                .values(owner=self.owner, expires_at=expires)
            )
            if taken.rowcount:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, owner=self.owner, expires_at=expires))
        except IntegrityError:
            return False
        return True

    def release(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == self.owner))
