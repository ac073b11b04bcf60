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
from datetime import UTC, datetime
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
            self.received.append(Received(request.url.path, json.loads(body), key_id, headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        return Response(status_code=self.status)

    def of_type(self, kind: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.activity.get("type") == kind]
