"""Wiring of the actor for the service: key, documents, outbox, inbox, worker, routes.

Built once by ``newsbot run`` when ``activitypub.enabled``; nothing here runs
at import. The service calls :meth:`Federation.sync` after each build,
starts and stops the delivery worker, and serves :meth:`Federation.routes`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from newsbot.activitypub.addresses import Resolver, guarded_client, system_resolver
from newsbot.activitypub.deliveries import DeliveryStore, Outcome
from newsbot.activitypub.documents import Actor
from newsbot.activitypub.followers import Followers
from newsbot.activitypub.inbox import HostLimiter, Inbox
from newsbot.activitypub.keys import load_key
from newsbot.activitypub.outbox import Outbox, SyncReport
from newsbot.activitypub.remote import RemoteActors
from newsbot.activitypub.routes import ActivityPubRoutes, NegotiatedNotes
from newsbot.activitypub.signatures import Signer
from newsbot.articles import Article
from newsbot.settings import RelatedPolicy, Settings
from newsbot.state.ap_deliveries import GIVEN_UP
from newsbot.state.database import Engine
from newsbot.state.inbox import GIVEN_UP as GIVEN_UP_INBOX
from newsbot.state.inbox import WAITING
from newsbot.state.leases import Lease, Leases
from newsbot.state.owner_files import OwnerFiles

if TYPE_CHECKING:
    from newsbot.activitypub.worker import DeliveryWorker

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RELATED_LINKS = 3
SYNC_LEASE = "activitypub:sync"
SYNC_LEASE_TTL = timedelta(minutes=1)
"""Renewed every few seconds while a sync runs; a holder that vanished frees it after this long."""
SYNC_LEASE_POLL_SECONDS = 0.5


def store_trusted(engine: Engine) -> Callable[[], bool]:
    """The edit/delete guard of posts: nothing is updated or deleted while the store is suspect."""
    from newsbot.state import suspect

    return lambda: suspect.load(engine) is None


class Federation:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        owner: str,
        clock: Clock = lambda: datetime.now(UTC),
        resolver: Resolver = system_resolver,
        may_change: Callable[[], bool] | None = None,
        observe: Callable[[Outcome], None] = lambda _outcome: None,
        files: OwnerFiles | None = None,
    ) -> None:
        ap = settings.activitypub
        self.settings = ap
        self.engine = engine
        self.clock = clock
        self._resolver = resolver
        self._tls = httpx.create_ssl_context()
        key = load_key(engine, clock(), ap.key_file)
        self.actor = Actor(
            base_url=str(settings.site.base_url),
            username=ap.username,
            name=ap.name or settings.site.title,
            summary=ap.summary or settings.site.description,
            public_pem=key.public_pem,
            language=settings.site.language,
            icon=None if ap.icon is None else str(ap.icon),
        )
        self.signer = Signer(self.actor.key_id, key, clock)
        self.followers = Followers(engine)
        self.outbox = Outbox(
            engine,
            self.actor,
            related=self._related_finder(
                engine, timedelta(hours=ap.backlog_max_age_hours), settings.site.related_policy
            ),
            may_change=store_trusted(engine) if may_change is None else may_change,
            backlog=timedelta(hours=ap.backlog_max_age_hours),
        )
        self.deliveries = DeliveryStore(
            engine,
            breaker_failures=ap.breaker_failures,
            dead_after=timedelta(days=ap.dead_after_days),
            max_tries=ap.max_tries,
            files=files,
        )
        self.remote = RemoteActors(
            self._client(ap.concurrency),
            clock,
            allow_private=ap.allow_private_addresses,
            sign=self.signer if ap.signed_fetch else None,
        )
        self._owner = owner
        self._observe = observe
        self._worker: DeliveryWorker | None = None
        self._worker_lock = threading.Lock()
        self._started = False
        self.inbox = Inbox(
            engine,
            self.remote,
            self.outbox,
            clock,
            allow_private=ap.allow_private_addresses,
            limiter=HostLimiter(ap.inbox_requests_per_minute),
            owner=owner,
            max_tries=ap.max_tries,
            lease=self._inbox_lease(),
            on_queued=self.deliver,
            files=files,
        )
        self._routes = ActivityPubRoutes(self)
        self._syncing = threading.Lock()
        self._sync_lease = Lease(Leases(engine, owner, files), SYNC_LEASE, SYNC_LEASE_TTL, clock)
        self._stopping = threading.Event()

    def _inbox_lease(self) -> timedelta:
        """How long a claimed inbox row is held: its fetches' timeouts, with room to spare."""
        return timedelta(seconds=max(60.0, self.settings.timeout * 4))

    def _client(self, max_connections: int) -> httpx.AsyncClient:
        return guarded_client(
            allow_private=self.settings.allow_private_addresses,
            resolver=self._resolver,
            timeout=self.settings.timeout,
            max_connections=max_connections,
            tls=self._tls,
        )

    @staticmethod
    def _related_finder(
        engine: Engine, backlog: timedelta, policy: RelatedPolicy
    ) -> Callable[[Article, datetime], Sequence[Article]]:
        """A note's related links: the article's stored list under the site's policy, as the
        pages and posts show.

        Only an article recent enough to be delivered gets its list searched when
        the build has not stored one yet (the build's related budget ran out);
        an older one keeps the stored list, possibly none. Searching for every
        article made the first sync of a large store take a search per article
        (minutes at 10,000 articles).
        """
        from newsbot.state.related import RelatedFinder
        from newsbot.state.related_lists import RelatedLists

        lists = RelatedLists(RelatedFinder(engine))

        def related(article: Article, now: datetime) -> Sequence[Article]:
            if article.published >= now - backlog:
                return lists.related(article, RELATED_LINKS, now, policy)
            return lists.lookup(article, RELATED_LINKS, now, policy)

        return related

    def routes(self) -> Sequence[BaseRoute]:
        return self._routes.routes()

    async def close_routes(self) -> None:
        """Close what the routes opened on the web server's loop (the fetches' connections).

        Run by the web server as it shuts down, on its own loop: uvloop refuses
        to close a loop on which a connection is still open.
        """
        await self.remote.close()

    def middleware(self) -> list[Middleware]:
        return [Middleware(NegotiatedNotes, routes=self._routes)]

    def sync(self) -> SyncReport:
        """Queue the activities of what changed in the store; wake the worker.

        One sync at a time, in a process (after a build and on the schedule)
        and across the copies sharing the database (a lease; a sync waits for
        another copy's to end, then queues what that one left): copies syncing
        at once each found the same articles new and collided on their notes,
        and the loser logged its failure; an article published again after a
        deletion got a Create from each.
        """
        with self._syncing:
            if not self._hold_sync_lease():
                return SyncReport()
            try:
                with self._sync_lease.renewed():
                    report = self.outbox.sync(self.clock())
            finally:
                self._sync_lease.release()
        for kind, count in (("Create", report.created), ("Update", report.updated),
                            ("Delete", report.deleted)):  # fmt: skip
            if count:
                log.info("activities queued", extra={"type": kind, "count": count,
                                                      "deliveries": report.deliveries})  # fmt: skip
        if report.held:
            log.warning("%d edits or deletions held back by the store guard", report.held)
        if report.deliveries or (
            self._worker is None and self.deliveries.oldest_pending() is not None
        ):  # queued here, or by another replica that may have stopped
            self.deliver()
        return report

    async def process_inbox(self) -> None:
        await self.inbox.process()

    def process_leftovers(self) -> int:
        """Handle stored activities that are due (from a scheduler thread): those a crash left
        unprocessed, and those waiting to be tried again after a transient failure.

        Each row is claimed, so the web server's own processing and other
        replicas take other rows.
        """

        async def run() -> int:
            async with self._client(4) as http:
                remote = RemoteActors(
                    http, self.clock, allow_private=self.settings.allow_private_addresses,
                    sign=self.signer if self.settings.signed_fetch else None,
                )  # fmt: skip
                inbox = Inbox(
                    self.engine, remote, self.outbox, self.clock,
                    allow_private=self.settings.allow_private_addresses,
                    limiter=self.inbox.limiter, owner=self._owner,
                    max_tries=self.settings.max_tries, lease=self._inbox_lease(),
                    on_queued=self.deliver, files=self.inbox.rows.files,
                )  # fmt: skip
                return await inbox.process()

        return asyncio.run(run())

    def start(self) -> None:
        """Start delivering if anything waits to be delivered (left by an earlier run)."""
        self._started = True
        if self.deliveries.oldest_pending() is not None:
            self.deliver()

    def deliver(self) -> None:
        """Rows were queued: deliver them now, starting the worker on the first call.

        The worker (its thread, loop and aiohttp session) starts only once there
        is something to deliver: an actor nobody follows never loads aiohttp.
        """
        with self._worker_lock:
            if not self._started:
                return  # not started yet, or stopped: `start` looks for pending rows
            if self._worker is None:
                self._worker = self._make_worker()
                self._worker.start()
            worker = self._worker
        worker.wake()

    def _make_worker(self) -> DeliveryWorker:
        from newsbot.activitypub.sessions import guarded_session
        from newsbot.activitypub.worker import DeliveryWorker

        ap = self.settings
        return DeliveryWorker(
            self.deliveries,
            lambda: guarded_session(
                allow_private=ap.allow_private_addresses,
                resolver=self._resolver,
                timeout=ap.timeout,
                max_connections=ap.concurrency,
                per_host=ap.per_host_concurrency,
                tls=self._tls,
            ),
            self.signer,
            owner=self._owner,
            clock=self.clock,
            concurrency=ap.concurrency,
            per_host=ap.per_host_concurrency,
            lease=timedelta(seconds=max(10.0, ap.timeout * 3)),
            observe=self._observe,
        )

    def _hold_sync_lease(self) -> bool:
        """Wait for the sync lease; False if the service stops meanwhile."""
        return self._sync_lease.wait(
            self._stopping,
            SYNC_LEASE_POLL_SECONDS,
            lambda holder: log.debug(
                "waiting for another process to finish its ActivityPub sync",
                extra={"holder": holder},
            ),
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop delivering, waiting up to ``timeout`` for the worker to end (0: only tell it)."""
        self._stopping.set()
        with self._worker_lock:
            self._started = False
            worker = self._worker
        if worker is not None:
            worker.stop(timeout)

    def health(self) -> dict[str, Any]:
        """Delivery and inbox health for ``/readyz``, ``/metrics`` and the status page.

        What waits for a retry and what was given up (deliveries, and received
        activities such as a Follow whose sender could not be reached) are
        counted apart: those given up wait for the operator (``newsbot requeue``).
        """
        counts = self.deliveries.counts()
        inbox = self.inbox.rows.counts()
        oldest = self.deliveries.oldest_pending()
        now = self.clock()
        return {
            "actor": self.actor.acct,
            "followers": self.followers.count(),
            "deliveries": counts,
            "pending": counts.get("pending", 0) + counts.get("sending", 0),
            "given_up": sum(counts.get(state, 0) for state in GIVEN_UP),
            "inbox": inbox,
            "inbox_waiting": inbox.get(WAITING, 0),
            "inbox_given_up": inbox.get(GIVEN_UP_INBOX, 0),
            "oldest_pending_seconds": None if oldest is None else int(now.timestamp()) - oldest,
            "paused_hosts": len(self.deliveries.paused_hosts(now)),
            "dead_hosts": self.deliveries.dead_hosts(),
            "worker_running": self._worker is not None and self._worker.running,
        }
