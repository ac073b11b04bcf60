"""The actor's key row: one RSA key, written by the first replica to start, read by the rest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from newsbot.state.schema import ap_keys

KEY_NAME = "main"


def stored_pems(engine: Engine) -> tuple[str, str] | None:
    """The stored key's private and public PEM, or None before the first start."""
    with engine.connect() as conn:
        found = conn.execute(
            select(ap_keys.c.private_pem, ap_keys.c.public_pem).where(ap_keys.c.name == KEY_NAME)
        ).one_or_none()
    return None if found is None else (str(found[0]), str(found[1]))


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
