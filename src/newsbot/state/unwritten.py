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
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Engine, delete, insert, select

from newsbot.state.schema import articles, unwritten_pages


def paths(engine: Engine) -> set[str]:
    """The store paths of the articles whose page is not written."""
    with engine.connect() as conn:
        return set(conn.execute(select(unwritten_pages.c.path)).scalars())


def replace(conn: Connection, failed: Mapping[str, str]) -> bool:
    """Make ``failed`` (store path -> error) the list, within the build's last transaction;
    returns whether an article left it (its page written now, or none due any more)."""
    before: set[str] = set(conn.execute(select(unwritten_pages.c.path)).scalars())
    conn.execute(delete(unwritten_pages))
    if failed:
        rows = [{"path": path, "error": error} for path, error in sorted(failed.items())]
        conn.execute(insert(unwritten_pages), rows)
    return bool(before - failed.keys())


def listing(engine: Engine) -> list[tuple[str, str]]:
    """(article id, error) of each listed article, by id: what an operator is shown."""
    query = (
        select(articles.c.id, unwritten_pages.c.error)
        .join(articles, articles.c.path == unwritten_pages.c.path)
        .order_by(articles.c.id)
    )
    with engine.connect() as conn:
        return [(row.id, row.error) for row in conn.execute(query)]
