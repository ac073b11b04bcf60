"""The index step of a build: changed files parsed and stored, removed ones dropped.

What flows out is what the later steps must redo: the feeds an added, changed
or removed article belongs to, the pages to write and the page files to
delete, and the image URLs the replaced versions used (candidates for removal).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from newsbot import forked
from newsbot.articles import Article, tag_slug
from newsbot.build import parallel
from newsbot.errors import Problem
from newsbot.layout import page_file
from newsbot.settings import Settings
from newsbot.state.index import SITE, FeedKey, Known, StoreIndex, page_key
from newsbot.state.related_lists import RelatedLists
from newsbot.store.scan import FileStat

if TYPE_CHECKING:  # the parsers load only when there is something to read
    from newsbot.store.reader import LeadPlan, Parsed

BATCH = 500
"""Files stored per transaction."""
PARALLEL_FROM = 400
"""Below this many files to read, starting worker processes costs more than it saves."""

Progress = Callable[[int, int], None]
"""Called with (done, total) while files are read."""


@dataclass
class Changes:
    """What the index step changed, for the steps that write the output."""

    feeds: set[FeedKey] = field(default_factory=set)
    """Feeds to render again."""
    pages: set[str] = field(default_factory=set)
    """Store paths whose article pages must be written."""
    gone_pages: set[str] = field(default_factory=set)
    """Output files of pages as they were before this build (deleted unless written again)."""
    old_media: set[str] = field(default_factory=set)
    """Image URLs the replaced and removed versions referred to."""
    relinked: set[str] = field(default_factory=set)
    """Stored articles whose related list changed (their pages are in ``pages``): the feeds
    that show them as entries change too (`StoreIndex.showing`)."""
    related_seconds: float = 0.0
    lists_complete: bool = False
    """Every visible article has its related list stored (none left for a later build)."""


def changed(known: Known | None, stat: FileStat) -> bool:
    """Whether a file must be read: new, or another size or modification time than indexed."""
    return known is None or (known.size, known.mtime_ns) != (stat.size, stat.mtime_ns)


def feeds_of(article: Article) -> set[FeedKey]:
    """The feeds ``article`` belongs to: the site's, its section's and its tags'."""
    keys: set[FeedKey] = {SITE}
    if article.section:
        keys.add(("section", tag_slug(article.section)))
    keys.update(("tag", tag_slug(tag)) for tag in article.tags)
    return keys


