"""A remote fediverse server on loopback for the ActivityPub tests: actors with keys, inboxes.

It serves actor documents (with their RSA public keys) at
``http://127.0.0.1:PORT/users/NAME`` and inboxes that check every POST's
signature and digest before recording it, as Mastodon does. Its actors sign
the requests they send to newsbot with the same cavage scheme.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from newsbot.activitypub.keys import ActorKey, generate
from newsbot.activitypub.signatures import Incoming, SignatureRejected, Signer, key_id_of, verify
from newsbot.web.server import WebServer


@dataclass
class Received:
    inbox: str
    activity: dict[str, Any]
    key_id: str
    headers: dict[str, str]
    status: int = 202
    """What the inbox answered: a server answering an error keeps nothing."""


@dataclass
class RemoteServer:
    """Actors and inboxes on one loopback port; ``received`` holds verified POSTs."""

    key: ActorKey = field(default_factory=generate)
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    signed_fetches: int = 0
    """Paths of the documents fetched from this server."""
    status: int = 202
    delay: float = 0.0
    """Seconds each inbox POST takes to answer (after it is recorded)."""
    shared_inbox: bool = False
    public_keys: dict[str, str] = field(default_factory=dict)
    """keyId -> PEM of the senders whose signatures this server accepts (fetched on first use)."""
    answers: dict[str, list[Response]] = field(default_factory=dict)
    """Per actor name, the answers given (one a fetch, in order) before its document is served:
    a server that is down for a while, or one whose actor is gone."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        app = Starlette(routes=[
            Route("/users/{name}", self._actor),
            Route("/users/{name}/inbox", self._inbox, methods=["POST"]),
            Route("/inbox", self._inbox, methods=["POST"]),
        ])  # fmt: skip
        self.server = WebServer(app, "127.0.0.1", 0)
        self.base = self.server.url

    def __enter__(self) -> RemoteServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(5)

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def signer(self, name: str) -> Signer:
        return Signer(self.actor_id(name) + "#main-key", self.key, lambda: datetime.now(UTC))

    async def _actor(self, request: Request) -> Response:
        actor = self.actor_id(request.path_params["name"])
        with self.lock:
            self.fetched.append(request.url.path)
            self.signed_fetches += "signature" in request.headers
            waiting = self.answers.get(request.path_params["name"])
            if waiting:
                return waiting.pop(0)
        doc: dict[str, Any] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor,
            "type": "Person",
            "preferredUsername": request.path_params["name"],
            "inbox": actor + "/inbox",
            "publicKey": {"id": actor + "#main-key", "owner": actor,
                          "publicKeyPem": self.key.public_pem},
        }  # fmt: skip
        if self.shared_inbox:
            doc["endpoints"] = {"sharedInbox": self.base + "/inbox"}
        return JSONResponse(doc, media_type="application/activity+json")

    async def _inbox(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        incoming = Incoming("POST", str(request.url), headers, body)
        try:
            key_id, _ = key_id_of(incoming)
            if key_id not in self.public_keys:
                async with httpx.AsyncClient(trust_env=False) as client:
                    doc = (
                        await client.get(
                            key_id.split("#")[0], headers={"Accept": "application/activity+json"}
                        )
                    ).json()
                self.public_keys[key_id] = doc["publicKey"]["publicKeyPem"]
            verify(incoming, self.public_keys[key_id], datetime.now(UTC))
        except (SignatureRejected, KeyError, ValueError, httpx.HTTPError) as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return Response(status_code=401)
        with self.lock:
            status = self.status
            self.received.append(
                Received(request.url.path, json.loads(body), key_id, headers, status)
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        return Response(status_code=status)

    def of_type(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.activity.get("type") == kind]

    def notes(self, now: datetime) -> dict[str, str]:
        """What a Mastodon server that received ``received`` shows: each note's content, by id.

        Its rules, from Mastodon's ``ActivityPub::Activity`` classes: a ``Create``
        of a note it has, or deleted, is ignored; a ``Delete`` leaves a tombstone
        that refuses a later ``Create``; an ``Update`` replaces a note it has when
        the ``updated`` is later, and one of a note it never had is dropped
        (before 4.4.5 always; from 4.5.1 when the note was published over a day
        ago, as any note is whose ``Create`` was given up after the days of tries;
        4.4.5 to 4.5.0 take it as the ``Create``, at any age).
        """
        shown: dict[str, dict[str, Any]] = {}
        tombstones: set[str] = set()
        with self.lock:
            activities = [r.activity for r in self.received if 200 <= r.status < 300]
        for activity in activities:
            obj = activity.get("object")
            note_id = obj.get("id") if isinstance(obj, dict) else obj
            if not isinstance(note_id, str):
                continue
            kind = activity.get("type")
            if kind == "Delete":
                tombstones.add(note_id)
                shown.pop(note_id, None)
            elif not isinstance(obj, dict) or note_id in tombstones:
                continue
            elif kind == "Create" and note_id not in shown:
                shown[note_id] = obj
            elif kind == "Update" and note_id in shown:
                if _when(obj, "updated") > _when(shown[note_id], "updated"):
                    shown[note_id] = obj
            elif kind == "Update" and _when(obj, "published") > now - timedelta(days=1):
                shown[note_id] = obj  # out of order: taken as its Create (Mastodon 4.5.1+)
        return {note_id: str(obj.get("content")) for note_id, obj in shown.items()}


def _when(obj: dict[str, Any], key: str) -> datetime:
    """A note's ``updated`` (or ``published``) time; its ``published`` when it has no such key."""
    value = obj.get(key) or obj.get("published")
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
