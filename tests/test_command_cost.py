"""What a command pays for besides its work: the modules it loads and how it exits.

A build of one new article in 10,000 is about one second of CPU, and most of
it is not the article: interpreter start-up, imports and exit. These tests
run the real command in a fresh interpreter and check what it loads and
leaves, never how long it takes (speed figures live in ``bench/build.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.stores import make_settings, settings_env, write_later

ARTICLE = "---\nid: {id}\ntitle: Article {id}\ndate: 2025-03-01\n---\n\nBody.\n"


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


def test_a_build_of_a_markdown_article_loads_neither_posting_nor_scraped_page_code(
    tmp_path: Path,
) -> None:
    """A build of Markdown articles needs neither the posting side of the state (deliveries,
    leases, replies: ~1 % of a one-article build of 10,000) nor the scraped pages' reader.
    A build then an added article's build, each in a fresh interpreter as the command runs."""
    content = tmp_path / "content"
    write_later(content / "2025/budget.md", ARTICLE.format(id="budget"))
    settings = make_settings(tmp_path, content)
    script = (
        "import sys\n"
        "from newsbot.cli import main\n"
        "try:\n"
        "    main(['build', '--quiet'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "finally:\n"
        "    print(' '.join(sorted(m for m in sys.modules if m.startswith('newsbot.'))))\n"
    )
    env = {**os.environ, **settings_env(settings)}
    loaded = []
    for article in ("budget", "storm"):
        write_later(content / f"2025/{article}.md", ARTICLE.format(id=article))
        ran = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
        )
        loaded.append(set(ran.stdout.split()))
    assert all("newsbot.build.feed_files" in modules for modules in loaded)  # they did build
    for modules in loaded:
        posting = {"newsbot.state.deliveries", "newsbot.state.leases", "newsbot.state.replies"}
        assert not modules & posting
        assert "newsbot.store.scraped" not in modules
