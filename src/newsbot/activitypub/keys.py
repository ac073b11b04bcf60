"""The actor's RSA key: generated once and kept in the state database, or read from a file.

Every replica signs with the same key, so it lives where they all look: the
``ap_keys`` table (the first process to start inserts it; the others read
the winner's), or a PEM file given as ``activitypub.key_file`` (a container
secret). The private key is never logged, shown or put into an error.

Rotation: write the new PEM to ``activitypub.key_file`` (or delete the
``ap_keys`` row so that a new key is generated) and restart. The actor
document then carries the new public key; remote servers refetch it when a
signature stops verifying with the key they cached.

The key is kept as PEM and parsed with the first signature: cryptography
(~8 MB of a process at rest) loads only once something is signed. A key that
must be parsed at start (read from a file, or made on the first start) is
parsed in a child process (`newsbot.forked`), which hands back its PEMs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from newsbot.errors import NewsbotError
from newsbot.forked import Child
from newsbot.state.actor_keys import store_key, stored_pems
from newsbot.state.database import Engine

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

KEY_BITS = 2048
"""What Mastodon generates and verifies; larger keys only make every signature slower."""


class KeyUnusable(NewsbotError):
    """The actor's key cannot be read (the message never holds the key)."""


@dataclass(frozen=True)
class ActorKey:
    """The private key as PEM, and its public half (the only part ever shown)."""

    private_pem: bytes = field(repr=False)
    public_pem: str

    @classmethod
    def from_private_pem(cls, pem: bytes) -> ActorKey:
        """The key of ``pem``, checked: an unencrypted RSA private key."""
        return cls(pem, public_pem(_parse(pem).public_key()))

    @cached_property
    def private(self) -> rsa.RSAPrivateKey:
        """The parsed private key, on first use (see the module's docstring)."""
        return _parse(self.private_pem)

    def __repr__(self) -> str:
        return "ActorKey(<private>)"


def _parse(pem: bytes) -> rsa.RSAPrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyUnusable("the actor key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyUnusable("the actor key must be RSA (Mastodon verifies only RSA)")
    return key


def public_pem(key: rsa.RSAPublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate() -> ActorKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ActorKey(pem, public_pem(key.public_key()))


def load_key(engine: Engine, now: datetime, key_file: Path | None = None) -> ActorKey:
    """The actor's key: from ``key_file`` when given, else the database's (made on first use)."""
    if key_file is None:
        stored = stored_pems(engine)
        if stored is not None:
            return ActorKey(stored[0].encode("ascii"), stored[1])
    key = Child[ActorKey]("actor key").run(partial(_read_or_make, key_file))
    if key_file is not None:
        return key
    if not store_key(engine, key.private_pem.decode("ascii"), key.public_pem, now):
        stored = stored_pems(engine)  # another replica stored its key first
        assert stored is not None
        return ActorKey(stored[0].encode("ascii"), stored[1])
    return key


def _read_or_make(key_file: Path | None) -> ActorKey:
    """In a child: the key of ``key_file``, or a new one (only its PEMs come back)."""
    if key_file is not None:
        try:
            return ActorKey.from_private_pem(key_file.read_bytes())
        except OSError as exc:
            raise KeyUnusable(
                f"cannot read activitypub.key_file {key_file}: {exc.strerror}"
            ) from None
    return generate()
