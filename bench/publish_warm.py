"""Publish passes in one long-lived process, as ``newsbot run`` makes them.

``bench/publish.py`` runs this in its own process with the same settings (from
the environment) as its ``newsbot publish`` commands. The service keeps one
publisher per target, with its HTTP client and database connections, from pass
to pass; this script does the same: it opens the app and the publishers once,
then, for each command read from standard input, runs passes and answers with
one JSON line:

- ``post N``: passes (pacing off) until N articles are posted (or a pass posts
  nothing); the passes' summed wall time and what they did;
- ``idle``: one pass, timed alone (a pass that should find nothing new).

The time is measured around ``Publisher.run`` only: interpreter start-up and
imports are paid once per process, as in the service.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from newsbot.app import create_app
from newsbot.publish.report import PassReport
from newsbot.publish.targets import targets
from newsbot.settings import load_settings

COUNTS = ("posted", "edited", "deleted", "skipped", "failed", "retries", "waiting")


def _pass(runner: Any) -> tuple[float, PassReport]:
    started = time.perf_counter()
    report = runner.run()
    return time.perf_counter() - started, report


def main() -> int:
    settings = load_settings(None)
    app = create_app(settings)
    try:
        with app.publishers(targets(settings, ()), pacing=False) as runners:
            (runner,) = runners
            print(json.dumps({"ready": True}), flush=True)
            for line in sys.stdin:
                command, _, argument = line.strip().partition(" ")
                answer: dict[str, Any] = {"seconds": 0.0, "passes": 0, "pass_seconds": []}
                answer |= dict.fromkeys(COUNTS, 0)
                wanted = int(argument) if command == "post" else 0
                while True:
                    seconds, report = _pass(runner)
                    answer["seconds"] += seconds
                    answer["passes"] += 1
                    answer["pass_seconds"].append(round(seconds, 5))
                    for name in COUNTS:
                        answer[name] += getattr(report, name)
                    answer["stopped"] = report.stopped
                    if command != "post" or report.stopped or not report.posted:
                        break
                    if answer["posted"] >= wanted:
                        break
                print(json.dumps(answer), flush=True)
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
