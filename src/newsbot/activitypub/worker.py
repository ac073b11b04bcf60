"""The delivery worker: claims due rows, sends them concurrently, records the outcomes.

It runs an asyncio loop on a thread of its own, with one aiohttp session
(through the address guard, keep-alive connections pooled per host) and two
bounds: ``concurrency`` requests in flight overall and ``per_host`` per
remote host. Rows are claimed in batches under a lease (see
:mod:`newsbot.activitypub.deliveries`) and outcomes are written back in
batches, so the database sees a few statements per hundred deliveries. Each
request is signed as it leaves (``Signer.post_headers``), with a fresh
``Date`` on every try; the body and its ``Digest`` are made once per
activity, since only the request target, host and date differ between
inboxes. The RSA operations run on a thread beside the event loop (they
release the GIL), batched: one hand-over for all the requests waiting to be
signed, since a hand-over per request cost more than the signature itself.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp
from yarl import URL

from newsbot.activitypub.addresses import BlockedAddress
from newsbot.activitypub.deliveries import Claimed, DeliveryStore, Outcome, retry_after
from newsbot.activitypub.documents import ACTIVITY_JSON
from newsbot.activitypub.signatures import Signer, digest_header

log = logging.getLogger(__name__)

RETRIED_4XX = frozenset({401, 408, 429})
IDLE_POLL_SECONDS = 1.0
ORPHANS_EVERY_SECONDS = 30.0
STOP_GRACE_SECONDS = 3.0
"""How long requests in flight when the worker stops may still take to be answered."""
MAX_IDLE_HOSTS = 4096
"""Per-host limits kept for hosts with nothing in flight, before they are dropped."""
MAX_ANSWER_BYTES = 64 * 1024
"""What is read of an inbox's answer (its body is not used; a longer one closes the connection)."""

Clock = Callable[[], datetime]


class Headers(Protocol):
    def get(self, key: str, /) -> str | None: ...


class Answer(Protocol):
    """What an outcome needs of an inbox's response."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Headers: ...


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    reason_phrase: str
    headers: Headers


def classify(claimed: Claimed, response: Answer, now: datetime, seconds: float) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(claimed, "done", status, seconds=seconds)
    error = f"{status} {response.reason_phrase}".strip()
    if status in RETRIED_4XX or status >= 500:
        later = retry_after(response.headers.get("retry-after"), now)
        return Outcome(claimed, "retry", status, error, later, seconds)
    return Outcome(claimed, "failed", status, error, seconds=seconds)


class BatchSigner:
    """Signs waiting requests together on a thread: one hand-over per batch, not per request."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self._waiting: list[tuple[asyncio.Future[dict[str, str]], str, str, str]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def post_headers(self, host: str, target: str, digest: str) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, str]] = loop.create_future()
        self._waiting.append((future, host, target, digest))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    signed = await asyncio.to_thread(self._sign, [b[1:] for b in batch])
                except Exception as exc:
                    for future, *_ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (future, *_), headers in zip(batch, signed, strict=True):
                    if not future.done():
                        future.set_result(headers)
        finally:
            self._drainer = None

    def _sign(self, requests: list[tuple[str, str, str]]) -> list[dict[str, str]]:
        return [self._signer.post_headers(*request) for request in requests]


