"""The HTTP side of the actor: discovery, documents, the inbox, and notes by negotiation.

Documents are served as ``application/activity+json`` to any request whose
Accept names activity+json or ld+json (Mastodon's compound header included);
the actor is served to anyone, signed or not, since servers fetch it to
verify our signatures. With ``require_signed_fetch`` the other documents
need a valid signature (Mastodon's secure mode). An article's own URL,
asked for with such an Accept, answers with its Note (or 410 and a
Tombstone once withdrawn).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from newsbot.activitypub import documents
from newsbot.activitypub.documents import ACTIVITY_JSON, JRD
from newsbot.activitypub.inbox import Rejected
from newsbot.activitypub.remote import FetchFailed
from newsbot.activitypub.signatures import Incoming, SignatureRejected, key_id_of, verify

if TYPE_CHECKING:
    from newsbot.activitypub.federation import Federation

log = logging.getLogger(__name__)


class ActivityJSON(JSONResponse):
    media_type = ACTIVITY_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def wants_activity(accept: str) -> bool:
    accept = accept.lower()
    return "application/activity+json" in accept or "application/ld+json" in accept


class ActivityPubRoutes:
    def __init__(self, federation: Federation) -> None:
        self.f = federation
        self.actor = federation.actor

    def routes(self) -> Sequence[BaseRoute]:
        base = "/" + self.actor.id.split("/", 3)[3]
        return [
            Route("/.well-known/webfinger", self.webfinger),
            Route("/.well-known/host-meta", self.host_meta),
            Route("/.well-known/nodeinfo", self.nodeinfo_links),
            Route("/nodeinfo/2.1", self.nodeinfo),
            Route(base, self.actor_document),
            Route(base + "/inbox", self.inbox, methods=["POST"]),
            Route("/ap/inbox", self.inbox, methods=["POST"]),
            Route(base + "/outbox", self.outbox),
            Route(base + "/followers", self.followers),
            Route(base + "/following", self.following),
            Route("/ap/notes/{article_id:path}", self.note),
            Route("/ap/activities/{kind}/{digest}", self.activity),
        ]

    # -- discovery ----------------------------------------------------------------

    async def webfinger(self, request: Request) -> Response:
        resource = request.query_params.get("resource", "").strip()
        if resource.startswith("acct:"):
            name, _, host = resource[5:].lstrip("@").partition("@")
            if not name or not host:
                return PlainTextResponse("resource: acct:NAME@HOST", status_code=400)
            # Mastodon asks with the host alone; a person may type the port too.
            hosts = (self.actor.host, self.actor.netloc)
            if name.lower() != self.actor.username.lower() or host.lower() not in hosts:
                return PlainTextResponse("no such account", status_code=404)
        elif resource.startswith(("https://", "http://")):
            if resource not in (self.actor.id, self.actor.base_url):
                return PlainTextResponse("no such account", status_code=404)
        else:
            return PlainTextResponse("resource must be acct: or an http(s) URL", status_code=400)
        return JSONResponse(documents.webfinger(self.actor), media_type=JRD,
                            headers={"Access-Control-Allow-Origin": "*"})  # fmt: skip

    async def host_meta(self, _request: Request) -> Response:
        return Response(documents.host_meta(self.actor), media_type="application/xrd+xml")

    async def nodeinfo_links(self, _request: Request) -> Response:
        return JSONResponse(documents.nodeinfo_links(self.actor))

    async def nodeinfo(self, _request: Request) -> Response:
        from newsbot import __version__

        posts = self.f.outbox.total()
        return JSONResponse(
            documents.nodeinfo(__version__, posts),
            media_type=f'application/json; profile="{documents.NODEINFO_SCHEMA}#"',
        )

    # -- documents ----------------------------------------------------------------

    async def actor_document(self, request: Request) -> Response:
        if not wants_activity(request.headers.get("accept", "")):
            return Response(status_code=302, headers={"Location": self.actor.base_url})
        return ActivityJSON(documents.actor_document(self.actor))

    async def outbox(self, request: Request) -> Response:
        if denied := await self._signed_fetch(request):
            return denied
        page = request.query_params.get("page")
        if page is None:
            first = f"{self.actor.outbox}?page=true"
            return ActivityJSON(
                documents.collection(self.actor.outbox, self.f.outbox.total(), first)
            )
        before = request.query_params.get("before")
        cursor = int(before) if before and before.isdigit() else None
        items, next_cursor = self.f.outbox.page(cursor, self.f.settings.outbox_page_size)
        this = f"{self.actor.outbox}?page=true" + (f"&before={cursor}" if cursor else "")
        next_page = (
            None if next_cursor is None else f"{self.actor.outbox}?page=true&before={next_cursor}"
        )
        return ActivityJSON(documents.collection_page(this, self.actor.outbox, items, next_page))

    async def followers(self, request: Request) -> Response:
        if denied := await self._signed_fetch(request):
            return denied
        total = self.f.followers.count()
        return ActivityJSON(documents.collection(self.actor.followers, total, None))

    async def following(self, _request: Request) -> Response:
        return ActivityJSON(documents.collection(self.actor.following, 0, None))

    async def note(self, request: Request) -> Response:
        if denied := await self._signed_fetch(request):
            return denied
        return self.note_response(unquote(request.path_params["article_id"]))

    def note_response(self, article_id: str) -> Response:
        found = self.f.outbox.note_by_id(article_id)
        if found is None:
            return PlainTextResponse("no such note", status_code=404)
        state, doc, deleted = found
        if state == "deleted":
            from datetime import UTC, datetime

            when = datetime.fromtimestamp(deleted or 0, UTC)
            return ActivityJSON(documents.tombstone(self.actor, article_id, when), status_code=410)
        return ActivityJSON({"@context": documents.CONTEXT, **doc})

    async def activity(self, request: Request) -> Response:
        if denied := await self._signed_fetch(request):
            return denied
        kind, digest = request.path_params["kind"], request.path_params["digest"]
        found = self.f.outbox.activity(f"{self.actor.base_url}ap/activities/{kind}/{digest}")
        if found is None:
            return PlainTextResponse("no such activity", status_code=404)
        return ActivityJSON(found)

    # -- inbox --------------------------------------------------------------------

    async def inbox(self, request: Request) -> Response:
        limit = self.f.settings.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return PlainTextResponse("body too large", status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return PlainTextResponse("body too large", status_code=413)
        incoming = self._incoming(request, body)
        try:
            await self.f.inbox.receive(incoming)
        except Rejected as exc:
            log.info("inbox refused a request: %s", exc.reason)
            return PlainTextResponse(exc.reason, status_code=exc.status)
        return Response(status_code=202, background=BackgroundTask(self.f.process_inbox))

    def _incoming(self, request: Request, body: bytes) -> Incoming:
        scheme = self.actor.base_url.split(":", 1)[0]
        host = request.headers.get("host", self.actor.netloc)
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"{scheme}://{host}{target}" + (f"?{query}" if query else "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        return Incoming(request.method, url, headers, body)

    async def _signed_fetch(self, request: Request) -> Response | None:
        """With ``require_signed_fetch``: 401 unless the GET carries a valid signature."""
        if not self.f.settings.require_signed_fetch:
            return None
        incoming = self._incoming(request, b"")
        try:
            key_id, _ = key_id_of(incoming)
            key = await self.f.remote.key(key_id)
            verify(incoming, key.public_pem, self.f.clock())
        except (SignatureRejected, FetchFailed) as exc:
            return PlainTextResponse(f"a signed request is required: {exc}", status_code=401)
        return None


class NegotiatedNotes:
    """ASGI middleware: an article's URL asked for as activity+json answers with its Note."""

    def __init__(self, app: ASGIApp, routes: ActivityPubRoutes) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            accept = ""
            for name, value in scope["headers"]:
                if name == b"accept":
                    accept = value.decode("latin-1")
            if wants_activity(accept) and not scope["path"].startswith("/ap/"):
                article_id = self.routes.f.outbox.article_at(scope["path"])
                if article_id is not None:
                    response = self.routes.note_response(article_id)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
