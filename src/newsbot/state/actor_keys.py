"""The actor's key row: one RSA key, written by the first replica to start, read by the rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from newsbot.state.schema import ap_keys

KEY_NAME = "main"


def stored_private_pem(engine: Engine) -> str | None:
    """The stored private key (PEM), or None before the first start."""
    with engine.connect() as conn:
        found = conn.execute(
            select(ap_keys.c.private_pem).where(ap_keys.c.name == KEY_NAME)
        ).scalar_one_or_none()
    return None if found is None else str(found)


def store_key(engine: Engine, private_pem: str, public_pem: str, now: datetime) -> bool:
    """Store a freshly made key; False when another replica stored its own first."""
    try:
        with engine.begin() as conn:
            conn.execute(
                ap_keys.insert().values(
                    name=KEY_NAME,
                    private_pem=private_pem,
                    public_pem=public_pem,
                    created=int(now.timestamp()),
                )
            )
    except IntegrityError:
        return False
    return True