class DeliveryWorker:
    def __init__(
        self,
        store: DeliveryStore,
        session: Callable[[], aiohttp.ClientSession],
        signer: Signer,
        *,
        owner: str,
        clock: Clock = lambda: datetime.now(UTC),
        concurrency: int = 64,
        per_host: int = 4,
        lease: timedelta = timedelta(seconds=60),
        observe: Callable[[Outcome], None] = lambda _outcome: None,
    ) -> None:
        self.store = store
        self._session_factory = session
        self._signer = signer
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
        self._digests: dict[bytes, str] = {}
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
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing left to wake
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
        in_flight: dict[asyncio.Task[None], Claimed] = {}
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

        busy: Counter[str] = Counter()

        def forget_idle_hosts() -> None:
            if len(hosts) > MAX_IDLE_HOSTS:
                for host in [h for h in hosts if not busy[h]]:
                    del hosts[host], busy[host]

        async def send(http: aiohttp.ClientSession, signer: BatchSigner, claimed: Claimed) -> None:
            host = hosts.setdefault(claimed.host, asyncio.Semaphore(self.per_host))
            busy[claimed.host] += 1
            try:
                async with host, overall:
                    outcomes.append(await self._send(http, signer, claimed))
            finally:
                busy[claimed.host] -= 1
            have_outcomes.set()
            if len(in_flight) <= room // 2:
                wake.set()

        signer = BatchSigner(self._signer)
        async with self._session_factory() as http:
            recorder = asyncio.create_task(record())
            last_orphans = 0.0
            while not self._stop.is_set():
                claimed: list[Claimed] = []
                try:
                    if time.monotonic() - last_orphans > ORPHANS_EVERY_SECONDS:
                        freed = await asyncio.to_thread(self.store.release_orphans)
                        if freed:
                            log.warning("%d deliveries of a killed process are due again", freed)
                        last_orphans = time.monotonic()
                    if len(in_flight) <= room // 2:
                        claimed = await asyncio.to_thread(
                            self.store.claim, self.owner, self.clock(), room - len(in_flight),
                            self.lease,
                        )  # fmt: skip
                except Exception:  # a database busy past its timeout, or gone: poll again
                    log.exception("claiming deliveries failed; trying again at the next poll")
                for item in claimed:
                    task = asyncio.create_task(send(http, signer, item))
                    in_flight[task] = item
                    task.add_done_callback(lambda done: in_flight.pop(done, None))
                if until_idle and not claimed and not in_flight and not outcomes:
                    break
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), IDLE_POLL_SECONDS)
                forget_idle_hosts()
            if in_flight:  # stopping: requests in flight get a short grace, then are dropped
                await self._cut_short(dict(in_flight))
            recording = False
            have_outcomes.set()
            await recorder

    async def _cut_short(self, in_flight: dict[asyncio.Task[None], Claimed]) -> None:
        """Give requests in flight `STOP_GRACE_SECONDS` to be answered; cancel the rest and
        make their rows due again at once.

        An inbox that never answers held a stopping service for 10 s, as long
        as a container manager waits before it kills (``docker stop``). Not
        waiting is safe: a request cut short is sent again (by the next start,
        or by another copy sharing the database), and receivers de-duplicate by
        the activity's id, which never changes.
        """
        await asyncio.wait(in_flight, timeout=STOP_GRACE_SECONDS)
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        dropped = [claimed.id for task, claimed in in_flight.items() if task.cancelled()]
        if not dropped:
            return
        try:
            await asyncio.to_thread(self.store.release, self.owner, dropped)
        except Exception:  # the database gone: the rows wait for their claim to run out
            log.exception("deliveries cut short by the stop were not made due again")
            return
        log.info("%d deliveries cut short by the stop are due again", len(dropped))

    def _digest(self, claimed: Claimed) -> str:
        """The body's ``Digest``, made once per body (every inbox gets the same bytes).

        Kept by body, not by activity: a ``Create`` sent again after its note
        was edited has another body (see `newsbot.state.ap_deliveries`).
        """
        digest = self._digests.get(claimed.body)
        if digest is None:
            if len(self._digests) > 256:
                self._digests.clear()
            digest = self._digests[claimed.body] = digest_header(claimed.body)
        return digest

    async def _send(
        self, http: aiohttp.ClientSession, signer: BatchSigner, claimed: Claimed
    ) -> Outcome:
        started = time.monotonic()
        try:
            url = URL(claimed.inbox, encoded=True)
            host = (url.host_port_subcomponent or "").lower()  # the Host header, port included
            headers = await signer.post_headers(host, url.raw_path_qs, self._digest(claimed))
            headers["Content-Type"] = headers["Accept"] = ACTIVITY_JSON
            async with http.post(
                url, data=claimed.body, headers=headers, allow_redirects=False
            ) as answer:
                await answer.content.read(MAX_ANSWER_BYTES)
                response = Response(answer.status, answer.reason or "", answer.headers)
        except BlockedAddress as exc:
            return Outcome(claimed, "failed", None, str(exc))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
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
