"""Articles whose page the last build could not write, and why.

A page that cannot be written (a file where its folder is due, a folder without
write permission) leaves the other pages and the feeds written, and the build
ends; it lists the article here, in its last transaction. No target posts a
listed article (`newsbot.state.deliveries.DeliveryStore.new_articles`): a post
would link to a page that is not there. Each build writes the listed pages
again, and nothing else it need not; the list is what that build could not
write. An article that leaves the list counts as a change of the store, so
that a publish pass that found nothing to do looks again
(`newsbot.state.pass_marks`).

An article posted before its page failed stays posted: its link holds the page
the build before wrote.

Each output folder has a list of its own (`newsbot.build.stamp.Mark`): copies
of newsbot on one database may each write a folder, and one copy writing a page
says nothing of another's folder. An article is held while a folder built in
the last `HOLDING_SECONDS` lists it: a folder no copy builds any more (a
replaced container's volume) must not hold a post for good. Rows of folder
``""`` (what an older version left unfinished) hold until the next build of
any folder takes them up.

Other files (a feed, an archive page, the sitemap, a copied image) that cannot be
written are listed too, each with what a later build writes again to bring it
(`Retry`, `files`): the build goes on, and later builds retry just those. No post
waits for them: a post links to its article's page, never to a feed or the
archive, and its image is uploaded from the store; holding posts for the site's
feed, which every new article is in, would stop all posting for one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)

from newsbot.state.index import GENERATION, FeedKey
from newsbot.state.navigation import Month
from newsbot.state.schema import articles, meta, output_folders, unwritten_files, unwritten_pages
from newsbot.times import epoch_seconds

HOLDING_SECONDS = 24 * 3600
"""How long after its last build a folder's list still holds posts back."""


def on_site(now: datetime) -> ColumnElement[bool]:
    """Whether the page of the enclosing query's ``articles`` row is on the site: stored by a
    build that finished (one still writing its output, or one that failed half-way, stored
    it before writing its page), and not held by a folder that could not write it (`holds`).

    Posts (`newsbot.state.deliveries.DeliveryStore.new_articles`) and the actor's new notes
    (`newsbot.state.activities.Activities.not_on_site`) link to that page: neither is made
    before it. One expression, read in one statement as the build's last transaction left it.
    """
    finished = select(meta.c.value).where(meta.c.key == GENERATION).scalar_subquery()
    return and_(articles.c.added <= func.coalesce(cast(finished, Integer), 0), ~holds(now))


def holds(now: datetime) -> ColumnElement[bool]:
    """Whether a listed page holds back the post of the article of the enclosing query's
    ``articles`` row (`newsbot.state.deliveries.DeliveryStore.new_articles`)."""
    recent = exists().where(
        output_folders.c.folder == unwritten_pages.c.folder,
        output_folders.c.built >= epoch_seconds(now) - HOLDING_SECONDS,
    )
    return exists().where(
        unwritten_pages.c.path == articles.c.path, or_(unwritten_pages.c.folder == "", recent)
    )


def paths(engine: Engine, folder: str) -> set[str]:
    """The store paths of the articles whose page is not written in ``folder``."""
    with engine.connect() as conn:
        query = select(unwritten_pages.c.path).where(_of(folder))
        return set(conn.execute(query).scalars())


def replace(conn: Connection, folder: str, failed: Mapping[str, str]) -> bool:
    """Make ``failed`` (store path -> error) the list of ``folder``, within the build's last
    transaction; returns whether an article left it (its page written now, or none due any
    more)."""
    before: set[str] = set(
        conn.execute(select(unwritten_pages.c.path).where(_of(folder))).scalars()
    )
    conn.execute(delete(unwritten_pages).where(_of(folder)))
    if failed:
        rows = [
            {"folder": folder, "path": path, "error": error}
            for path, error in sorted(failed.items())
        ]
        conn.execute(insert(unwritten_pages), rows)
    return bool(before - failed.keys())


def _of(folder: str) -> ColumnElement[bool]:
    return unwritten_pages.c.folder.in_((folder, ""))


