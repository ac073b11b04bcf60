"""Processes as Linux's ``/proc`` shows them: children, names, liveness, mapped files."""

from __future__ import annotations

from pathlib import Path


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
