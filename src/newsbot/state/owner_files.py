"""Owner files: a file each lease-holding process keeps locked for its whole life.

A process's pid and start time tell whether it still runs only to a process
in the same pid namespace; a container started again (same volumes, a new
pid namespace) cannot see that its predecessor, which still holds leases,
is gone. A lock can: each process that takes leases creates a small file in
``<state.data_dir>/owners`` and holds an exclusive ``flock`` on it until it
ends; the kernel drops the lock when the process dies, however it dies. A
process that finds a lease held by an owner whose file it can see, and can
lock that file itself, knows that owner is dead; if it cannot, the owner is
alive. Where the file cannot be seen or judged (another volume, another
machine, a read-only folder), the lease's expiry decides, as before.

The lock is trusted only between processes of one kernel: each file names
the boot of the kernel that holds it, and a process of another boot does not
judge it, since a filesystem shared between machines (NFS mounted without
locking, say) may keep locks to each machine. ``flock`` rather than POSIX
``lockf``: a POSIX lock belongs to the process, so a process could "take" its
own lock and drop it by closing the file; ``flock`` belongs to the open file.
(On NFS, Linux emulates ``flock`` with POSIX locks, which the server keeps
for every client; a process never opens its own file there, so that
difference does not matter.) Files of dead processes are swept when a
process makes its own, once no lease names them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
from collections.abc import Collection
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = "owners"
"""The owner files' folder, inside ``state.data_dir``."""
_ID = re.compile(r"[0-9a-f]{8,32}")
_BOOT = Path("/proc/sys/kernel/random/boot_id")


class OwnerFiles:
    """This process's owner file, held locked, and the judge of other owners' files."""

    def __init__(self, folder: Path, boot: str, own: str, fd: int) -> None:
        self.folder = folder
        self.boot = boot
        self.id = own
        self._fd: int | None = fd

    @classmethod
    def hold(cls, data_dir: Path) -> OwnerFiles | None:
        """Create and lock this process's file under ``data_dir``; None where that cannot be.

        ``data_dir`` is not created (a PostgreSQL setup may have none): without
        it, or unwritable, leases are judged by their expiry alone.
        """
        boot = boot_id()
        folder = data_dir / FOLDER
        if not boot or not data_dir.is_dir():
            return None
        try:
            folder.mkdir(exist_ok=True)
            for _ in range(5):
                own = secrets.token_hex(4)
                fd = _create_locked(folder / f"{own}.lock")
                if fd is not None:
                    note = f"{boot}\n{socket.gethostname()[:40]} {os.getpid()}\n"
                    os.write(fd, note.encode())
                    return cls(folder, boot, own, fd)
        except OSError as exc:
            log.debug("no owner file in %s (%s): leases judged by their expiry", folder, exc)
        return None

    def gone(self, owner_id: str) -> bool:
        """Whether the process that holds ``owner_id``'s file is certainly dead.

        True only when its file is there, was written by a process of this
        boot, and we could lock it (its holder's lock was released by the
        kernel). False whenever in doubt.
        """
        if owner_id == self.id or not _ID.fullmatch(owner_id):
            return False
        try:
            fd = _open(self.folder / f"{owner_id}.lock")
        except OSError:
            return False
        try:
            if os.read(fd, 200).decode("ascii", "replace").split("\n", 1)[0] != self.boot:
                return False
            return _lock(fd)
        except OSError:
            return False
        finally:
            os.close(fd)

    def sweep(self, named: Collection[str], limit: int = 100) -> int:
        """Delete files of dead processes that no lease names any more; how many (at most
        ``limit`` looked at). A file still named may yet let a lease be taken at once."""
        removed = 0
        try:
            paths = [p for _, p in zip(range(limit), self.folder.glob("*.lock"), strict=False)]
        except OSError:
            return 0
        for path in paths:
            if path.stem in (self.id, *named):
                continue
            with contextlib.suppress(OSError):
                removed += _remove_if_unlocked(path)
        return removed

    def close(self) -> None:
        """Delete and unlock this process's file (the end of the process does the unlocking
        anyway)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            (self.folder / f"{self.id}.lock").unlink()
        os.close(self._fd)
        self._fd = None


def owner_id(owner: str) -> str | None:
    """The owner-file id an owner name carries (its sixth part), if any."""
    parts = owner.split("/")
    return parts[5] if len(parts) == 6 else None


def _create_locked(path: Path) -> int | None:
    """A new file at ``path``, locked by us; None if a sweeper took it meanwhile."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        locked = _lock(fd)
        if locked and _same_file(fd, path):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _remove_if_unlocked(path: Path) -> int:
    """Delete ``path`` if no process holds it; 1 if deleted. The lock is held while deleting,
    so its owner (if it were one) could not be starting on it."""
    fd = _open(path)
    try:
        if not _lock(fd) or not _same_file(fd, path):
            return 0
        path.unlink()
        return 1
    finally:
        os.close(fd)


def _open(path: Path) -> int:
    """Another process's file, open to be locked: for writing where we may (NFS makes
    ``flock`` a POSIX lock, which wants it), else for reading (enough elsewhere)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; whether we got it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not deleted or replaced)."""
    try:
        there = path.stat()
    except OSError:
        return False
    held = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def boot_id() -> str:
    """This boot of this kernel; "" where /proc does not tell."""
    try:
        return _BOOT.read_text(encoding="ascii").strip()
    except OSError:
        return ""
