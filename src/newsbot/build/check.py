"""``newsbot check``: every problem of the store, without writing anything.

Files unchanged since the last build are taken from the index (their
problems were recorded when they were read); changed and new files are read
now, and every file when the index was built with other settings. On top of
per-file problems it reports ids and pages used twice and related references that match
no article.
"""

from __future__ import annotations

from collections.abc import Iterator

from newsbot.articles import Article
from newsbot.build.indexing import changed
from newsbot.build.stamp import fingerprint
from newsbot.errors import Problem
from newsbot.related.references import TitleIndex, resolve_all
from newsbot.settings import Settings
from newsbot.state.index import StoreIndex, duplicate, owners, taken_page
from newsbot.store.fields import Site, page_of
from newsbot.store.reader import read
from newsbot.store.scan import walk


def check_store(settings: Settings, index: StoreIndex) -> list[Problem]:
    """All problems of the store as it is on disk now, sorted by path and line."""
    root = settings.store.content_dir
    site = Site(str(settings.site.base_url), settings.site.permalink, settings.site.zone)
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
    for stat in stale:
        parsed = read(root, stat, site, settings.store.max_file_bytes)
        problems.extend(parsed.problems)
        if parsed.article is not None:
            found.append(parsed.article)
    # Who owns an id is decided as the build decides it (new files after stored ones, a
    # full build too); titles resolve in that order too.
    added = index.added()
    found.sort(key=lambda article: (added.get(article.path, _NEW), article.path))
    problems.extend(_duplicates(found, added, site))
    problems.extend(_unresolved(found))
    return sorted(problems, key=lambda p: (p.path, p.line or 0, p.field or ""))


_NEW = 2**63
"""Sorts files the index has no article of after every stored one."""


def _duplicates(found: list[Article], added: dict[str, int], site: Site) -> Iterator[Problem]:
    """Files whose id another owns, then files whose page another owns (among id owners)."""
    owner = owners((article.id, added.get(article.path, _NEW), article.path) for article in found)
    pages = {
        article.path: page
        for article in found
        if owner[article.id] == article.path and (page := page_of(article, site)) is not None
    }
    page_owner = owners(
        (pages[article.path].file, added.get(article.path, _NEW), article.path)
        for article in found
        if article.path in pages
    )
    for article in found:
        page = pages.get(article.path)
        if owner[article.id] != article.path:
            yield duplicate(article.path, article.id, owner[article.id])
        elif page is not None and (holder := page_owner[page.file]) != article.path:
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
