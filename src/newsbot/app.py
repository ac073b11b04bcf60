"""The composition root: the long-lived parts, built once from the settings.

Everything the service and the commands share is wired here, and only here:
the state database, the builder, the delivery store, the leases and a
:class:`~newsbot.publish.publisher.Publisher` per target with its HTTP
client. The posting code is imported only when a command asks for
publishers, so building feeds never loads it; what only the long-running
service has (the web server, health, metrics) is wired in
:mod:`newsbot.service`, so one-shot commands never import it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from newsbot.build.output import Output
from newsbot.errors import StoreError
from newsbot.settings import Settings
from newsbot.state.database import database_url, open_database
from newsbot.state.index import StoreIndex
from newsbot.store.scan import walk

if TYPE_CHECKING:
    import httpx

    from newsbot.articles import Article
    from newsbot.build.builder import Builder
    from newsbot.publish.publisher import Publisher
    from newsbot.publish.targets import Target
    from newsbot.settings import TargetSettings
    from newsbot.state.deliveries import DeliveryStore
    from newsbot.state.leases import Lease, Leases
    from newsbot.state.owner_files import OwnerFiles

PASS_LEASE_TTL = timedelta(minutes=1)
"""A pass renews its lease every few seconds (`Lease.renewed`); a holder that vanished
(a container killed: copies that share no data folder with it cannot see that it is gone)
frees it after this long."""
BUILD_LEASE = "build"
BUILD_LEASE_TTL = timedelta(minutes=2)
"""Renewed every 10 s while a build runs, by the service (its child writes the database
meanwhile, which may keep a renewal waiting); a holder that vanished frees it after this long."""
Clock = Callable[[], datetime]


@dataclass
class App:
    """Everything a command needs, wired together; close it when done."""

    settings: Settings
    engine: Engine
    index: StoreIndex
    output: Output

    @cached_property
    def builder(self) -> Builder:
        """The builder, wired on first use: a command that only posts never loads the
        store's readers and the build steps (a fifth of its start-up)."""
        from newsbot.build.builder import Builder

        return Builder(self.settings, self.index, self.output)

    def check_startup(self) -> None:
        """Fail at once, with one clear error, on what would make every later job fail.

        A store that went missing after articles were published is no reason not
        to start: the last good output is served, and the builds say the store is
        suspect until it is back.
        """
        try:
            walk(self.settings.store.content_dir)
        except StoreError:
            if not self.index.live_count():
                raise
        self.output.check_writable()

    # The posting side of the state (deliveries, leases, replies) loads when a command asks
    # for it: a build never does, and its imports were ~1 % of a build of one new article.

    def deliveries(self) -> DeliveryStore:
        from newsbot.state.deliveries import DeliveryStore

        return DeliveryStore(self.engine)

    def nothing_due(self, target: Target, now: datetime) -> bool:
        """Whether a pass over ``target`` would find nothing to do (`pass_marks.nothing_due`):
        a command then needs no publisher, no HTTP client and no word with the server."""
        from newsbot.publish.targets import fingerprint
        from newsbot.state.pass_marks import nothing_due
        from newsbot.state.replies import RelatedStore

        store = self.deliveries()
        return nothing_due(
            store, RelatedStore(self.engine), target.name, fingerprint(target.settings), now
        )

    def quiet_until(self, quiet: Sequence[Target], now: datetime) -> datetime:
        """Until when ``quiet``, targets with nothing due ``now``, stay so while the database
        does not change (`pass_marks.quiet_until`)."""
        from newsbot.state.pass_marks import quiet_until

        return quiet_until(self.engine, [target.name for target in quiet], now)

    @cached_property
    def owner_files(self) -> OwnerFiles | None:
        """This process's owner file in ``state.data_dir`` (`newsbot.state.owner_files`), made
        on first use, so that commands taking no lease write nothing; files of dead processes
        that no lease names any more are swept at the same time."""
        from newsbot.state.leases import owner_file_ids
        from newsbot.state.owner_files import OwnerFiles

        files = OwnerFiles.hold(self.settings.state.data_dir)
        if files is not None:
            files.sweep(owner_file_ids(self.engine))
        return files

    def owner(self) -> str:
        """A new owner name for this process, naming its owner file (`process_owner`)."""
        from newsbot.state.leases import process_owner

        return process_owner(self.owner_files)

    def leases(self, owner: str | None = None) -> Leases:
        """The leases, held in this process's name (default: `owner`)."""
        from newsbot.state.leases import Leases

        return Leases(self.engine, owner or self.owner(), self.owner_files)

    def build_lease(self, clock: Clock) -> Lease:
        """The lease a build holds, so that processes sharing the database build one at a time."""
        from newsbot.state.leases import Lease

        return Lease(self.leases(), BUILD_LEASE, BUILD_LEASE_TTL, clock)

    @contextmanager
    def publishers(
        self,
        chosen: Sequence[Target],
        pacing: bool = True,
        *,
        stop: threading.Event | None = None,
        owner: str | None = None,
        offline_profile: str | None = None,
    ) -> Iterator[list[Publisher]]:
        """A publisher per usable target (see :func:`publishers`)."""
        with publishers(
            self.settings,
            self.engine,
            chosen,
            pacing,
            stop=stop,
            owner=owner or self.owner(),
            files=self.owner_files,
            offline_profile=offline_profile,
        ) as runners:
            yield runners

    def close(self) -> None:
        self.engine.dispose()
        files = self.__dict__.get("owner_files")
        if files is not None:
            files.close()


