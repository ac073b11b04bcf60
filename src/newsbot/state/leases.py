"""Leases: a named lock in the database, so that one process at a time does a job.

Several copies of newsbot may share one database (two replicas on one
PostgreSQL); a publish pass for a target must never run twice at once. A
lease has an owner and an expiry: a crashed holder's lease simply runs out,
and the holder renews it while it works (`Lease.keep`). Taking one is a
single conditional write, which both SQLite and PostgreSQL make atomic.

A holder that died need not be waited for when it can be seen to be gone:
the owner name records the process (boot, pid namespace, pid and start
time), so a process in the same pid namespace can tell; and it names the
holder's owner file (`newsbot.state.owner_files`), whose lock the kernel
drops when the holder dies, so a process sharing the data folder can tell too
(a container started again, in a new pid namespace, takes over from its
killed predecessor at once). Other owners are only ever judged by the expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, insert, select, union, update
from sqlalchemy.exc import IntegrityError

from newsbot.state.owner_files import OwnerFiles, boot_id, owner_id
from newsbot.state.schema import ap_deliveries, ap_inbox, leases
from newsbot.times import epoch_seconds

_PROC = Path("/proc")

log = logging.getLogger(__name__)


class Leases:
    """Take, renew and give back named leases.

    ``files``, this process's owner files, lets a holder in another pid
    namespace that shares the data folder be seen to be dead (`is_alive`).
    """

    def __init__(self, engine: Engine, owner: str, files: OwnerFiles | None = None) -> None:
        self.engine = engine
        self.owner = owner
        self.files = files

    def acquire(self, name: str, now: datetime, ttl: timedelta) -> bool:
        """Take ``name`` if it is free, expired, ours, or its holder is dead; whether we hold it."""
        expires = epoch_seconds(now + ttl)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(
                    leases.c.name == name,
                    (leases.c.expires_at < epoch_seconds(now)) | (leases.c.owner == self.owner),
                )
                .values(owner=self.owner, expires_at=expires)
            )
            if taken.rowcount:
                return True
        holder = self.holder(name)
        if holder is not None:
            return not is_alive(holder, self.files) and self._take_from(name, holder, expires)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, owner=self.owner, expires_at=expires))
        except IntegrityError:
            return False
        return True

    def renew(self, name: str, now: datetime, ttl: timedelta) -> bool:
        """Push our lease's expiry to ``now + ttl``; False if it is no longer ours."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.owner == self.owner)
                .values(expires_at=epoch_seconds(now + ttl))
            )
        return bool(done.rowcount)

    def holder(self, name: str) -> str | None:
        """Who holds ``name`` (expired or not), if anyone."""
        with self.engine.connect() as conn:
            owner: str | None = conn.execute(
                select(leases.c.owner).where(leases.c.name == name)
            ).scalar_one_or_none()
        return owner

    def release(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.owner == self.owner))

    def _take_from(self, name: str, dead: str, expires: int) -> bool:
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.owner == dead)
                .values(owner=self.owner, expires_at=expires)
            )
        return bool(taken.rowcount)