def listing(engine: Engine) -> list[tuple[str, str]]:
    """(article id, error) of each listed article, by id: what an operator is shown."""
    query = (
        select(articles.c.id, func.min(unwritten_pages.c.error).label("error"))
        .join(articles, articles.c.path == unwritten_pages.c.path)
        .group_by(articles.c.id)
        .order_by(articles.c.id)
    )
    with engine.connect() as conn:
        return [(row.id, row.error) for row in conn.execute(query)]


FEED = "feed"
NAVIGATION = "navigation"
MEDIA = "media"
REMOVE = "remove"


class Retry(NamedTuple):
    """What a build writes again to bring a file (not an article page) the last one could
    not write."""

    kind: str
    """`FEED`, `NAVIGATION`, `MEDIA`, or `REMOVE` (a file to remove, not to write)."""
    source: str
    """Of a feed set's file, the set (``tag:weather``); of an archive month's page, the month
    (``2025-05``), of the other navigation files ``""``; of an image, the store path of the
    article whose page copies it; of a file to remove, ``""``."""

    @classmethod
    def feed(cls, key: FeedKey) -> Retry:
        return cls(FEED, f"{key[0]}:{key[1]}")

    @classmethod
    def navigation(cls, month: Month | None = None) -> Retry:
        return cls(NAVIGATION, "" if month is None else f"{month[0]:04d}-{month[1]:02d}")

    @classmethod
    def media(cls, path: str) -> Retry:
        return cls(MEDIA, path)

    @classmethod
    def removal(cls) -> Retry:
        return cls(REMOVE, "")


@dataclass
class Retries:
    """What a build writes again for the files the folder's last build could not write."""

    names: set[str] = field(default_factory=set)
    """The files themselves."""
    feeds: set[FeedKey] = field(default_factory=set)
    pages: set[str] = field(default_factory=set)
    """Store paths of the articles whose page copies an image not copied."""
    months: set[Month] = field(default_factory=set)
    navigation: bool = False
    """Whether any navigation file is among them (the step runs even if nothing changed)."""
    removals: set[str] = field(default_factory=set)
    """Files the last build could not remove (not among `names`): removed unless written."""


def files(engine: Engine, folder: str) -> Retries:
    """What to write again in ``folder`` for the files its last build could not write, and
    what to remove that it could not remove."""
    found = Retries()
    query = select(unwritten_files.c.name, unwritten_files.c.kind, unwritten_files.c.source)
    with engine.connect() as conn:
        rows: list[tuple[str, str, str]] = [
            (row.name, row.kind, row.source)
            for row in conn.execute(query.where(unwritten_files.c.folder == folder))
        ]
    for name, kind, source in rows:
        if kind == REMOVE:
            found.removals.add(name)
            continue
        found.names.add(name)
        if kind == FEED:
            feed_kind, _, slug = source.partition(":")
            found.feeds.add((feed_kind, slug))
        elif kind == MEDIA:
            found.pages.add(source)
        elif kind == NAVIGATION:
            found.navigation = True
            if source:
                year, _, month = source.partition("-")
                found.months.add((int(year), int(month)))
    return found


def file_listing(engine: Engine) -> list[tuple[str, bool, str]]:
    """(output file, whether it is one to remove, error) of each listed file, by name: what
    an operator is shown."""
    query = (
        select(
            unwritten_files.c.name,
            unwritten_files.c.kind,
            func.min(unwritten_files.c.error).label("error"),
        )
        .group_by(unwritten_files.c.name, unwritten_files.c.kind)
        .order_by(unwritten_files.c.name, unwritten_files.c.kind)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(str(name), kind == REMOVE, str(error)) for name, kind, error in rows]


def replace_files(conn: Connection, folder: str, failed: Mapping[str, tuple[Retry, str]]) -> None:
    """Make ``failed`` (output file -> what brings it, and why it was not written) the list of
    ``folder``'s other files, within the build's last transaction."""
    conn.execute(delete(unwritten_files).where(unwritten_files.c.folder == folder))
    if failed:
        rows = [
            {"folder": folder, "name": name, "kind": retry.kind, "source": retry.source,
             "error": error}
            for name, (retry, error) in sorted(failed.items())
        ]  # fmt: skip
        conn.execute(insert(unwritten_files), rows)
