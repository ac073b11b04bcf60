"""``newsbot check``: every problem of the store, without writing anything.

Files unchanged since the last build are taken from the index (their
problems were recorded when they were read); changed and new files are read
now, and every file when the index was built with other settings. On top of
per-file problems it reports ids and pages used twice and related references that match
no article.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from newsbot.articles import Article
from newsbot.build.indexing import changed
from newsbot.build.stamp import fingerprint
from newsbot.errors import Problem
from newsbot.related.references import TitleIndex, resolve_all
from newsbot.settings import Settings
from newsbot.state.index import (
    Age,
    StoreIndex,
    age_of,
    duplicate,
    owners,
    page_key,
    rank_of,
    taken_page,
)
from newsbot.store.fields import Site, page_of
from newsbot.store.reader import read
from newsbot.store.scan import walk


def check_store(
    settings: Settings, index: StoreIndex, now: datetime | None = None
) -> list[Problem]:
    """All problems of the store as it is on disk ``now`` (default: the clock's), sorted by
    path and line."""
    root = settings.store.content_dir
    site = Site(str(settings.site.base_url), settings.site.permalink, settings.site.zone)
    moment = now or datetime.now(UTC)
    files, problems = walk(root)
    # An index built with other settings or code (a lower size limit, another site) is
    # stale as a whole: the next build reads every file again, and so does the check.
    fresh = index.get_meta("fingerprint") == fingerprint(settings)
    known = index.known() if fresh else {}
    stale = [f for f in files if changed(known.get(f.path), f)]
    stale_paths = {f.path for f in stale}
    current = {f.path for f in files} - stale_paths
    found: list[Article] = []
    for article, stored_problems in index.recorded(current):
        problems.extend(stored_problems)
        if article is not None:
            found.append(article)
    # A revision date still to come is a warning of the check only (a build holds it back,
    # and reports nothing: see `Source.now`); the few files with one are read again for it.
    waiting = [a.path for a in found if a.updated > moment]
    stats = {f.path: f for f in files if f.path in waiting}
    for path in waiting:
        parsed = read(root, stats[path], site, settings.store.max_file_bytes, moment)
        problems.extend(p for p in parsed.problems if p.warning and p.field == "updated")
    for stat in stale:
        parsed = read(root, stat, site, settings.store.max_file_bytes, moment)
        problems.extend(parsed.problems)
        if parsed.article is not None:
            found.append(parsed.article)
    # Who owns an id is decided as the build decides it (new files after stored ones, a
    # full build too); titles resolve in that order too.
    before = index.ages()
    found.sort(key=lambda article: (_age(before, article.path).added, article.path))
    ages = {a.path: age_of(a, before.get(a.path), moment, _NEW) for a in found}
    problems.extend(_duplicates(found, ages, site))
    problems.extend(_unresolved(found))
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.field or ""))


_NEW = 2**63
"""Sorts files the index has no article of after every stored one."""


def _age(ages: dict[str, Age], path: str) -> Age:
    return ages.get(path) or Age(_NEW, None)


def _duplicates(found: list[Article], ages: dict[str, Age], site: Site) -> Iterator[Problem]:
    """Files whose id another owns, then files whose page another owns (among id owners)."""
    ranks = {path: rank_of(age) for path, age in ages.items()}
    owner = owners((article.id, ranks[article.path], article.path) for article in found)
    pages = {
        article.path: (page, page_key(page.file))
        for article in found
        if owner[article.id] == article.path and (page := page_of(article, site)) is not None
    }
    page_owner = owners(
        (pages[article.path][1], ranks[article.path], article.path)
        for article in found
        if article.path in pages
    )
    for article in found:
        if owner[article.id] != article.path:
            yield duplicate(article.path, article.id, owner[article.id])
        elif article.path in pages:
            page, key = pages[article.path]
            if (holder := page_owner[key]) != article.path:
                yield taken_page(article.path, article.url, page.field, holder)


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
