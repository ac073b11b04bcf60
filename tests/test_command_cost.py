"""What a command pays for besides its work: the modules it loads and how it exits.

A build of one new article in 10,000 is about one second of CPU, and most of
it is not the article: interpreter start-up, imports and exit. These tests
run the real command in a fresh interpreter and check what it loads and
leaves, never how long it takes (speed figures live in ``bench/build.py``).
"""

from __future__ import annotations

import subprocess
import sys


def test_the_command_leaves_what_is_alive_at_exit_to_the_system() -> None:
    """At exit the interpreter collects every object still alive; after a one-article build
    of 10,000 that cost ~80 ms (a tenth of the command) for memory the process hands back
    anyway. The command line freezes the collector at exit instead."""
    script = (
        "import newsbot.cli\n"
        "class Cycle:\n"
        "    def __del__(self) -> None:\n"
        "        print('collected at exit')\n"
        "cycle = Cycle()\n"
        "cycle.me = cycle\n"
        "del cycle\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "collected at exit" not in ran.stdout


def test_what_the_command_line_imports_is_not_walked_again_by_the_collector() -> None:
    """Modules, classes and settings models live as long as the process: each full
    collection walked them again while the command imported and worked (~30 ms of a
    one-article build of 10,000). They are frozen once the command line is imported."""
    script = (
        "import gc\n"
        "before = gc.get_freeze_count()\n"
        "import newsbot.cli\n"
        "print(before, gc.get_freeze_count())\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = ran.stdout.split()
    assert int(before) == 0
    assert int(after) > 10_000
