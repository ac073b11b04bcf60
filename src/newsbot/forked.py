"""Work in a forked child process that ends with it, and dies with its parent.

What a piece of work loads and allocates stays in a process after it: imported
modules are never unloaded, and the allocator keeps much of what was freed. A
service at rest after a large first build stayed at ~170 MB, most of it what
the build left; a schema upgrade left Alembic behind (~10 MB) until the next
restart. Work run through :class:`Child` happens in a child forked for it, and
only its result comes back, pickled through a pipe; the child's memory goes
back to the system when it exits. Its exception is raised in the parent, as if
the work had run there.

Forking a process that runs threads is safe for work that touches no lock
another thread may hold at the fork. The logging module's handlers are the
exception, and :meth:`Child.run` holds their locks across the fork; the
database pool is replaced in the child by ``in_child`` (without closing the
parent's connections).

A child dies with its parent (:func:`die_with`, ``PR_SET_PDEATHSIG`` on Linux),
so a process killed hard leaves no worker behind, writing for nobody; and
:meth:`Child.stop` ends work still running when a service's time is up.
Where fork is not available the work runs in the calling process.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

from newsbot.errors import NewsbotError

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
    """Runs one piece of work at a time in a forked child and hands back its result."""

    def __init__(self, name: str, in_child: Callable[[], None] = lambda: None) -> None:
        """``name``: what the work is, for messages; ``in_child`` runs first in the child:
        it drops what a child may not share with its parent, such as pooled database
        connections."""
        self.name = name
        self.in_child = in_child
        self._lock = threading.Lock()
        self._running: BaseProcess | None = None
        self._stopped = False

    def run(self, work: Callable[[], _Result]) -> _Result:
        """``work()`` in a child; its exception is raised here, as if it had run here."""
        if not available():
            return work()
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_child,
            args=(self.name, work, sender, self.in_child, os.getpid()),
            name=f"newsbot-{self.name}",
            daemon=False,  # a daemonic child could not fork its own workers
        )
        try:
            with self._lock:
                if self._stopped:
                    raise ChildEnded(f"the {self.name} was not started: stopping")
                with _no_log_record_half_written():
                    child.start()  # may fail (no memory, too many processes)
                self._running = child
        except BaseException:
            receiver.close()
            raise
        finally:
            sender.close()
        try:
            # The child's own end is the sentinel: a worker of the work holding the
            # pipe open after the child was killed must not keep this waiting.
            wait([receiver, child.sentinel])
            try:
                if not receiver.poll():
                    raise EOFError
                ok, value = receiver.recv()
            except EOFError:
                child.join()
                raise ChildEnded(_how_it_ended(self.name, child.exitcode)) from None
            except Exception as exc:  # a result or exception that does not unpickle here
                raise ChildEnded(f"the {self.name}'s result: {type(exc).__name__}: {exc}") from None
        finally:
            receiver.close()
            child.join()
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
            child = self._running
        if child is None:
            return
        # Only `run` reaps the child (join, exitcode): two threads waiting for one
        # process race for its exit status, and the loser reads none. Here, its
        # sentinel says when it has ended; signals to a child already reaped are
        # not sent.
        child.terminate()
        if not wait([child.sentinel], max(grace, 0.1)):
            child.kill()
            wait([child.sentinel], KILL_WAIT_SECONDS)


@contextlib.contextmanager
def _no_log_record_half_written() -> Iterator[None]:
    """Hold every logging handler's lock across the fork.

    Another thread writing a log record at the moment of the fork would leave
    the child a stream whose buffer lock nobody will release: the child's
    first log line would wait forever. Holding the handlers' locks means no
    record is half written when the fork happens.
    """
    handlers = _handlers()
    for handler in handlers:
        handler.acquire()
    try:
        yield
    finally:
        for handler in reversed(handlers):
            handler.release()


def _handlers() -> list[logging.Handler]:
    loggers: list[logging.Logger | logging.PlaceHolder] = [logging.getLogger()]
    loggers += list(logging.Logger.manager.loggerDict.values())
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            found.setdefault(id(handler), handler)
    return list(found.values())


def available() -> bool:
    """Whether work can run in a forked child here."""
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
    name: str,
    work: Callable[[], object],
    sender: Connection,
    in_child: Callable[[], None],
    parent: int,
) -> None:
    """The work, and its outcome back to the parent through ``sender``."""
    die_with(parent)
    _name_self(f"newsbot-{name.split()[0]}")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler would only set an event
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    send_outcome(sender, in_child, work, ChildEnded)


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
