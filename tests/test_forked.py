"""Work in a child process (`newsbot.forked`): results, failures, kills, stops, orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from newsbot.errors import NewsbotError
from newsbot.forked import Child, ChildEnded
from support.processes import running


class Refused(NewsbotError):
    """An error of the work itself."""


class NeedsTwo(Exception):
    """An exception that pickles but cannot be unpickled (its ``__init__`` wants two args)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def _sleep() -> None:
    time.sleep(60)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raise() -> None:
    raise Refused("the work said no")


def _unpicklable() -> object:
    return lambda: None


def _unreadable() -> None:
    raise NeedsTwo("a", "b")


def _pid() -> int:
    return os.getpid()


@pytest.mark.parametrize(
    ("work", "error", "message"),
    [
        (_raise, Refused, "the work said no"),
        (_kill_self, ChildEnded, "the test's process was killed by SIGKILL"),
        (_unpicklable, ChildEnded, "PicklingError|AttributeError"),
        (_unreadable, ChildEnded, "the test's result: TypeError"),
    ],
    ids=["the work's own error", "killed", "a result that does not pickle", "does not unpickle"],
)
def test_a_failure_in_the_child_is_raised_here(
    work: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Child[object]("test").run(work)


def test_the_work_runs_in_another_process_and_its_result_comes_back() -> None:
    assert Child[int]("test").run(_pid) != os.getpid()
    assert Child[list[int]]("test", in_child=lambda: None).run(lambda: [1, 2, 3]) == [1, 2, 3]


def test_stop_ends_the_work_and_refuses_more() -> None:
    child: Child[None] = Child("test")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            child.run(_sleep)
        except ChildEnded as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(0.5)  # the child has started
    started = time.monotonic()
    child.stop(grace=5)
    runner.join(10)
    assert not runner.is_alive() and time.monotonic() - started < 5
    assert "killed by SIGTERM" in str(outcome[0])
    with pytest.raises(ChildEnded, match="not started: stopping"):
        child.run(_pid)


def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed hard (out of memory, SIGKILL) leaves no work running for nobody."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from newsbot.forked import Child

        def work():
            Path({str(pid_file)!r}).write_text(str(os.getpid()))
            time.sleep(60)

        Child("test").run(work)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while running(child):
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
