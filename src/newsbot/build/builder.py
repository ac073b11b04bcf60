"""One build: the store scanned, changed files parsed, affected feeds and pages rewritten.

The work is proportional to what changed: unchanged files are recognised by
their size and modification time (then by a content hash) and never opened;
only the feeds an added, changed or removed article belongs to are rendered
again. A change of the settings that shape the output rebuilds everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import TYPE_CHECKING

from newsbot import __version__
from newsbot.articles import Article, tag_slug
from newsbot.build.output import Output
from newsbot.errors import OutputError, Problem, StoreError
from newsbot.layout import MEDIA_TYPES, FeedPlace, page_file
from newsbot.settings import Settings
from newsbot.state import navigation as indexed
from newsbot.state import suspect
from newsbot.state.index import SITE, FeedKey, Known, Stored, StoreIndex
from newsbot.state.manifest import OutputManifest
from newsbot.state.related import RelatedFinder
from newsbot.state.related_lists import RelatedLists
from newsbot.state.suspect import Suspect
from newsbot.store.assets import AssetRefused, open_asset, store_path
from newsbot.store.fields import Site
from newsbot.store.reader import Parsed, read
from newsbot.store.scan import UNREADABLE, FileStat, walk
from newsbot.summaries import summary_text

if TYPE_CHECKING:  # rendering modules load only when something is rendered
    from newsbot.build import navigation
    from newsbot.render import feeds
    from newsbot.render.pages import Pages

log = logging.getLogger(__name__)

BATCH = 500
PARALLEL_FROM = 400
"""Below this many files to read, starting worker processes costs more than it saves."""

Progress = Callable[[int, int], None]
"""Called with (done, total) while files are read."""


@dataclass
class BuildReport:
    """What a build did, for logs, metrics and the command line."""

    files: int = 0
    read: int = 0
    removed: int = 0
    feeds_written: int = 0
    pages_written: int = 0
    changed_feeds: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    stale_removed: int = 0
    """Files of earlier builds that no longer belong to the output, removed."""
    suspect: Suspect | None = None
    """Why the store was not trusted; then nothing was read, written or removed."""
    related_seconds: float = 0.0
    """Of ``seconds``, the time spent computing and refreshing stored related lists."""


class Builder:
    """Builds the output folder from the store, remembering what it did in the index."""

    def __init__(self, settings: Settings, index: StoreIndex, output: Output) -> None:
        self.settings = settings
        self.index = index
        self.output = output
        self.root = settings.store.content_dir
        self.base_url = str(settings.site.base_url)
        self.site = Site(self.base_url, settings.site.permalink, settings.site.zone)
        self.related = RelatedLists(RelatedFinder(index.engine))
        self._related_cache: dict[str, Sequence[Article]] = {}

    def build(
        self, now: datetime, progress: Progress | None = None, *, confirm_removals: bool = False
    ) -> BuildReport:
        """Bring the output up to date with the store as it is ``now``.

        A suspect store (see `newsbot.state.suspect`) changes nothing: neither the
        index nor the output; ``report.suspect`` says why. ``confirm_removals``
        accepts an empty store or a large loss as intended.
        """
        started = time.perf_counter()
        report = BuildReport()
        stamp = now.astimezone(UTC).isoformat()
        self._related_cache = {}
        full = self._fingerprint() != self.index.get_meta("fingerprint")
        since = self._suspect_since(stamp)
        known = self.index.known()
        try:
            files, walk_problems = walk(self.root)
        except StoreError as exc:
            live = self.index.live_count()
            if not live:
                raise  # nothing published yet: nothing to protect, say what is wrong
            return self._held(report, suspect.missing(str(exc), live, since), started)
        present = {f.path for f in files}
        gone = self.index.live_among(sorted(set(known) - present))
        verdict = suspect.judge(
            live=self.index.live_count(),
            gone=gone,
            present=len(files),
            unreadable=[p.path for p in walk_problems if p.message.startswith(UNREADABLE)],
            settings=self.settings.store,
            since=since,
        )
        if verdict is not None and not (confirm_removals and verdict.confirmable):
            report.files = len(files)
            return self._held(report, verdict, started)
        self.output.begin()
        with self.index.engine.begin() as conn:
            self.manifest.belongs_to(conn, str(self.output.root.resolve()))
        if full:
            self.index.forget_all()
            known = {}
        report.files = len(files)
        to_read = [f for f in files if changed(known.get(f.path), f)]
        removed = sorted(set(known) - present)
        report.read, report.removed = len(to_read), len(removed)
        generation = int(self.index.get_meta("generation") or "0") + 1
        old_media: set[str] = set()
        affected, touched_pages, gone_pages = self._update_index(
            to_read, removed, known, generation, progress, old_media, report
        )
        last = self.index.get_meta("last_build")
        if last is not None:
            due = self.index.due_between(datetime.fromisoformat(last), now)
            affected |= self._keys_of(due)
            touched_pages |= set(due)
        everything = full or not self.output.exists(FeedPlace("site", "").index)
        if everything:
            affected = self.index.feed_keys() | affected
            touched_pages = self.index.paths()
        report.pages_written = self._write_pages(touched_pages, gone_pages, now)
        report.feeds_written, report.changed_feeds = self._write_feeds(affected, now)
        if affected or touched_pages or gone_pages:
            all_months = everything or bool(removed) or bool(gone_pages)
            report.pages_written += self._write_navigation(touched_pages, all_months, now)
        if everything:
            report.stale_removed = self._remove_stale()
        else:
            report.stale_removed = self._remove_unused_media(old_media)
        with self.index.engine.begin() as conn:
            self.manifest.add(conn, self.output.written)
            self.manifest.discard(conn, self.output.removed)
            self.index.set_meta(conn, "fingerprint", self._fingerprint())
            self.index.set_meta(conn, "generation", str(generation))
            self.index.set_meta(conn, "last_build", stamp)
            suspect.save(conn, None)
        report.problems = sorted(walk_problems + self.index.problems(), key=lambda p: p.path)
        report.seconds = time.perf_counter() - started
        return report

    def _held(self, report: BuildReport, verdict: suspect.Suspect, started: float) -> BuildReport:
        """A suspect store: remember why, touch neither the index nor the output."""
        with self.index.engine.begin() as conn:
            suspect.save(conn, verdict)
        report.suspect = verdict
        report.seconds = time.perf_counter() - started
        return report

    def _suspect_since(self, stamp: str) -> str:
        """When the store became suspect: kept from build to build while it stays so."""
        before = suspect.load(self.index.engine)
        return stamp if before is None else before.since

    def _remove_stale(self) -> int:
        """After a build that wrote everything: remove the files of the manifest it did not write.

        Only files in the manifest are candidates, so files newsbot never wrote stay.
        """
        stale = sorted(self.manifest.paths() - self.output.written)
        return sum(self.output.remove(name) for name in stale)

    @cached_property
    def manifest(self) -> OutputManifest:
        return OutputManifest(self.index.engine)

    # -- the index --------------------------------------------------------------

    def _update_index(
        self,
        to_read: Sequence[FileStat],
        removed: Sequence[str],
        known: dict[str, Known],
        generation: int,
        progress: Progress | None,
        old_media: set[str],
        report: BuildReport,
    ) -> tuple[set[FeedKey], set[str], set[str]]:
        """Parse ``to_read``, drop ``removed``; return affected feeds, pages to write, to delete.

        ``old_media`` receives the image URLs the replaced and removed versions referred to.
        """
        affected: set[FeedKey] = set()
        pages: set[str] = set()
        gone: set[str] = set()
        ids: set[str] = set()
        stored: list[str] = []
        done = 0
        for batch in self._parse(to_read):
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
                affected |= self.index.affected_by(conn, paths)
                ids |= self.index.ids_of(conn, paths)
                gone |= self._page_files(self.index.links(conn, paths), old_media)
                added = self.index.added_of(conn, paths)
                self.index.remove(conn, paths)
                self.index.store(conn, fresh, generation, added)
            stored.extend(p.stat.path for p in fresh)
            for parsed in fresh:
                if parsed.article is not None:
                    affected |= _keys(parsed.article)
                    ids.add(parsed.article.id)
                    pages.add(parsed.stat.path)
            done += len(batch)
            if progress:
                progress(done, len(to_read))
        with self.index.engine.begin() as conn:
            affected |= self.index.affected_by(conn, removed)
            ids |= self.index.ids_of(conn, removed)
            gone |= self._page_files(self.index.links(conn, removed), old_media)
            self.index.remove(conn, removed)
            flipped = self.index.settle_ids(conn, ids)
        affected |= self._keys_of(flipped)
        pages |= flipped
        started = time.perf_counter()
        with self.index.engine.begin() as conn:
            # Once every batch is indexed, so that each list sees the whole store.
            relinked = self.related.refresh(
                conn, stored, removed, self.settings.site.related_seconds
            )
            affected |= self.index.affected_by(conn, sorted(relinked))
        report.related_seconds = time.perf_counter() - started
        pages |= relinked
        return affected, pages, gone

    def _parse(self, stats: Sequence[FileStat]) -> Iterator[list[Parsed]]:
        """Parsed files in batches; several processes when there are many."""
        work = partial(
            read, self.root, site=self.site, max_bytes=self.settings.store.max_file_bytes
        )
        workers = min(os.cpu_count() or 1, 8)
        if len(stats) < PARALLEL_FROM or workers < 2:
            for start in range(0, len(stats), BATCH):
                yield [work(stat) for stat in stats[start : start + BATCH]]
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for start in range(0, len(stats), BATCH * workers):
                chunk = stats[start : start + BATCH * workers]
                results = list(pool.map(work, chunk, chunksize=64))
                for offset in range(0, len(results), BATCH):
                    yield results[offset : offset + BATCH]

    def _keys_of(self, paths: Iterable[str]) -> set[FeedKey]:
        with self.index.engine.connect() as conn:
            return self.index.affected_by(conn, sorted(paths))

    def _page_files(self, links: Iterable[tuple[str, str | None]], media: set[str]) -> set[str]:
        """Output files of the pages of ``links`` (see `StoreIndex.links`), read before they
        change. Their images' URLs go into ``media``.
        """
        found: set[str] = set()
        for url, image in links:
            name = page_file(self.base_url, url)
            if name:
                found.add(name)
            if image:
                media.add(image)
        return found

    def _remove_unused_media(self, urls: set[str]) -> int:
        """Remove the copied images that the replaced or removed articles used and none uses now.

        Only images in the manifest (copied by a build) are candidates; one still
        referred to by a readable article stays.
        """
        candidates = {
            name: url
            for url in urls
            if (name := self._media_name(url)) and name not in self.output.written
        }
        if not candidates:
            return 0
        ours = self.manifest.paths_among(sorted(candidates))
        removed = 0
        for name in sorted(ours):
            if not self.index.uses_image(candidates[name]):
                removed += self.output.remove(name)
        return removed

    def _media_name(self, url: str) -> str | None:
        """The output file an image URL of the store is copied to, if it is one."""
        try:
            rel = store_path(url, self.base_url + "media/")
        except AssetRefused:
            return None  # never copied, so nothing to remove
        return None if rel is None else f"media/{rel}"

    # -- the output -------------------------------------------------------------

    def _write_pages(self, paths: set[str], gone: set[str], now: datetime) -> int:
        """Write the page of each live article in ``paths``; delete pages no longer backed."""
        if not self.settings.feeds.pages:
            return 0
        written: set[str] = set()

        count = 0
        feeds_links = self._feed_links(FeedPlace("site", ""))
        for stored in self.index.stored(paths):
            article = stored.article
            name = page_file(self.base_url, article.url)
            if name is None or not article.is_live(now):
                continue
            written.add(name)
            data = self.pages.article_page(
                article,
                stored.html,
                summary=summary_text(article, stored.html),
                site_title=self.settings.site.title,
                home=self.base_url,
                language=self.settings.site.language,
                feeds=feeds_links,
                related=self._related(article, now),
                section=self._place_link("section", article.section),
                tags=[link for tag in article.tags if (link := self._place_link("tag", tag))],
            )
            try:
                count += self.output.write(name, data)
            except OutputError as exc:  # this page's name only (a file where a folder is due)
                log.error("article page not written: %s", exc, extra={"path": article.path})
                continue
            self._copy_media(article)
        for name in gone - written:
            self.output.remove(name)
        return count

    def _related(self, article: Article, now: datetime) -> Sequence[Article]:
        """The stored related list of ``article`` as pages and feeds show it (a lookup)."""
        site = self.settings.site
        found = self._related_cache.get(article.path)
        if found is None:
            found = self.related.related(article, site.related, now, site.related_policy)
            self._related_cache[article.path] = found
        return found

    def _place_link(self, kind: str, name: str | None) -> tuple[str, str] | None:
        """(name, URL of its page) of a tag or section that has a page, else None."""
        if not name or not self._wanted((kind, tag_slug(name))):
            return None
        return name, FeedPlace(kind, tag_slug(name)).url(self.base_url)

    def _write_navigation(self, touched: set[str], everything: bool, now: datetime) -> int:
        """Archive (the months ``touched`` articles are in, or all), sitemap, robots, OPML."""
        from newsbot.build import navigation

        site = self._navigation_site()
        with self.index.engine.connect() as conn:
            counts = indexed.months(conn, now)
            wanted = set(counts) if everything else indexed.months_of(conn, touched) & set(counts)
            count = int(
                self.output.write(
                    "archive/index.html", navigation.archive_index(self.pages, site, counts)
                )
            )
            for month in sorted(wanted):
                items = indexed.month_articles(conn, month, now)
                page = navigation.archive_month(self.pages, site, month, items, counts)
                count += self.output.write(navigation.month_file(month), page)
            keys = sorted(k for k in self.index.feed_keys() if self._wanted(k))
            names = indexed.feed_names(conn, keys)
            places = [(FeedPlace(*k), names.get(k, k[1])) for k in keys]
            listed = [place.url(self.base_url) for place, _ in places]
            listed.append(self.base_url + "archive/")
            dates = indexed.page_dates(conn, now)
            for name, data in navigation.sitemaps(site, listed, dates).items():
                count += self.output.write(name, data)
        count += self.output.write("robots.txt", navigation.robots(site))
        count += self.output.write("feeds.opml", navigation.opml(site, places))
        return count

    def _navigation_site(self) -> navigation.Site:
        from newsbot.build import navigation

        site = self.settings.site
        return navigation.Site(
            self.base_url,
            site.title,
            site.description,
            site.language,
            self._feed_links(FeedPlace("site", "")),
        )

    def _nav_lists(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(name, URL) of every section and tag page, for the index page's navigation."""
        keys = sorted(k for k in self.index.feed_keys() if k[0] != "site" and self._wanted(k))
        with self.index.engine.connect() as conn:
            names = indexed.feed_names(conn, keys)
        links = [(k[0], names[k], FeedPlace(*k).url(self.base_url)) for k in keys]
        sections = sorted((n, u) for kind, n, u in links if kind == "section")
        tags = sorted((n, u) for kind, n, u in links if kind == "tag")
        return sections, tags

    def _copy_media(self, article: Article) -> None:
        """Copy the article's image to ``media/`` if it is a file of the store (checked again:
        the store may have changed since the article was read, or an older index be in use)."""
        if article.image is None:
            return
        try:
            rel = store_path(article.image.url, self.base_url + "media/")
            if rel is None:
                return
            if self.output.exists("media/" + rel):
                self.output.keep("media/" + rel)  # copied before: still this build's
                return
            with open_asset(self.root, rel) as (_, handle):
                self.output.write("media/" + rel, handle.read())
        except AssetRefused as refused:
            log.warning(
                "image not copied: %s %s", article.image.url, refused, extra={"path": article.path}
            )

    @cached_property
    def pages(self) -> Pages:
        from newsbot.render.pages import Pages

        return Pages(self.settings.site.zone)

    def _write_feeds(self, keys: set[FeedKey], now: datetime) -> tuple[int, list[str]]:
        """Render every feed in ``keys``; returns how many files changed, and their feed URLs."""
        from newsbot.render import feeds
        from newsbot.render.pages import ListPage

        count = 0
        changed: list[str] = []
        limit = self.settings.feeds.items
        for key in sorted(keys):
            if not self._wanted(key):
                continue
            place = FeedPlace(*key)
            stored = self.index.newest(key, now, limit)
            if not stored and key != SITE:
                for fmt in feeds.RENDERERS:
                    self.output.remove(place.file(fmt))
                self.output.remove(place.index)
                continue
            info = self._feed_info(place, stored)
            entries = [
                feeds.Entry(
                    s.article,
                    self.settings.site.id_prefix + s.article.id,
                    s.html,
                    related=self._related(s.article, now),
                )
                for s in stored
            ]
            for fmt, render in feeds.RENDERERS.items():
                if self.output.write(place.file(fmt), render(info, entries)):
                    count += 1
                    changed.append(place.url(self.base_url, fmt))
            sections, tags = self._nav_lists() if key == SITE else ((), ())
            page = ListPage(
                title=info.title,
                description=info.description,
                language=info.language,
                feeds=self._feed_links(place),
                items=[s.article for s in stored],
                hub=info.hub,
                sections=sections,
                tags=tags,
                home=None if key == SITE else self.base_url,
                site_title=self.settings.site.title,
            )
            count += self.output.write(place.index, self.pages.list_page(page))
        return count, changed

    def _wanted(self, key: FeedKey) -> bool:
        kind = key[0]
        return (
            kind == "site"
            or (kind == "tag" and self.settings.feeds.per_tag)
            or (kind == "section" and self.settings.feeds.per_section)
        )

    def _feed_info(self, place: FeedPlace, stored: Sequence[Stored]) -> feeds.FeedInfo:
        from newsbot.render import feeds

        site = self.settings.site
        title, description = site.title, site.description
        if place.kind != "site":
            name = _display_name(place, stored)
            label = "Tag" if place.kind == "tag" else "Section"
            title = f"{site.title}: {name}"
            description = f"{label} “{name}” of {site.title}."
        return feeds.FeedInfo(
            title=title,
            description=description,
            home_url=place.url(self.base_url),
            language=site.language,
            id=f"{site.id_prefix}feeds/{place.folder or 'site'}",
            urls={fmt: place.url(self.base_url, fmt) for fmt in feeds.RENDERERS},
            hub=str(self.settings.feeds.hub) if self.settings.feeds.hub else None,
            author=site.author,
        )

    def _feed_links(self, place: FeedPlace) -> dict[str, tuple[str, str]]:
        from newsbot.render import feeds

        return {fmt: (place.url(self.base_url, fmt), MEDIA_TYPES[fmt]) for fmt in feeds.RENDERERS}

    def _fingerprint(self) -> str:
        return fingerprint(self.settings)


