"""Publish passes in a loop until every article has an outcome on every target.

The crash test's victim. Settings come from the ``NEWSBOT_*`` environment
exactly as for ``newsbot publish --no-build --no-pacing``, and passes run
through `newsbot.app.publishers`, leases included. Two things differ,
to fit hundreds of faults into minutes: waits between retries are cut to at
most ``--max-sleep`` seconds, and the targets take turns in a random order,
so that a short life may be spent on any of them.

Alone, it runs until done and exits 0. With ``--fork-server`` it imports
everything once and then reads commands on stdin, one per line,
``life SECONDS``: it forks a victim process that opens the database and
publishes from scratch, lets it live that long once it is set up, kills it
with SIGKILL if it is still running, reaps it, and answers ``killed`` or
``exited CODE`` on stdout. Only the parent kills its own unreaped child, so
no other process can be hit. ``quit`` ends it.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import sys
import time
from datetime import UTC, datetime

from newsbot.app import publishers
from newsbot.publish.targets import targets
from newsbot.settings import Settings, load_settings
from newsbot.state.database import database_url, open_database
from newsbot.state.deliveries import ACTIVE, DeliveryStore
from newsbot.state.replies import RelatedStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--max-sleep", type=float, default=0.05)
    parser.add_argument("--max-passes", type=int, default=100_000)
    parser.add_argument("--fork-server", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.fork_server:
        return _serve_lives(settings, args.max_sleep, args.max_passes)
    return _publish_until_done(settings, args.max_sleep, args.max_passes, ready=None)


def _publish_until_done(
    settings: Settings, max_sleep: float, max_passes: int, ready: int | None
) -> int:
    """Passes over every target until nothing is left to do; 0 when done."""
    engine = open_database(database_url(settings.state))
    store = DeliveryStore(engine)
    rng = random.Random()

    def short_sleep(seconds: float) -> None:
        time.sleep(min(seconds, max_sleep))

    with publishers(settings, engine, targets(settings), pacing=False) as runners:
        for runner in runners:
            runner.sleep = short_sleep
        if ready is not None:
            os.write(ready, b"r")
            os.close(ready)
        for _ in range(max_passes):
            for runner in rng.sample(runners, len(runners)):
                report = runner.run()
                if report.stopped:
                    print(f"{runner.name}: stopped: {report.stopped}", file=sys.stderr, flush=True)
            if all(_done(store, runner.name) for runner in runners):
                return 0
            time.sleep(0.02)
    return 1


def _done(store: DeliveryStore, target: str) -> bool:
    counts = store.report(target)
    unfinished = any(counts.get(state) for state in ACTIVE)
    replies = RelatedStore(store.engine).listing(target, ACTIVE)
    return not unfinished and not replies and not store.new_articles(target, datetime.now(UTC), 1)


def _serve_lives(settings: Settings, max_sleep: float, max_passes: int) -> int:
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command == ["quit"]:
            return 0
        if len(command) != 2 or command[0] != "life":
            print(f"unknown command {line.strip()!r}", flush=True)
            continue
        print(_life(settings, float(command[1]), max_sleep, max_passes), flush=True)
    return 0


def _life(settings: Settings, seconds: float, max_sleep: float, max_passes: int) -> str:
    """One victim: forked, set up, given ``seconds`` to live, killed unless done by then."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 1
        try:
            code = _publish_until_done(settings, max_sleep, max_passes, ready=write_end)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    select.select([read_end], [], [], 60)  # set up (or dead: the pipe closes)
    os.close(read_end)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return f"exited {os.waitstatus_to_exitcode(status)}"
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return "killed" if code == -signal.SIGKILL else f"exited {code}"


if __name__ == "__main__":
    sys.exit(main())
