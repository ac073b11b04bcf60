"""Helpers for tests that build a store: settings in a temporary folder, the output as data.

Builds run the real thing: `create_app` opens a real SQLite file and wires the
real `Builder`; these helpers only name the folders and read what was written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from newsbot.app import App, create_app
from newsbot.build.stamp import MARK
from newsbot.settings import FeedSettings, Settings, SiteSettings, StateSettings, StoreSettings

BASE_URL = "https://news.example.org/"
ID_PREFIX = "tag:news.example.org,2015:"

FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Bytes of characters XML 1.0 forbids (and DEL): none may reach an output file."""
ESCAPED_FORBIDDEN = re.compile(rb"\\u00(?:0[0-8bcef]|1[0-9a-f]|7f)", re.IGNORECASE)
"""The same characters as JSON escapes them."""


def without_newsbot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every ``NEWSBOT_*`` variable but ``NEWSBOT_TEST_*`` (where test servers are)."""
    for name in list(os.environ):
        if name.startswith("NEWSBOT_") and not name.startswith("NEWSBOT_TEST_"):
            monkeypatch.delenv(name)


def make_settings(
    tmp: Path, content: Path, *, base_url: str = BASE_URL, max_file_bytes: int = 2_000_000
) -> Settings:
    """Settings for a store at ``content``, writing into ``tmp/public`` and ``tmp/data``."""
    return Settings(
        site=SiteSettings(base_url=base_url),  # type: ignore[arg-type]
        store=StoreSettings(content_dir=content, max_file_bytes=max_file_bytes),
        feeds=FeedSettings(output_dir=tmp / "public"),
        state=StateSettings(data_dir=tmp / "data"),
    )


def written_store(tmp: Path, files: Mapping[str, str]) -> Settings:
    """``files`` (path in the store -> text) written into ``tmp/content``, and the settings
    of `make_settings` for it."""
    content = tmp / "content"
    for rel, text in files.items():
        write_later(content / rel, text)
    return make_settings(tmp, content)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``NEWSBOT_*`` variables that give the command line the same settings."""
    return {
        "NEWSBOT_SITE__BASE_URL": str(settings.site.base_url),
        "NEWSBOT_STORE__CONTENT_DIR": str(settings.store.content_dir),
        "NEWSBOT_STORE__MAX_FILE_BYTES": str(settings.store.max_file_bytes),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(settings.feeds.output_dir),
        "NEWSBOT_STATE__DATA_DIR": str(settings.state.data_dir),
    }


@contextmanager
def opened(settings: Settings) -> Iterator[App]:
    """The application on ``settings`` (its SQLite file created on first use), closed after."""
    app = create_app(settings)
    try:
        yield app
    finally:
        app.close()


@dataclass(frozen=True)
class Item:
    """One ``<item>`` of an RSS feed."""

    guid: str
    title: str
    link: str


def rss_items(path: Path) -> list[Item]:
    """The items of the RSS file at ``path``, parsed with lxml."""
    root = etree.parse(str(path)).getroot()
    return [
        Item(
            guid=item.findtext("guid") or "",
            title=item.findtext("title") or "",
            link=item.findtext("link") or "",
        )
        for item in root.iter("item")
    ]


@dataclass(frozen=True)
class Written:
    """A file of the output as a build left it: which inode, when, and its bytes."""

    inode: int
    mtime_ns: int
    data: bytes


def snapshot(root: Path) -> dict[str, Written]:
    """Every file under ``root`` by relative path, but its mark: newsbot's own note of the
    build that last wrote the folder (`newsbot.build.stamp.MARK`), hidden and never served,
    and rewritten by every build that gets to its end."""
    found: dict[str, Written] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).as_posix() != MARK:
            info = path.stat()
            found[path.relative_to(root).as_posix()] = Written(
                info.st_ino, info.st_mtime_ns, path.read_bytes()
            )
    return found


def changed(before: dict[str, Written], after: dict[str, Written]) -> set[str]:
    """Files added, removed, rewritten or touched between two snapshots."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def write_later(path: Path, text: str) -> None:
    """Write ``path`` and move its mtime past any earlier one (coarse clocks tie otherwise)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    moment = max(path.stat().st_mtime_ns, before) + 5_000_000_000
    os.utime(path, ns=(moment, moment))


class Interrupted(Exception):
    """What `interrupted` raises: a build stopped half-way, as Ctrl-C or a killed service
    stops one."""


def interrupted(done: int, total: int) -> None:
    """A build's progress callback that stops the build once its first batch of articles is
    stored: before any page, feed or the build's last transaction is written."""
    raise Interrupted(f"stopped after {done} of {total} articles")
