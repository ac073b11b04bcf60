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
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

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

from newsbot.state.index import GENERATION
from newsbot.state.schema import articles, meta, output_folders, unwritten_pages
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
