"""Work in a child process (`newsbot.forked`): results, failures, kills, stops, orphans,
locks held by the parent's other threads, and the child's logging."""

from __future__ import annotations

import json
import logging
import os
import pickle
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
from newsbot.logs import MASK, configure
from newsbot.settings import LogSettings
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


def _three() -> list[int]:
    return [1, 2, 3]


HELD = threading.Lock()
"""A lock of this module: held by a thread of the test's process in one test."""


def _take_held() -> bool:
    """In the child: whether this module's lock is free (it would not be in a fork)."""
    taken = HELD.acquire(timeout=2)
    if taken:
        HELD.release()
    return taken


def _log_secret() -> None:
    logging.getLogger("newsbot.test").warning("the token is s3cr3t-token", extra={"x": 1})


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
    assert Child[list[int]]("test").run(_three) == [1, 2, 3]


def test_work_that_does_not_pickle_is_refused_here() -> None:
    with pytest.raises((AttributeError, pickle.PicklingError)):
        Child[int]("test").run(lambda: 1)


def test_a_lock_another_thread_holds_does_not_reach_the_child() -> None:
    """The child is a new process, not a fork: a lock another thread of the parent held at
    that moment (SQLite's allocator mutex, say: a build was seen hung in sqlite3.connect)
    is not held for ever in the child."""
    released = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with HELD:
            holding.set()
            released.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        assert Child[bool]("test").run(_take_held)
    finally:
        released.set()
        holder.join()


def test_the_child_logs_as_the_parent_does_with_secrets_masked(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure(LogSettings(format="json"), ["s3cr3t-token"])  # undone by conftest
    Child[None]("test").run(_log_secret)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    assert [(line["logger"], line["message"], line["x"]) for line in lines] == [
        ("newsbot.test", f"the token is {MASK}", 1)
    ]


def test_meanwhile_runs_here_while_the_child_works() -> None:
    calls: list[float] = []
    Child[None]("test").run(_nap, meanwhile=lambda: calls.append(time.monotonic()), every=0.1)
    assert len(calls) >= 3


def _nap() -> None:
    time.sleep(1)


def _result_then_stuck() -> int:
    """A result, and a thread left behind that would keep the child's interpreter from ending."""
    threading.Thread(target=time.sleep, args=(60,)).start()
    return os.getpid()


def test_a_child_stuck_after_its_result_is_ended_not_waited_for() -> None:
    started = time.monotonic()
    pid = Child[int]("test").run(_result_then_stuck)
    assert time.monotonic() - started < 20
    assert not running(pid)


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
    (tmp_path / "orphan_work.py").write_text(
        textwrap.dedent(f"""
            import os, time
            from pathlib import Path

            def work():
                Path({str(pid_file)!r}).write_text(str(os.getpid()))
                time.sleep(60)
        """)
    )
    script = tmp_path / "parent.py"
    script.write_text(
        "from newsbot.forked import Child\nfrom orphan_work import work\nChild('test').run(work)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)])
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
