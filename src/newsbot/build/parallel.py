"""The output steps of a build on every core: shares of the work in forked processes.

Rendering pages and feeds is pure Python, so one process uses one core. A
large build splits its items into one share per core: each share but the
first goes to a child forked from the build, which inherits everything the
build set up (settings, templates, the index's engine, the output folder)
and writes its files itself; only its result (counts and file names) comes
back, pickled through a pipe. The build process does the first share
meanwhile. Forked children share the parent's memory until they write to
it, so the peak of each process stays close to the build's own.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.connection import Connection
from typing import TypeVar

from newsbot.errors import NewsbotError
from newsbot.forked import available, die_with, send_outcome

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

MAX_PROCESSES = 8


class ShareFailed(NewsbotError):
    """A child ended without its result (killed, out of memory) or could not send back its
    own exception: the build fails as a build in one process would, and the next starts over."""


def processes() -> int:
    """How many processes share the work: one per core, and fork must be there."""
    if not available():
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


def split(
    work: Callable[[Sequence[_Item]], _Result],
    items: Sequence[_Item],
    *,
    minimum: int,
    in_child: Callable[[], None] = lambda: None,
) -> list[_Result]:
    """``work`` applied to shares of ``items``, in parallel when there are ``minimum`` or more.

    Shares are interleaved (item ``i`` goes to share ``i % n``) so that each gets
    a similar mix. ``in_child`` runs first in each child: it must drop what a
    child may not share with its parent, such as pooled database connections.
    An exception of a child is raised here, after every child has ended.
    """
    count = processes()
    if len(items) < minimum or count < 2:
        return [work(items)]
    shares = [items[start::count] for start in range(count)]
    context = multiprocessing.get_context("fork")
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for share in shares[1:]:
            receiver, sender = context.Pipe(duplex=False)
            started = context.Process(
                target=_child, args=(work, share, sender, in_child, os.getpid()), daemon=True
            )
            started.start()
            sender.close()
            children.append((started, receiver))
        results = [work(shares[0])]
        failure: BaseException | None = None
        for _, receiver in children:
            try:
                ok, value = receiver.recv()
            except EOFError:
                ok, value = False, ShareFailed("a build process ended without a result")
            except Exception as exc:  # a result that cannot be read back
                ok, value = False, ShareFailed(f"{type(exc).__name__}: {exc}")
            if ok:
                results.append(value)
            elif failure is None:
                failure = value
        if failure is not None:
            raise failure
        return results
    finally:
        for child, receiver in children:
            receiver.close()
            child.join()


def _child(
    work: Callable[[Sequence[_Item]], _Result],
    share: Sequence[_Item],
    sender: Connection,
    in_child: Callable[[], None],
    parent: int,
) -> None:
    """One child's share; its result or its exception goes back through ``sender``."""
    die_with(parent)
    send_outcome(sender, in_child, partial(work, share), ShareFailed)