def fingerprint(settings: Settings) -> str:
    """What the output depends on besides the articles: any change means a full rebuild."""
    shape = {
        "version": __version__,
        "site": settings.site.model_dump(mode="json"),
        "feeds": settings.feeds.model_dump(mode="json", exclude={"output_dir"}),
        "max_file_bytes": settings.store.max_file_bytes,
        "root": str(settings.store.content_dir.resolve()),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


_NONE = Known(-1, -1, "")


def _keeping(parsed: Parsed) -> Parsed:
    """``parsed`` (a broken file) with a note that its last readable version stays published."""
    note = Problem(
        parsed.stat.path, "the last readable version stays published until this is fixed"
    )
    return replace(parsed, problems=(*parsed.problems, note))


def changed(known: Known | None, stat: FileStat) -> bool:
    """Whether a file must be read: new, or another size or modification time than indexed."""
    return known is None or (known.size, known.mtime_ns) != (stat.size, stat.mtime_ns)


def _keys(article: Article) -> set[FeedKey]:
    keys: set[FeedKey] = {SITE}
    if article.section:
        keys.add(("section", tag_slug(article.section)))
    keys.update(("tag", tag_slug(tag)) for tag in article.tags)
    return keys


def _display_name(place: FeedPlace, stored: Sequence[Stored]) -> str:
    for item in stored:
        names = item.article.tags if place.kind == "tag" else (item.article.section or "",)
        for name in names:
            if tag_slug(name) == place.slug:
                return name
    return place.slug
