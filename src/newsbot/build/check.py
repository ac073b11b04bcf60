"""``newsbot check``: every problem of the store, without writing anything.

Files unchanged since the last build are taken from the index (their
problems were recorded when they were read); changed and new files are read
now, and every file when the index was built with other settings. On top of
per-file problems it reports ids used twice and related references that match
no article.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import select

from newsbot.articles import Article
from newsbot.build.builder import fingerprint
from newsbot.errors import Problem
from newsbot.related.references import TitleIndex, resolve_all
from newsbot.settings import Settings
from newsbot.state.index import Known, StoreIndex, decode_article
from newsbot.state.schema import articles, sources
from newsbot.store.fields import Site
from newsbot.store.reader import read
from newsbot.store.scan import FileStat, walk


def check_store(settings: Settings, index: StoreIndex) -> list[Problem]:
    """All problems of the store as it is on disk now, sorted by path and line."""
    root = settings.store.content_dir
    site = Site(str(settings.site.base_url), settings.site.permalink, settings.site.zone)
    files, problems = walk(root)
    # An index built with other settings (a lower size limit, another site) is stale
    # as a whole: the next build forgets it, and so does the check.
    fresh = index.get_meta("fingerprint") == fingerprint(settings)
    known = index.known() if fresh else {}
    stale = [f for f in files if not _same(known.get(f.path), f)]
    stale_paths = {f.path for f in stale}
    current = {f.path for f in files} - stale_paths
    found: list[Article] = []
    for article, stored_problems in _from_index(index, current):
        problems.extend(stored_problems)
        if article is not None:
            found.append(article)
    for stat in stale:
        parsed = read(root, stat, site, settings.store.max_file_bytes)
        problems.extend(parsed.problems)
        if parsed.article is not None:
            found.append(parsed.article)
    # Who owns an id is decided as the build decides it: the file stored first, edits
    # included, then new files by path.
    first = _first_stored(index) if fresh else {}
    found.sort(key=lambda article: (first.get(article.path, _NEW), article.path))
    problems.extend(_duplicates(found))
    problems.extend(_unresolved(found))
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.field or ""))


_NEW = 2**63
"""Sorts files the index has no article of after every stored one."""


def _first_stored(index: StoreIndex) -> dict[str, int]:
    """The build that first stored each article of the index."""
    with index.engine.connect() as conn:
        rows = conn.execute(select(articles.c.path, articles.c.added))
        return {row.path: row.added for row in rows}


def _same(known: Known | None, stat: FileStat) -> bool:
    return known is not None and (known.size, known.mtime_ns) == (stat.size, stat.mtime_ns)


def _from_index(
    index: StoreIndex, paths: set[str]
) -> Iterator[tuple[Article | None, list[Problem]]]:
    query = (
        select(sources.c.path, sources.c.problems, articles.c.data)
        .select_from(sources.outerjoin(articles, articles.c.path == sources.c.path))
        .order_by(articles.c.added, sources.c.path)
    )
    with index.engine.connect() as conn:
        for row in conn.execute(query):
            if row.path not in paths:
                continue
            stored = [Problem(**item) for item in json.loads(row.problems)]
            yield (decode_article(row.data) if row.data else None), stored


def _duplicates(found: list[Article]) -> Iterator[Problem]:
    owners: dict[str, str] = {}
    for article in found:
        owner = owners.setdefault(article.id, article.path)
        if owner != article.path:
            yield Problem(
                article.path, f"id {article.id!r} is already used by {owner}; left out", field="id"
            )


def _unresolved(found: list[Article]) -> Iterator[Problem]:
    titles = TitleIndex(found)
    for article in found:
        for resolution in resolve_all(article, titles):
            if resolution.article_id is None:
                yield Problem(
                    article.path,
                    f"{resolution.ref!r} matches no article of the store (left out)",
                    field="related",
                    warning=True,
                )
