"""Watching the store: a changed file is built within seconds, not at the next tick.

The schedule stays the safety net (network file systems and some container
mounts deliver no events), so a missed event only delays a build.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, watch

log = logging.getLogger(__name__)


class Watcher:
    """Calls ``on_change`` (debounced) whenever a visible file under ``root`` changes."""

    def __init__(self, root: Path, on_change: Callable[[], None], debounce_ms: int = 300) -> None:
        self.root = root
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsbot-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            for _changes in watch(
                self.root,
                watch_filter=_visible,
                debounce=self.debounce_ms,
                stop_event=self._stop,
                raise_interrupt=False,
            ):
                self.on_change()
        except (OSError, RuntimeError) as exc:
            log.warning("cannot watch the store (%s); relying on the schedule", exc)


def _visible(_change: Change, path: str) -> bool:
    return not any(part.startswith(".") for part in Path(path).parts[-3:])