class Lease:
    """One named lease for one job: acquired, kept while the job runs, released at its end."""

    def __init__(
        self, leases: Leases, name: str, ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.leases = leases
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self._renewed: datetime | None = None
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        now = self.clock()
        if not self.leases.acquire(self.name, now, self.ttl):
            return False
        self._renewed = now
        return True

    def keep(self) -> bool:
        """Whether we still hold the lease, renewing it when a tenth of its time has passed."""
        with self._lock:
            if self._renewed is None:
                return False
            now = self.clock()
            if now - self._renewed < self.ttl / 10:
                return True
            if not self.leases.renew(self.name, now, self.ttl):
                self._renewed = None
                return False
            self._renewed = now
            return True

    @contextlib.contextmanager
    def renewed(self) -> Iterator[None]:
        """Keep the lease from a thread of its own, every tenth of its time, while the job runs.

        The job's own `keep` calls come between its steps, and one step can
        outlast a short lease (a slow server's answer, a rate limit waited
        out): another process would take the lease meanwhile. Renewing apart
        from the job lets the lease be short, so that a holder that died is
        waited for briefly. The thread stops when the lease is lost; the job
        learns it at its next `keep`.
        """
        done = threading.Event()

        def beat() -> None:
            warned = False
            while not done.wait(self.ttl.total_seconds() / 10):
                try:
                    if not self.keep():
                        return
                except Exception as exc:  # the database away for a moment: the next beat tries
                    if not warned:
                        log.warning("lease %s not renewed (%s); trying again", self.name, exc)
                        warned = True

        thread = threading.Thread(target=beat, name=f"lease {self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def holder(self) -> str | None:
        return self.leases.holder(self.name)

    def wait(
        self, stopping: threading.Event, poll: float, waiting: Callable[[str | None], None]
    ) -> bool:
        """Take the lease, waiting while another process holds it; False if ``stopping`` is
        set meanwhile. ``waiting(holder)`` is called once, when it has to wait."""
        said = False
        while not self.acquire():
            if not said:
                waiting(self.holder())
                said = True
            if stopping.wait(poll):
                return False
        return True

    def release(self) -> None:
        with self._lock:
            if self._renewed is not None:
                self.leases.release(self.name)
                self._renewed = None


def owner_file_ids(engine: Engine) -> set[str]:
    """The owner-file ids that the holders of all leases and the claimers of ActivityPub
    deliveries in flight and of received activities being handled carry (what
    `OwnerFiles.sweep` keeps: a dead holder's file lets its leases be taken, its deliveries
    sent again and its received activities handled again, at once)."""
    sending = select(ap_deliveries.c.owner).where(ap_deliveries.c.state == "sending")
    handling = select(ap_inbox.c.owner).where(
        ap_inbox.c.processed.is_(None), ap_inbox.c.owner.is_not(None)
    )
    with engine.connect() as conn:
        owners: list[str] = list(conn.execute(select(leases.c.owner)).scalars())
        tokens: list[str | None] = list(conn.execute(union(sending, handling)).scalars())
        owners += [claimer(token) for token in tokens if token]
    return {i for owner in owners if (i := owner_id(owner)) is not None}


def claimer(token: str) -> str:
    """The owner name of the process that claimed a row, from the row's claim token
    (``owner|random``: `newsbot.state.ap_deliveries.DeliveryRows.claim`,
    `newsbot.state.inbox.InboxRows.claim`)."""
    return token.split("|", 1)[0]


def process_owner(files: OwnerFiles | None = None) -> str:
    """A unique owner name for this process: ``host/pid/start/machine/random[/file]``.

    ``machine`` (a digest of the boot id and the pid namespace) and ``start``
    (the process's start time) let another process in the same pid namespace
    tell whether the owner still runs; ``file``, the id of the process's owner
    file (when it has one), lets a process sharing its data folder tell.
    Elsewhere they are just part of the name. At most 100 characters.
    """
    host = socket.gethostname().replace("/", "-")[:40] or "host"
    pid = os.getpid()
    start = _start_time(pid) or 0
    name = f"{host}/{pid}/{start}/{_machine()}/{secrets.token_hex(4)}"
    return name if files is None else f"{name}/{files.id}"


def is_alive(owner: str, files: OwnerFiles | None = None) -> bool:
    """False only if ``owner`` is certainly gone; True otherwise.

    Gone: it ran in this pid namespace and its process is no more, or its
    owner file is in ``files``'s folder and no longer locked.
    """
    parts = owner.split("/")
    if len(parts) not in (5, 6):
        return True
    machine = _machine()
    if not machine or parts[3] != machine:
        return not (files is not None and len(parts) == 6 and files.gone(parts[5]))
    try:
        pid, start = int(parts[1]), int(parts[2])
    except ValueError:
        return True
    return start != 0 and _start_time(pid) == start


def _machine() -> str:
    """This boot of this kernel, in this pid namespace; "" where /proc does not tell."""
    boot = boot_id()
    if not boot:
        return ""
    try:
        namespace = str((_PROC / "self/ns/pid").readlink())
    except OSError:
        return ""
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:12]


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if it is gone or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None
