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
from typing import Any

from sqlalchemy import Connection, Select, func, select

from newsbot.articles import Article, tag_slug
from newsbot.state.index import decode_article
from newsbot.state.schema import article_tags, articles
from newsbot.state.terms import live

Month = tuple[int, int]

_CHUNK = 500
DAY = 86_400
"""Seconds in a UTC day (epoch seconds count no leap seconds)."""


def month_of(moment: datetime) -> Month:
    """The archive month of a moment (in UTC, as every stored date)."""
    utc = moment.astimezone(UTC)
    return utc.year, utc.month


def _month(stamp: int) -> Month:
    return month_of(datetime.fromtimestamp(stamp, UTC))


def months(conn: Connection, now: datetime) -> Counter[Month]:
    """Live articles per month (one indexed column read, no article decoded).

    Counted by day first: a store has far fewer days than articles, and a date made
    per article was most of the cost.
    """
    query = select(articles.c.published).where(*live(now))
    published: Iterable[int] = conn.execute(query).scalars()
    found: Counter[Month] = Counter()
    for day, count in Counter(stamp // DAY for stamp in published).items():
        found[_month(day * DAY)] += count
    return found


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
    """The name each tag or section feed is shown under: as the first of its visible
    articles (by path) writes it.

    A few queries whatever the number of feeds (a site has hundreds of tags, and one query
    per feed cost a one-article build ~0.1 s): the first article of each tag and of each
    section, then those articles.
    """
    wanted = {key for key in keys if key[0] != "site"}
    visible = (articles.c.visible, ~articles.c.shadowed)
    first: dict[tuple[str, str], str] = {}
    # Each tag's first path from the (tag, path) key, stopping at its first visible article;
    # each section's from one scan (sections are few, their articles many).
    tags = select(article_tags.c.tag).distinct().subquery("tags")
    tagged = article_tags.alias("tagged")
    first_tagged = (
        select(tagged.c.path)
        .join(articles, articles.c.path == tagged.c.path)
        .where(tagged.c.tag == tags.c.tag, *visible)
        .order_by(tagged.c.path)
        .limit(1)
        .scalar_subquery()
    )
    by_tag = select(tags.c.tag, first_tagged)
    by_section = (
        select(articles.c.section, func.min(articles.c.path))
        .where(*visible, articles.c.section.is_not(None))
        .group_by(articles.c.section)
    )
    queries: list[tuple[str, Select[Any]]] = [("tag", by_tag), ("section", by_section)]
    for kind, query in queries:
        if any(key[0] == kind for key in wanted):
            for row in conn.execute(query):
                slug, path = str(row[0]), row[1]
                if path is not None and (kind, slug) in wanted:
                    first[(kind, slug)] = str(path)
    decoded: dict[str, Article] = {}
    for start in range(0, len(paths := sorted(set(first.values()))), _CHUNK):
        rows = select(articles.c.path, articles.c.data).where(
            articles.c.path.in_(paths[start : start + _CHUNK])
        )
        decoded.update((row.path, decode_article(row.data)) for row in conn.execute(rows))
    names: dict[tuple[str, str], str] = {}
    for kind, slug in sorted(wanted):
        article = decoded.get(first.get((kind, slug), ""))
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
