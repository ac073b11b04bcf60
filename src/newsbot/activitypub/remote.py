"""Remote actors and their keys, fetched through the address guard and cached.

A key is fetched from its ``keyId`` (usually the actor's URL with a
``#main-key`` fragment), and cached; when a signature fails with the cached
key, the inbox asks once more with ``refresh=True``, since the sender may
have rotated its key. The cache is bounded, so a flood of unknown actors
cannot grow it without end. A key proves only an actor on its own host, and
a standalone key document only the owner whose actor document names it, so
no server can sign for another's actors.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from newsbot.activitypub.addresses import BlockedAddress, check_literal
from newsbot.activitypub.deliveries import retry_after
from newsbot.activitypub.documents import ACTIVITY_JSON
from newsbot.activitypub.followers import host_of
from newsbot.errors import NewsbotError

ACCEPT = f'{ACTIVITY_JSON}, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
MAX_DOCUMENT_BYTES = 1_000_000
CACHE_SIZE = 10_000
CACHE_TTL = timedelta(hours=12)


RETRIED_STATUSES = frozenset({408, 429})
"""Answers below 500 that say "later", not "never" (what deliveries retry, but 401: a GET
refused for want of a signature stays refused)."""


class FetchFailed(NewsbotError):
    """A remote document could not be fetched or read.

    ``gone`` when it answered 410; ``transient`` when trying later may work
    (no connection, a timeout, 408, 429, 5xx; ``retry_after`` is when the
    server asked to be tried again), not when the document is missing, gone
    or not what was asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        gone: bool = False,
        transient: bool = False,
        retry_after: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.gone = gone
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RemoteKey:
    key_id: str
    owner: str
    public_pem: str


@dataclass(frozen=True, slots=True)
class RemoteActor:
    id: str
    inbox: str
    shared_inbox: str | None


class RemoteActors:
    """Fetches actor documents and keys; ``sign`` makes the GETs signed (authorized fetch)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime],
        *,
        allow_private: bool,
        sign: httpx.Auth | None = None,
    ) -> None:
        self._http = http
        self._clock = clock
        self._allow_private = allow_private
        self._sign = sign
        self._cache: OrderedDict[str, tuple[datetime, dict[str, Any]]] = OrderedDict()

    async def close(self) -> None:
        """Close the kept-alive connections, on the loop that opened them."""
        await self._http.aclose()

    async def document(self, url: str, *, refresh: bool = False) -> dict[str, Any]:
        url = url.split("#", 1)[0]
        now = self._clock()
        cached = self._cache.get(url)
        if cached is not None and not refresh and now - cached[0] < CACHE_TTL:
            self._cache.move_to_end(url)
            return cached[1]
        doc = await self._fetch(url)
        self._cache[url] = (now, doc)
        self._cache.move_to_end(url)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return doc

    async def key(self, key_id: str, *, refresh: bool = False) -> RemoteKey:
        """The key at ``key_id`` and its owner, who must be an actor on the key's own host.

        A document speaks only for its own host: one fetched from one server
        that names an actor of another is refused. A standalone key
        document's ``owner`` counts only when the owner's own document names
        that key (what Mastodon's FetchRemoteKeyService confirms).
        """
        doc = await self.document(key_id, refresh=refresh)
        _same_host(key_id, doc.get("id"))
        if "publicKey" in doc:
            actor, key = doc, _key_in(doc["publicKey"], key_id, exact=False)
        else:
            owner = doc.get("owner")
            if not isinstance(owner, str):
                raise FetchFailed(f"{key_id} names no owner")
            _same_host(key_id, owner)
            actor = await self.document(owner, refresh=refresh)
            _same_host(owner, actor.get("id"))
            own_id = doc.get("id")
            key = _key_in(actor.get("publicKey"), own_id if isinstance(own_id, str) else key_id,
                          exact=True)  # fmt: skip
            if key is None:
                raise FetchFailed(f"the owner of {key_id} does not name that key")
        if key is None:
            raise FetchFailed(f"{key_id} has no public key")
        owner = key.get("owner") or actor.get("id")
        if not isinstance(owner, str):
            raise FetchFailed(f"{key_id} names no owner")
        if owner != actor.get("id"):
            raise FetchFailed(f"the key {key_id} belongs to {owner}, not to {actor.get('id')}")
        return RemoteKey(key_id, owner, key["publicKeyPem"])

    async def actor(self, actor_id: str) -> RemoteActor:
        doc = await self.document(actor_id)
        if doc.get("id") != actor_id or not isinstance(doc.get("inbox"), str):
            raise FetchFailed(f"{actor_id} is not an actor with an inbox")
        endpoints = doc.get("endpoints")
        shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        return RemoteActor(actor_id, doc["inbox"], shared if isinstance(shared, str) else None)

    async def _fetch(self, url: str) -> dict[str, Any]:
        try:
            check_literal(url, self._allow_private)
            async with self._http.stream(
                "GET", url, headers={"Accept": ACCEPT}, auth=self._sign or httpx.USE_CLIENT_DEFAULT
            ) as response:
                status = response.status_code
                if status == 410:
                    raise FetchFailed(f"{url} is gone", gone=True)
                if status in RETRIED_STATUSES or status >= 500:
                    later = retry_after(response.headers.get("retry-after"), self._clock())
                    raise FetchFailed(f"{url} answered {status}", transient=True,
                                      retry_after=later)  # fmt: skip
                if status != 200:
                    raise FetchFailed(f"{url} answered {status}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise FetchFailed(f"{url} is too large")
        except BlockedAddress as exc:
            raise FetchFailed(str(exc)) from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchFailed(f"cannot fetch {url}: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:  # no connection, a timeout, a broken answer: later
            raise FetchFailed(f"cannot fetch {url}: {type(exc).__name__}", transient=True) from None
        try:
            doc = json.loads(body)
        except ValueError:
            raise FetchFailed(f"{url} is not JSON") from None
        if not isinstance(doc, dict):
            raise FetchFailed(f"{url} is not a JSON object")
        return doc


def _key_in(value: Any, key_id: str, *, exact: bool) -> dict[str, Any] | None:
    """The key ``key_id`` in an actor's ``publicKey`` (a lone key matches unless ``exact``)."""
    keys = value if isinstance(value, list) else [value]
    for key in keys:
        if not isinstance(key, dict) or not isinstance(key.get("publicKeyPem"), str):
            continue
        if key.get("id") == key_id or (not exact and not isinstance(value, list)):
            return key
    return None


def _same_host(fetched: str, claimed: Any) -> None:
    """Refuse a document fetched from one host that claims an id on another."""
    if claimed is None:
        return
    try:
        same = isinstance(claimed, str) and host_of(claimed) == host_of(fetched)
    except httpx.InvalidURL:
        same = False
    if not same:
        raise FetchFailed(f"{fetched} names {claimed!r}, an id on another host")