def create_app(settings: Settings) -> App:
    """Open the state database and wire the builder; raises clear `NewsbotError`s."""
    engine = open_database(database_url(settings.state))
    index = StoreIndex(engine)
    output = Output(settings.feeds.output_dir)
    return App(settings, engine, index, output)


@contextmanager
def publishers(
    settings: Settings,
    engine: Engine,
    chosen: Sequence[Target],
    pacing: bool = True,
    *,
    stop: threading.Event | None = None,
    owner: str | None = None,
    files: OwnerFiles | None = None,
    offline_profile: str | None = None,
) -> Iterator[list[Publisher]]:
    """A publisher per usable target; the HTTP clients are closed on exit.

    Each pass holds the target's lease (``publish:<target>``), so that several
    processes sharing one database never publish to one target at the same
    time. ``stop``, once set, makes every pass end before its next request, and
    a request in flight end after a short grace for its answer (`InterruptibleTransport`);
    ``owner`` names this process in the leases (default: `process_owner`);
    ``files``, its owner files, lets dead holders elsewhere be seen (`Leases`);
    ``offline_profile`` makes dry runs that never ask the server (a profile
    name, or "learned"), for which a target needs no token. With no usable
    target, none of the posting code is loaded.
    """
    usable = [t for t in chosen if t.problem is None or offline_profile is not None]
    if not usable:
        yield []
        return
    from pydantic import SecretStr

    from newsbot.mastodon.client import MastodonClient, make_http_client
    from newsbot.publish.interruptible import InterruptibleTransport
    from newsbot.publish.publisher import Publisher
    from newsbot.state.deliveries import DeliveryStore
    from newsbot.state.leases import Leases, process_owner
    from newsbot.state.related import RelatedFinder
    from newsbot.state.related_lists import RelatedLists

    store = DeliveryStore(engine)
    lists = RelatedLists(RelatedFinder(engine))
    leases = Leases(engine, owner or process_owner(files), files)
    base_url = str(settings.site.base_url)
    clients: list[httpx.Client] = []

    def related_for(
        target: TargetSettings,
    ) -> Callable[[Article, int, datetime], Sequence[Article]]:
        """The stored related list of an article, under ``target``'s policy (a lookup)."""
        policy = target.related_policy or settings.site.related_policy

        def related(article: Article, k: int, now: datetime) -> Sequence[Article]:
            return lists.related(article, k, now, policy)

        return related

    def publisher(target: Target) -> Publisher:
        # A shutdown ends the wait for an answer soon (the request is recorded before it goes).
        transport = None if stop is None else InterruptibleTransport(stop)
        http = make_http_client(target.settings.timeout, transport)
        clients.append(http)
        return Publisher(
            name=target.name,
            target=target.settings,
            client=MastodonClient(
                str(target.settings.server),
                SecretStr("") if offline_profile is not None else target.token(),
                http,
            ),
            store=store,
            related=related_for(target.settings),
            media_root=settings.store.content_dir,
            media_prefix=base_url + "media/",
            sleep=_sleeper(stop),
            rng=random.Random(),  # noqa: S311 - jitter, not secrets
            pacing=pacing and target.settings.pacing,
            default_language=settings.site.language,
            lease=pass_lease(leases, target.name),
            stop=stop,
            store_root=settings.store.content_dir,
            offline_profile=offline_profile,
        )

    try:
        yield [publisher(target) for target in usable]
    finally:
        for http in clients:
            http.close()


def pass_lease(leases: Leases, target: str) -> Lease:
    """The lease that a pass (or a catch-up) over ``target`` holds."""
    from newsbot.state.leases import Lease

    return Lease(leases, f"publish:{target}", PASS_LEASE_TTL, lambda: datetime.now(UTC))


def _sleeper(stop: threading.Event | None) -> Callable[[float], None]:
    """``time.sleep``, or a wait that a shutdown cuts short."""
    if stop is None:
        return time.sleep

    def wait(seconds: float) -> None:
        stop.wait(seconds)

    return wait
