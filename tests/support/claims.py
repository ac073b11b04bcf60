"""Two claimers at once on one database: which rows each took (they must never share one)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def claimed_by_two(claim: Callable[[str], Sequence[int]]) -> int:
    """Run ``claim(owner)`` on two threads, each until it takes nothing; how many they took.

    Fails if both took one id.
    """
    claimed: dict[str, list[int]] = {"one": [], "two": []}

    def work(owner: str) -> None:
        while batch := claim(owner):
            claimed[owner] += batch

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed["one"]) & set(claimed["two"]), "a row was claimed twice"
    return len(claimed["one"]) + len(claimed["two"])
