"""Work in a child process that ends with it, and dies with its parent.

What a piece of work loads and allocates stays in a process after it: imported
modules are never unloaded, and the allocator keeps much of what was freed. A
service at rest after a large first build stayed at ~170 MB, most of it what
the build left; a schema upgrade left Alembic behind (~10 MB) until the next
restart. Work run through :class:`Child` happens in a child process started
for it, and only its result comes back, pickled through a pipe; the child's
memory goes back to the system when it exits. Its exception is raised in the
parent, as if the work had run there.

The child is a new interpreter started for the work, not a fork. The
service forks nothing while its threads run: a thread inside SQLite at the
moment of a fork leaves the child SQLite's allocator mutex held by nobody, and
the child's first connection waits for ever (a build was seen hung in
``sqlite3.connect``); the child would also inherit SQLite's record of the
parent's file locks, which its own connections would then trust. So the work
must pickle, by name: a function of a module (not of a script run as
``__main__``), or a dataclass of such a module with its arguments; it opens
what it needs itself. The child logs as the parent does
(:class:`newsbot.logs.LogSetup`), masking the same secrets.

A child dies with its parent (:func:`die_with`, ``PR_SET_PDEATHSIG`` on Linux),
so a process killed hard leaves no worker behind, writing for nobody; and
:meth:`Child.stop` ends work still running when a service's time is up.
The output steps of a build still fork (`newsbot.build.parallel`): the build's
own process runs no other threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Generic, TypeVar

from newsbot.errors import NewsbotError
from newsbot.logs import LogSetup, current_setup

_Result = TypeVar("_Result")

STOP_GRACE_SECONDS = 2.0
"""How long work asked to stop has to end before it is killed."""
KILL_WAIT_SECONDS = 5.0
"""How long a stop waits for a killed child to be gone (SIGKILL is not refused)."""
PR_SET_PDEATHSIG = 1
"""prctl option: the signal the kernel sends this process when its parent ends."""
PR_SET_NAME = 15
"""prctl option: the process's name (``/proc/<pid>/comm``)."""


class ChildEnded(NewsbotError):
    """The child ended without a result: killed (out of memory, say), or stopped."""


