"""Watching the store: a changed file is built within seconds, not at the next tick.

The schedule stays the safety net (network file systems and some container
mounts deliver no events), so a missed event only delays a build.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchfiles import Change

log = logging.getLogger(__name__)


class Watcher:
    """Calls ``on_change`` (debounced) whenever a visible file under ``root`` changes."""

    def __init__(self, root: Path, on_change: Callable[[], None], debounce_ms: int = 300) -> None:
        self.root = root
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._absolute_root = root.absolute()  # watchfiles reports absolute, unresolved paths
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsbot-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; waits up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        # Imported here, in the watcher's own thread: watchfiles (and anyio under
        # it) is a third of a second of imports that would otherwise delay the
        # moment the service first answers /healthz.
        from watchfiles import watch

        try:
            for _changes in watch(
                self.root,
                watch_filter=self._visible,
                debounce=self.debounce_ms,
                stop_event=self._stop,
                raise_interrupt=False,
            ):
                self._notify()
        except (OSError, RuntimeError) as exc:
            log.warning("cannot watch the store (%s); relying on the schedule", exc)

    def _notify(self) -> None:
        try:
            self.on_change()
        except Exception:  # the watcher must outlive a failing callback
            log.exception("reacting to a change of the store failed")

    def _visible(self, _change: Change, path: str) -> bool:
        """Whether ``path`` is outside hidden folders of the store (``.git``) and not hidden.

        Judged from the store's root down: a store that lives in a hidden folder
        (``/srv/.newsroom/content``) is watched like any other.
        """
        try:
            parts = Path(path).relative_to(self._absolute_root).parts
        except ValueError:  # a path outside the root (a symbolic link followed)
            parts = Path(path).parts[-1:]
        return not any(part.startswith(".") for part in parts)
