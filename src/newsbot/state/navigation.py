"""What the navigation files need from the index: months, feed names, sitemap rows.

The archive, sitemap and list of feeds are made from indexed columns (dates,
links, tags) and read no article body; only a month's page decodes the
articles it lists. `newsbot.build.navigation` turns these rows into files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from newsbot.articles import Article, tag_slug
from newsbot.state.index import decode_article
from newsbot.state.schema import article_tags, articles
from newsbot.state.terms import live

Month = tuple[int, int]

_CHUNK = 500


def month_of(moment: datetime) -> Month:
    """The archive month of a moment (in UTC, as every stored date)."""
    utc = moment.astimezone(UTC)
    return utc.year, utc.month


def _month(stamp: int) -> Month:
    return month_of(datetime.fromtimestamp(stamp, UTC))


def months(conn: Connection, now: datetime) -> Counter[Month]:
    """Live articles per month (one indexed column read, no article decoded)."""
    query = select(articles.c.published).where(*live(now))
    published: Iterable[int] = conn.execute(query).scalars()
    return Counter(_month(stamp) for stamp in published)


def months_of(conn: Connection, paths: Iterable[str]) -> set[Month]:
    """The months the stored articles of ``paths`` are dated in."""
    ordered = sorted(paths)
    found: set[Month] = set()
    for start in range(0, len(ordered), _CHUNK):
        query = select(articles.c.published).where(
            articles.c.path.in_(ordered[start : start + _CHUNK])
        )
        stamps: Iterable[int] = conn.execute(query).scalars()
        found.update(_month(stamp) for stamp in stamps)
    return found


def month_articles(conn: Connection, month: Month, now: datetime) -> list[Article]:
    """The live articles of one month, newest first, without their bodies.

    A month page lists headlines, dates and summaries only; a month of a large
    store holds thousands of articles, whose bodies were the build's largest
    allocation (it grows with the store).
    """
    year, number = month
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    query = (
        select(articles.c.data)
        .where(*live(now))
        .where(articles.c.published >= int(start.timestamp()))
        .where(articles.c.published < int(end.timestamp()))
        .order_by(articles.c.published.desc(), articles.c.id)
    )
    rows: Iterable[str] = conn.execute(query).scalars()
    return [replace(decode_article(data), body="") for data in rows]


def feed_names(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The name each tag or section feed is shown under (as one of its articles writes it)."""
    names: dict[tuple[str, str], str] = {}
    for kind, slug in sorted(keys):
        if kind == "site":
            continue
        query = select(articles.c.data).where(articles.c.visible, ~articles.c.shadowed)
        if kind == "tag":
            query = query.join(article_tags, article_tags.c.path == articles.c.path).where(
                article_tags.c.tag == slug
            )
        else:
            query = query.where(articles.c.section == slug)
        data = conn.execute(query.limit(1)).scalar()
        article = decode_article(data) if data else None
        written = (article.tags if kind == "tag" else (article.section or "",)) if article else ()
        names[(kind, slug)] = next((n for n in written if tag_slug(n) == slug), slug)
    return names


def page_dates(conn: Connection, now: datetime) -> Iterator[tuple[str, int]]:
    """(URL, publication time) of every live article, newest first, for the sitemap."""
    query = (
        select(articles.c.url_key, articles.c.published)
        .where(*live(now))
        .order_by(articles.c.published.desc(), articles.c.path)
    )
    for row in conn.execute(query):
        yield row.url_key or "", int(row.published)