class Child(Generic[_Result]):
    """Runs one piece of work at a time in a child process and hands back its result."""

    def __init__(self, name: str) -> None:
        """``name``: what the work is, for messages and the child's process name."""
        self.name = name
        self._lock = threading.Lock()
        self._running: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def run(
        self,
        work: Callable[[], _Result],
        meanwhile: Callable[[], None] = lambda: None,
        every: float = 10.0,
    ) -> _Result:
        """``work()`` in a child; its exception is raised here, as if it had run here.

        ``work`` must pickle (a work that does not is refused here, before any
        process starts). ``meanwhile()`` is called here every ``every`` seconds
        while the child works (to renew a lease the work holds, say).
        """
        receiver, sender = multiprocessing.Pipe(duplex=False)
        try:
            job = partial(_child, self.name, work, sender.fileno(), os.getpid(), current_setup())
            payload = pickle.dumps(list(sys.path)) + pickle.dumps(job)
            with self._lock:
                if self._stopped:
                    raise ChildEnded(f"the {self.name} was not started: stopping")
                process = subprocess.Popen(  # may fail: no memory, too many processes
                    [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, pass_fds=[sender.fileno()]
                )
                self._running = process
        except BaseException:
            receiver.close()
            raise
        finally:
            sender.close()
        ended = _end_of(process)
        try:
            _hand_over(process, payload)
            # The child's own end is watched too: a worker of the work holding the
            # pipe open after the child was killed must not keep this waiting.
            while not wait([receiver] if ended is None else [receiver, ended], every):
                meanwhile()
                if ended is None and process.poll() is not None:
                    break
            try:
                if not receiver.poll():
                    raise EOFError
                ok, value = receiver.recv()
            except EOFError:
                process.wait()
                raise ChildEnded(_how_it_ended(self.name, process.returncode)) from None
            except Exception as exc:  # a result or exception that does not unpickle here
                raise ChildEnded(f"the {self.name}'s result: {type(exc).__name__}: {exc}") from None
        finally:
            receiver.close()
            if ended is not None:
                os.close(ended)
            _hand_over(process, b"")  # its input closed, if an error came before: no wait for ever
            _reap(process)
            with self._lock:
                self._running = None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End the work still running (a service's time is up) and refuse new work.

        The child gets SIGTERM and ``grace`` seconds, then SIGKILL: either way it
        ends as a crash would end it.
        """
        with self._lock:
            self._stopped = True
            process = self._running
        if process is None:
            return
        process.terminate()  # not sent to a child already reaped (Popen knows)
        try:
            process.wait(max(grace, 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(KILL_WAIT_SECONDS)


_BOOT = (
    "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
    "pickle.load(sys.stdin.buffer)()"
)
"""The child's program: this process's import path, then the work (both read from stdin).

Only the standard library is imported before the path is set: newsbot may be
importable here only through a path set at run time (a test's, a site dir's).
"""


def _hand_over(process: subprocess.Popen[bytes], payload: bytes) -> None:
    """Write the child's program input and close it; a child that died at once says how by its
    exit code. Closing an input already closed does nothing."""
    assert process.stdin is not None
    if process.stdin.closed:
        return
    with contextlib.suppress(BrokenPipeError):
        process.stdin.write(payload)
    with contextlib.suppress(BrokenPipeError):
        process.stdin.close()


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Wait for the child to end, killing it after a grace period.

    After sending its result a child ends at once. One still there after
    ``STOP_GRACE_SECONDS`` is stuck (a thread its work left behind) or was
    given up on here (an error, a test's timeout, Ctrl-C): it is killed, so
    that the caller is never kept waiting for ever.
    """
    try:
        process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _end_of(process: subprocess.Popen[bytes]) -> int | None:
    """A descriptor that becomes readable when ``process`` ends (Linux), without reaping it."""
    try:
        return os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel: polled instead
        return None


def available() -> bool:
    """Whether work can be shared with forked children here (`newsbot.build.parallel`)."""
    return "fork" in multiprocessing.get_all_start_methods()


def die_with(parent: int) -> None:
    """Have the kernel kill this child when its parent ends (Linux), and exit now if it has.

    A build killed from outside (out of memory, an operator) would otherwise
    leave its workers rendering into the output for nobody. Call it first in a
    child forked by ``parent``. Strictly, the kernel watches the parent's
    thread that forked: fork from a thread that outlives the work (the main
    thread, or a pool thread, which lives as long as its pool).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the prctl took effect
        os._exit(1)


def _name_self(comm: str) -> None:
    """Name this process as ``ps`` and ``top`` show it (Linux; 15 characters at most)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, comm.encode()[:15])


def _how_it_ended(work: str, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the {work}'s process was killed by {name} (out of memory, or stopped)"
    return f"the {work}'s process ended with exit code {exitcode} and no result"


def _child(
    name: str, work: Callable[[], object], sender: int, parent: int, logs: LogSetup | None
) -> None:
    """In the child: the work, and its outcome back to the parent through ``sender``."""
    die_with(parent)
    _name_self(f"newsbot-{name.split()[0]}")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not ignored, even if the parent's was
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    if logs is not None:
        logs.apply()
    send_outcome(Connection(sender, readable=False), lambda: None, work, ChildEnded)


def send_outcome(
    sender: Connection,
    in_child: Callable[[], None],
    work: Callable[[], object],
    unsendable: type[NewsbotError],
) -> None:
    """In a child: ``in_child()``, then ``work()``; its result or exception goes back through
    ``sender`` as ``(ok, value)``, or an ``unsendable`` error when it does not pickle."""
    try:
        in_child()
        outcome: tuple[bool, object] = (True, work())
    except BaseException as exc:  # every failure goes back to the parent
        outcome = (False, exc)
    try:
        sender.send(outcome)
    except Exception as exc:  # an unpicklable result or exception
        sender.send((False, unsendable(f"{type(exc).__name__}: {exc}")))
    finally:
        sender.close()
