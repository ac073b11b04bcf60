"""Processes as Linux's ``/proc`` shows them: children, names, liveness, mapped files; and
commands run bound by permission bits."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def held_to_permissions() -> list[str]:
    """The prefix that runs a command bound by permission bits, as an editor's would be.

    The tests run as root here (and in CI): the command runs under ``setpriv`` without
    the two capabilities that let root read and write past permission bits; as any
    other user it runs as it is.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be held to")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def children(pid: int) -> list[int]:
    """The processes ``pid`` started, from any of its threads (Linux's ``/proc``)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread has ended
            continue
    return sorted(found)


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def mapped(pid: int, part: str) -> bool:
    """Whether a file whose path holds ``part`` is mapped into ``pid`` (a loaded extension)."""
    return part in Path(f"/proc/{pid}/maps").read_text()


def comm(pid: int) -> str | None:
    """The name ``pid`` gives itself (``ps`` shows it), or None once it has ended."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
