"""The inbox: verify, store, answer 202; then act on what was stored.

Every POST must carry a valid HTTP signature (cavage or RFC 9421) by a key
whose owner is the activity's actor; the key is fetched (through the address
guard: a ``keyId`` on a private or loopback address is refused without being
fetched) and cached, and fetched again once if the signature fails, for a
sender that rotated its key. Bodies are bounded and each remote host gets a
bounded number of requests a minute. A verified activity is stored in
``ap_inbox`` before the 202, so processing survives a crash; processing then
handles Follow (store, queue a signed Accept), Undo{Follow}, Delete of an
actor, Block and Reject (the follower is removed), and ignores the rest.

The sender never sends a stored activity again, so one that cannot be
handled for a transient reason (the follower's actor document cannot be
fetched: no connection, a timeout, 408, 429, 5xx) is tried again later, on
the deliveries' schedule and bound (``retry_delay``, ``max_tries``); one whose
actor is missing, gone or not an actor is dropped at once. Each row is
claimed by one process at a time (:mod:`newsbot.state.inbox`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from newsbot.activitypub.addresses import BlockedAddress, check_literal
from newsbot.activitypub.deliveries import next_try
from newsbot.activitypub.followers import Follower, Followers, host_of
from newsbot.activitypub.outbox import Outbox
from newsbot.activitypub.remote import FetchFailed, RemoteActors
from newsbot.activitypub.signatures import Incoming, SignatureRejected, key_id_of, verify
from newsbot.state.database import Engine
from newsbot.state.inbox import InboxRows, Received
from newsbot.state.owner_files import OwnerFiles

log = logging.getLogger(__name__)

ORPHANS_EVERY_SECONDS = 30.0
"""How often processing looks for rows whose claimer was killed, as the delivery worker does."""

BATCH = 100
"""The most rows one call of `Inbox.process` handles (the rest wait for the next call)."""


class Rejected(Exception):
    """The request is refused with ``status`` (401 bad signature, 400 bad body, 429, 413)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HostLimiter:
    """At most ``per_minute`` requests per remote host in any minute (a token bucket)."""

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, host: str) -> bool:
        now = self._monotonic()
        tokens, at = self._buckets.get(host, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if len(self._buckets) > 50_000:
            self._buckets.clear()
        if tokens < 1:
            self._buckets[host] = (tokens, now)
            return False
        self._buckets[host] = (tokens - 1, now)
        return True


def _id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class Inbox:
    def __init__(
        self,
        engine: Engine,
        remote: RemoteActors,
        outbox: Outbox,
        clock: Callable[[], datetime],
        *,
        allow_private: bool,
        limiter: HostLimiter,
        owner: str,
        max_tries: int = 16,
        lease: timedelta = timedelta(minutes=1),
        on_queued: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
        files: OwnerFiles | None = None,
    ) -> None:
        self.rows = InboxRows(engine, max_tries=max_tries, files=files)
        self.owner = owner
        self.lease = lease
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._orphans_seen: float | None = None
        """When rows of killed claimers were last looked for (`ORPHANS_EVERY_SECONDS`)."""
        self.remote = remote
        self.outbox = outbox
        self.followers = Followers(engine)
        self.clock = clock
        self.allow_private = allow_private
        self.limiter = limiter
        self.on_queued = on_queued

    async def receive(self, request: Incoming) -> dict[str, Any]:
        """Verify and store one POST; raise `Rejected` to refuse it."""
        try:
            key_id, _scheme = key_id_of(request)
        except SignatureRejected as exc:
            raise Rejected(401, str(exc)) from None
        if not self.limiter.allow(host_of(key_id) if "://" in key_id else key_id):
            raise Rejected(429, "too many requests from this host")
        try:
            activity = json.loads(request.body)
        except ValueError:
            raise Rejected(400, "the body is not JSON") from None
        if not isinstance(activity, dict) or not isinstance(activity.get("type"), str):
            raise Rejected(400, "the body is not an activity")
        actor = _id(activity.get("actor"))
        if actor is None:
            raise Rejected(400, "the activity names no actor")
        try:
            check_literal(key_id, self.allow_private)
            check_literal(actor, self.allow_private)
        except BlockedAddress as exc:
            raise Rejected(401, f"refused: {exc}") from None
        await self._verified(request, key_id, actor, activity)
        self._store(activity, actor)
        return activity

    async def _verified(
        self, request: Incoming, key_id: str, actor: str, activity: dict[str, Any]
    ) -> None:
        now = self.clock()
        for refresh in (False, True):
            try:
                key = await self.remote.key(key_id, refresh=refresh)
            except FetchFailed as exc:
                if (
                    exc.gone
                    and activity.get("type") == "Delete"
                    and _id(activity.get("object")) == actor
                    and key_id.split("#", 1)[0] == actor
                ):
                    # A deleted actor's farewell: its key is gone with it (as Mastodon does).
                    # Only the actor's own address answering 410 proves it; a key elsewhere
                    # answering 410 would let anyone remove any follower.
                    return
                raise Rejected(401, f"cannot get the signer's key: {exc}") from None
            if key.owner != actor:
                raise Rejected(401, "the key's owner is not the activity's actor")
            try:
                verify(request, key.public_pem, now)
                return
            except SignatureRejected as exc:
                if refresh:
                    raise Rejected(401, str(exc)) from None

    def _store(self, activity: dict[str, Any], actor: str) -> None:
        self.rows.store(_id(activity.get("id")), actor, activity["type"], json.dumps(activity),
                        int(self.clock().timestamp()))  # fmt: skip

    async def process(self) -> int:
        """Act on the stored activities that are due, one claimed at a time; returns how many.

        A row is claimed under a lease (``lease`` covers the handling of one),
        so another process or task calling this at the same time takes other
        rows. Rows whose claimer is seen to be gone (killed) are taken at once.
        """
        seen = self._orphans_seen
        if seen is None or time.monotonic() - seen > ORPHANS_EVERY_SECONDS:
            # A killed claimer is rare; not a query per received activity.
            self.rows.release_orphans()
            self._orphans_seen = time.monotonic()
        tried = 0
        while tried < BATCH:
            claimed = self.rows.claim(self.owner, self.clock(), 1, self.lease)
            if not claimed:
                break
            row = claimed[0]
            tried += 1
            if row.tries > self.rows.max_tries:  # each claim so far ended without a finish
                log.warning("inbox: gave up on an activity from %s: never handled in %d tries",
                            host_of(row.actor), row.tries - 1)  # fmt: skip
                self.rows.give_up(row, self.clock(), "its handling never finished")
                continue
            try:
                await self._handle(row.actor, json.loads(row.body))
            except FetchFailed as exc:
                self._failed(row, exc)
            else:
                self.rows.processed(row, self.clock())
        return tried

    def _failed(self, row: Received, exc: FetchFailed) -> None:
        """Try a transient failure again later (a bounded number of times); drop any other."""
        host, now = host_of(row.actor), self.clock()
        later = next_try(row.tries, now, self.rng, exc.retry_after)
        if not exc.transient:
            log.warning("inbox: dropped an activity from %s: %s", host, exc)
            self.rows.processed(row, now, str(exc))
        elif self.rows.retry(row, now, str(exc), later):
            log.info("inbox: will try an activity from %s again (try %d failed): %s",
                     host, row.tries, exc)  # fmt: skip
        else:
            log.warning("inbox: gave up on an activity from %s after %d tries: %s",
                        host, row.tries, exc)  # fmt: skip

    async def _handle(self, actor: str, activity: dict[str, Any]) -> None:
        kind = activity.get("type")
        obj = activity.get("object")
        host = host_of(actor)
        if kind == "Follow" and _id(obj) in (self.outbox.actor.id,):
            remote = await self.remote.actor(actor)
            follow_id = _id(activity)
            self.followers.add(
                Follower(actor, remote.inbox, remote.shared_inbox, follow_id), self.clock()
            )
            accept_id = self.outbox.accept(activity, remote.inbox, self.clock())
            log.info("new follower", extra={"host": host, "activity": accept_id})
            self.on_queued()
        elif kind == "Undo" and isinstance(obj, dict) and obj.get("type") == "Follow":
            if self.followers.remove(actor):  # as Mastodon: the actor no longer follows
                log.info("follower left", extra={"host": host})
        elif kind == "Undo" and isinstance(obj, str):
            # The Follow named by its id, not embedded: it is undone only if it is the one stored.
            if self.followers.remove(actor, obj):
                log.info("follower left", extra={"host": host})
        elif kind == "Delete" and _id(obj) == actor:
            if self.followers.remove(actor):
                log.info("follower deleted", extra={"host": host})
        elif kind in ("Block", "Reject") and (
            _id(obj) == self.outbox.actor.id
            or (isinstance(obj, dict) and _id(obj.get("object")) == self.outbox.actor.id)
        ):
            if self.followers.remove(actor):
                log.info("follower removed by %s", kind, extra={"host": host})
