"""The delivery worker: claims due rows, sends them concurrently, records the outcomes.

It runs an asyncio loop on a thread of its own, with one ``httpx.AsyncClient``
(through the address guard) and two bounds: ``concurrency`` requests in
flight overall and ``per_host`` per remote host. Rows are claimed in batches
under a lease (see :mod:`newsbot.activitypub.deliveries`) and outcomes are
written back in batches, so the database sees a few statements per hundred
deliveries. Each request is signed as it leaves (``Signer``), with a fresh
``Date`` on every try.

Outcomes: 2xx is done; 401, 408, 429 and 5xx, timeouts and connection errors
are retried later (``Retry-After`` honoured); any other 4xx is permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from newsbot.activitypub.addresses import BlockedAddress
from newsbot.activitypub.deliveries import Claimed, DeliveryStore, Outcome
from newsbot.activitypub.documents import ACTIVITY_JSON

log = logging.getLogger(__name__)

RETRIED_4XX = frozenset({401, 408, 429})
IDLE_POLL_SECONDS = 1.0
ORPHANS_EVERY_SECONDS = 30.0
MAX_IDLE_CLIENTS = 256
"""Connection pools kept for hosts with nothing in flight, before they are closed."""

Clock = Callable[[], datetime]


def retry_after(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value.strip()))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def classify(claimed: Claimed, response: httpx.Response, now: datetime, seconds: float) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(claimed, "done", status, seconds=seconds)
    error = f"{status} {response.reason_phrase}".strip()
    if status in RETRIED_4XX or status >= 500:
        later = retry_after(response.headers.get("retry-after"), now)
        return Outcome(claimed, "retry", status, error, later, seconds)
    return Outcome(claimed, "failed", status, error, seconds=seconds)


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryStore,
        client: Callable[[int], httpx.AsyncClient],
        sign: httpx.Auth,
        *,
        owner: str,
        clock: Clock = lambda: datetime.now(UTC),
        concurrency: int = 64,
        per_host: int = 4,
        lease: timedelta = timedelta(seconds=60),
        observe: Callable[[Outcome], None] = lambda _outcome: None,
    ) -> None:
        self.store = store
        self._client_factory = client
        self._sign = sign
        self.owner = owner
        self.clock = clock
        self.concurrency = concurrency
        self.per_host = per_host
        self.lease = lease
        self.observe = observe
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    # -- thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="newsbot-deliveries", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """New rows were queued: claim them now rather than at the next poll."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self.run())

    # -- loop -----------------------------------------------------------------------

    async def run(self, until_idle: bool = False) -> None:
        """Deliver until stopped (or, with ``until_idle``, until nothing is due).

        Outcomes are recorded by a task of their own as soon as they come, in
        whatever batch has gathered meanwhile: sending never waits for the
        database, and a crash repeats only the requests answered during the
        one write in progress (and those in flight).
        """
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        wake = self._wake
        overall = asyncio.Semaphore(self.concurrency)
        hosts: dict[str, asyncio.Semaphore] = {}
        outcomes: list[Outcome] = []
        have_outcomes = asyncio.Event()
        in_flight: set[asyncio.Task[None]] = set()
        room = self.concurrency * 4
        recording = True

        async def record() -> None:
            while recording or outcomes:
                await have_outcomes.wait()
                have_outcomes.clear()
                while outcomes:
                    batch, outcomes[:] = list(outcomes), []
                    await asyncio.to_thread(self.store.finish, batch, self.clock())
                    for outcome in batch:
                        self.observe(outcome)

        clients: dict[str, httpx.AsyncClient] = {}
        busy: Counter[str] = Counter()

        def client_for(host: str) -> httpx.AsyncClient:
            # One small pool per host: httpcore scans a pool's connections for every
            # request, so one pool shared by hundreds of hosts costs more than the sending.
            if host not in clients:
                clients[host] = self._client_factory(self.per_host)
            return clients[host]

        async def close_idle() -> None:
            if len(clients) > MAX_IDLE_CLIENTS:
                for host in [h for h in clients if not busy[h]]:
                    await clients.pop(host).aclose()
                    hosts.pop(host, None)
                    del busy[host]

        async def send(claimed: Claimed) -> None:
            host = hosts.setdefault(claimed.host, asyncio.Semaphore(self.per_host))
            busy[claimed.host] += 1
            try:
                async with host, overall:
                    outcomes.append(await self._send(client_for(claimed.host), claimed))
            finally:
                busy[claimed.host] -= 1
            have_outcomes.set()
            if len(in_flight) <= room // 2:
                wake.set()

        try:
            recorder = asyncio.create_task(record())
            last_orphans = 0.0
            while not self._stop.is_set():
                if time.monotonic() - last_orphans > ORPHANS_EVERY_SECONDS:
                    freed = await asyncio.to_thread(self.store.release_orphans)
                    if freed:
                        log.warning("%d deliveries of a killed process are due again", freed)
                    last_orphans = time.monotonic()
                claimed: list[Claimed] = []
                if len(in_flight) <= room // 2:
                    claimed = await asyncio.to_thread(
                        self.store.claim, self.owner, self.clock(), room - len(in_flight),
                        self.lease,
                    )  # fmt: skip
                for item in claimed:
                    task = asyncio.create_task(send(item))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if until_idle and not claimed and not in_flight and not outcomes:
                    break
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), IDLE_POLL_SECONDS)
                await close_idle()
            if in_flight:  # stopping: let requests in flight end and record them
                await asyncio.wait(in_flight, timeout=10)
            recording = False
            have_outcomes.set()
            await recorder
        finally:
            for client in clients.values():
                await client.aclose()

    async def _send(self, http: httpx.AsyncClient, claimed: Claimed) -> Outcome:
        started = time.monotonic()
        try:
            response = await http.post(
                claimed.inbox,
                content=claimed.body,
                headers={"Content-Type": ACTIVITY_JSON, "Accept": ACTIVITY_JSON},
                auth=self._sign,
            )
        except BlockedAddress as exc:
            return Outcome(claimed, "failed", None, str(exc))
        except httpx.HTTPError as exc:
            seconds = time.monotonic() - started
            return Outcome(claimed, "retry", None, type(exc).__name__, seconds=seconds)
        seconds = time.monotonic() - started
        outcome = classify(claimed, response, self.clock(), seconds)
        if outcome.result != "done":
            log.info(
                "delivery %s: %s", outcome.result, outcome.error,
                extra={"activity": claimed.activity_id, "host": claimed.host},
            )  # fmt: skip
        self.sent += 1
        return outcome
