"""The actor's RSA key: generated once and kept in the state database, or read from a file.

Every replica signs with the same key, so it lives where they all look: the
``ap_keys`` table (the first process to start inserts it; the others read
the winner's), or a PEM file given as ``activitypub.key_file`` (a container
secret). The private key is never logged, shown or put into an error.

Rotation: write the new PEM to ``activitypub.key_file`` (or delete the
``ap_keys`` row so that a new key is generated) and restart. The actor
document then carries the new public key; remote servers refetch it when a
signature stops verifying with the key they cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsbot.errors import NewsbotError
from newsbot.state.actor_keys import store_key, stored_private_pem
from newsbot.state.database import Engine

KEY_BITS = 2048
"""What Mastodon generates and verifies; larger keys only make every signature slower."""


class KeyUnusable(NewsbotError):
    """The actor's key cannot be read (the message never holds the key)."""


@dataclass(frozen=True)
class ActorKey:
    """The private key and its public half as PEM (the only part ever shown)."""

    private: rsa.RSAPrivateKey = field(repr=False)
    public_pem: str

    @classmethod
    def from_private_pem(cls, pem: bytes) -> ActorKey:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise KeyUnusable("the actor key is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyUnusable("the actor key must be RSA (Mastodon verifies only RSA)")
        return cls(key, public_pem(key.public_key()))

    def __repr__(self) -> str:
        return "ActorKey(<private>)"


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate() -> ActorKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return ActorKey(key, public_pem(key.public_key()))


def load_key(engine: Engine, now: datetime, key_file: Path | None = None) -> ActorKey:
    """The actor's key: from ``key_file`` when given, else the database's (made on first use)."""
    if key_file is not None:
        try:
            return ActorKey.from_private_pem(key_file.read_bytes())
        except OSError as exc:
            raise KeyUnusable(
                f"cannot read activitypub.key_file {key_file}: {exc.strerror}"
            ) from None
    stored = stored_private_pem(engine)
    if stored is not None:
        return ActorKey.from_private_pem(stored.encode("ascii"))
    made = generate()
    pem = made.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    if not store_key(engine, pem, made.public_pem, now):  # another replica stored its key first
        stored = stored_private_pem(engine)
        assert stored is not None
        return ActorKey.from_private_pem(stored.encode("ascii"))
    return made