class Indexer:
    """Brings the store index up to date with the files that changed."""

    def __init__(self, settings: Settings, index: StoreIndex, related: RelatedLists) -> None:
        self.settings = settings
        self.index = index
        self.related = related
        self.base_url = str(settings.site.base_url)

    def update(
        self,
        to_read: Sequence[FileStat],
        removed: Sequence[str],
        known: dict[str, Known],
        generation: int,
        progress: Progress | None = None,
        *,
        now: datetime,
        backlog: bool = True,
        full: bool = False,
    ) -> Changes:
        """Parse and store ``to_read``, drop ``removed``, then settle ids, pages and related
        lists as they are ``now`` (scheduled articles due by then are live).

        ``backlog``: spend up to ``site.related_seconds`` on lists still missing too.
        ``full``: every file is read again over a dropped term index (`StoreIndex.forget_terms`).
        """
        changes = Changes()
        ids: set[str] = set()
        pages: set[str] = set()
        stored: list[str] = []
        done = 0
        for batch in self._parse(to_read, now):
            fresh = self._store(batch, known, generation, changes, ids, pages, full, now)
            stored.extend(p.stat.path for p in fresh)
            for parsed in fresh:
                if parsed.article is not None:
                    changes.feeds |= feeds_of(parsed.article)
                    ids.add(parsed.article.id)
                    if parsed.page is not None:
                        pages.add(page_key(parsed.page.file))
                    changes.pages.add(parsed.stat.path)
            done += len(batch)
            if progress:
                progress(done, len(to_read))
        with self.index.engine.begin() as conn:
            changes.feeds |= self.index.affected_by(conn, removed)
            ids |= self.index.ids_of(conn, removed)
            pages |= self.index.pages_of(conn, removed)
            self._note_pages(self.index.links(conn, removed), changes)
            self.index.remove(conn, removed, indexed=not full)
            if full:  # rows kept as last read (their file now refused) are indexed again
                unread = sorted({f.path for f in to_read} - set(stored))
                self.index.reindex(conn, sorted(self.index.with_article(conn, unread)))
            due_ids, due_pages = self.index.go_live(conn, now, generation)
            flipped = self.index.settle(conn, ids | due_ids, pages | due_pages)
        changes.feeds |= self.feeds_of_paths(flipped)
        changes.pages |= flipped
        started = time.perf_counter()
        budget = self.settings.site.related_seconds
        with self.index.engine.begin() as conn:
            # Once every batch is indexed, so that each list sees the whole store.
            relinked = self.related.refresh(conn, stored, removed, budget if backlog else None)
        left = budget - (time.perf_counter() - started)
        if backlog and left > 0:  # the rest of the budget for an earlier build's leftovers
            drained = self.related.drain(self.index.engine, left)
            relinked |= drained.changed
            changes.lists_complete = drained.finished
        changes.related_seconds = time.perf_counter() - started
        changes.pages |= relinked
        changes.relinked = relinked
        return changes

    def _store(
        self,
        batch: Sequence[Parsed],
        known: dict[str, Known],
        generation: int,
        changes: Changes,
        ids: set[str],
        pages: set[str],
        full: bool,
        now: datetime,
    ) -> list[Parsed]:
        """Store one batch in one transaction; returns the files whose rows were replaced."""
        fresh = [p for p in batch if p.digest != known.get(p.stat.path, _NONE).digest]
        same = [p.stat for p in batch if p.digest == known.get(p.stat.path, _NONE).digest]
        with self.index.engine.begin() as conn:
            self.index.touch(conn, same)
            # A published article whose file breaks (a typo mid-edit) stays as it was
            # last read: readers keep it and its posts are not deleted as withdrawn.
            broken = [p.stat.path for p in fresh if p.article is None]
            kept = self.index.with_article(conn, broken)
            self.index.store_sources(conn, [_keeping(p) for p in fresh if p.stat.path in kept])
            fresh = [p for p in fresh if p.stat.path not in kept]
            paths = [p.stat.path for p in fresh]
            if known:  # a first build has no older rows to look at
                changes.feeds |= self.index.affected_by(conn, paths)
                ids |= self.index.ids_of(conn, paths)
                pages |= self.index.pages_of(conn, paths)
                self._note_pages(self.index.links(conn, paths), changes)
                added = self.index.added_of(conn, paths)
                self.index.remove(conn, paths, indexed=not full)
            else:
                added = {}
            self.index.store(conn, fresh, generation, added, now=now)
        return fresh

    def _parse(self, stats: Sequence[FileStat], now: datetime) -> Iterator[list[Parsed]]:
        """Parsed files in batches, in the order of ``stats``; several processes when many.

        The workers parse the next batches while this process stores the last one;
        at most two batches per worker wait, which bounds memory on a large store.
        """
        if not stats:
            return
        from newsbot.store.fields import Site
        from newsbot.store.reader import read

        site = self.settings.site
        work = partial(
            read,
            self.settings.store.content_dir,
            site=Site(self.base_url, site.permalink, site.zone),
            max_bytes=self.settings.store.max_file_bytes,
            leads=lead_plan(self.settings, now),
        )
        workers = parallel.processes()
        if len(stats) < PARALLEL_FROM or workers < 2:
            for start in range(0, len(stats), BATCH):
                yield [work(stat) for stat in stats[start : start + BATCH]]
            return
        size = BATCH // workers
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=forked.die_with,  # a killed build takes its parsers with it
            initargs=(os.getpid(),),
        ) as pool:
            pending: list[Future[list[Parsed]]] = []
            starts = iter(range(0, len(stats), size))
            for start in starts:
                pending.append(pool.submit(_read_all, work, stats[start : start + size]))
                if len(pending) >= 2 * workers:
                    break
            batch: list[Parsed] = []
            while pending:
                batch.extend(pending.pop(0).result())
                nxt = next(starts, None)
                if nxt is not None:
                    pending.append(pool.submit(_read_all, work, stats[nxt : nxt + size]))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def feeds_of_paths(self, paths: Iterable[str]) -> set[FeedKey]:
        """The feeds the stored articles of ``paths`` belong to."""
        with self.index.engine.connect() as conn:
            return self.index.affected_by(conn, sorted(paths))

    def _note_pages(self, links: Iterable[tuple[str | None, str | None]], changes: Changes) -> None:
        """Note the page files and images of ``links`` (see `StoreIndex.links`), as stored
        before this build changes them."""
        for url, image in links:
            name = url and page_file(self.base_url, url)
            if name:
                changes.gone_pages.add(name)
            if image:
                changes.old_media.add(image)


def lead_plan(settings: Settings, now: datetime) -> LeadPlan | None:
    """Which leads a build splits for the targets' posts (None: no target, none)."""
    from newsbot.store.reader import LeadPlan
    from newsbot.summaries import LEAD_LENGTH

    targets = settings.targets.values()
    if not targets:
        return None
    hours = max(target.backlog_max_age_hours for target in targets)
    languages = tuple(dict.fromkeys(t.language or settings.site.language for t in targets))
    return LeadPlan(LEAD_LENGTH, languages, now - timedelta(hours=hours))


def _read_all(work: Callable[[FileStat], Parsed], stats: Sequence[FileStat]) -> list[Parsed]:
    """One worker's share: a slice of files read in order."""
    return [work(stat) for stat in stats]


_NONE = Known(-1, -1, "")


def _keeping(parsed: Parsed) -> Parsed:
    """``parsed`` (a broken file) with a note that its last readable version stays published."""
    note = Problem(
        parsed.stat.path, "the last readable version stays published until this is fixed"
    )
    return replace(parsed, problems=(*parsed.problems, note))
