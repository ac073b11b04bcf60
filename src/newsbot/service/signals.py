"""Stopping the service: SIGTERM and SIGINT, and the shutdown time shared by every part."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(stopping: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stopping`` (only the main thread may install handlers)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


class ShutdownBudget:
    """Seconds left to stop everything; the time starts running at the first question.

    Each part (web server, watcher, scheduler, federation) is given what is
    left of one budget, so the whole stop never takes longer than the setting.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._stop_by: float | None = None

    def left(self) -> float:
        if self._stop_by is None:
            self._stop_by = self._clock() + self.seconds
        return max(0.0, self._stop_by - self._clock())
