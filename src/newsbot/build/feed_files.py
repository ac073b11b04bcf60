"""The feeds step of a build: RSS, Atom and JSON Feed, and the index page, of each feed set.

Only the feed sets an added, changed or removed article belongs to are
rendered again; a feed set left without articles loses its files (the
site's keeps an empty feed). A file that cannot be written is noted with its
feed set, which the next build renders again (`newsbot.state.unwritten.Retry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from newsbot.articles import tag_slug
from newsbot.build import parallel
from newsbot.build.output import Output
from newsbot.build.site import SiteView
from newsbot.layout import FILES, FeedPlace
from newsbot.state.index import SITE, FeedKey, Stored
from newsbot.state.unwritten import Retry

if TYPE_CHECKING:
    from newsbot.render import feeds
    from newsbot.render.pages import Pages

PARALLEL_FROM = 40
"""Below this many feed sets, forking a second process costs more than it saves."""


class FeedFiles:
    """Renders feed sets into the output folder."""

    def __init__(self, site: SiteView, output: Output, pages: Pages) -> None:
        self.site = site
        self.output = output
        self.pages = pages

    def write(self, keys: set[FeedKey], now: datetime) -> tuple[int, list[str], int]:
        """Render every feed set in ``keys``; returns how many files changed, the URLs of
        the feeds that changed, and how many files of feed sets left empty were removed.

        Many feed sets are rendered by several processes (`newsbot.build.parallel`).
        """
        wanted = [key for key in sorted(keys) if self.site.wanted(key)]
        shares = parallel.split(
            partial(self._write_share, now=now),
            wanted,
            minimum=PARALLEL_FROM,
            in_child=self.site.in_child,
        )
        done: list[tuple[FeedKey, int, list[str]]] = []
        emptied = 0
        for results, written, removed, deleted, unwritten in shares:
            done.extend(results)
            self.output.adopt(written, removed, unwritten=unwritten)
            emptied += deleted
        done.sort()
        urls = [url for *_, changed in done for url in changed]
        return sum(count for _, count, _ in done), urls, emptied

    def _write_share(
        self, keys: Sequence[FeedKey], now: datetime
    ) -> tuple[
        list[tuple[FeedKey, int, list[str]]], set[str], set[str], int, dict[str, tuple[Retry, str]]
    ]:
        """Render the feed sets of ``keys`` (one process's share): for each, how many files
        changed and the URLs of the feeds that changed; then the names of the files
        written (or found as they should be) and removed, how many files were there
        to remove, and the files that could not be written."""
        from newsbot.render import feeds
        from newsbot.render.pages import ListPage

        written, removed = set(self.output.written), set(self.output.removed)
        unwritten = dict(self.output.unwritten)
        results: list[tuple[FeedKey, int, list[str]]] = []
        deleted = 0
        settings = self.site.settings
        base_url = self.site.base_url
        for key in keys:
            count = 0
            changed: list[str] = []
            place = FeedPlace(*key)
            stored = [
                Stored(s.article.as_seen(now), s.html)
                for s in self.site.index.newest(key, now, settings.feeds.items)
            ]
            if not stored and key != SITE:
                names = [*(place.file(fmt) for fmt in FILES), place.index]
                deleted += sum(self.output.remove(name) for name in names)
                continue
            info = self._feed_info(place, stored)
            self.site.prefetch((s.article for s in stored), now)
            entries = [
                feeds.Entry(
                    s.article,
                    settings.site.id_prefix + s.article.id,
                    s.html,
                    related=self.site.related(s.article, now),
                )
                for s in stored
            ]
            retry = Retry.feed(key)
            for fmt, render in feeds.RENDERERS.items():
                if self.output.write(place.file(fmt), render(info, entries), retry):
                    count += 1
                    changed.append(place.url(base_url, fmt))
            sections, tags = self._nav_lists() if key == SITE else ((), ())
            page = ListPage(
                title=info.title,
                description=info.description,
                language=info.language,
                feeds=self.site.feed_links(place),
                items=[s.article for s in stored],
                hub=info.hub,
                sections=sections,
                tags=tags,
                home=None if key == SITE else base_url,
                site_title=settings.site.title,
            )
            count += self.output.write(place.index, self.pages.list_page(page), retry)
            results.append((key, count, changed))
        return (
            results,
            self.output.written - written,
            self.output.removed - removed,
            deleted,
            self.output.unwritten_since(unwritten),
        )

    def _feed_info(self, place: FeedPlace, stored: Sequence[Stored]) -> feeds.FeedInfo:
        from newsbot.render import feeds

        site = self.site.settings.site
        hub = self.site.settings.feeds.hub
        title, description = site.title, site.description
        if place.kind != "site":
            name = _display_name(place, stored)
            label = "Tag" if place.kind == "tag" else "Section"
            title = f"{site.title}: {name}"
            description = f"{label} “{name}” of {site.title}."
        return feeds.FeedInfo(
            title=title,
            description=description,
            home_url=place.url(self.site.base_url),
            language=site.language,
            id=f"{site.id_prefix}feeds/{place.folder or 'site'}",
            urls={fmt: place.url(self.site.base_url, fmt) for fmt in FILES},
            hub=str(hub) if hub else None,
            author=site.author,
        )

    def _nav_lists(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(name, URL) of every section and tag page, for the index page's navigation."""
        base_url = self.site.base_url
        links = [(k[0], name, FeedPlace(*k).url(base_url)) for k, name in self.site.feeds()]
        sections = sorted((n, u) for kind, n, u in links if kind == "section")
        tags = sorted((n, u) for kind, n, u in links if kind == "tag")
        return sections, tags


def _display_name(place: FeedPlace, stored: Sequence[Stored]) -> str:
    for item in stored:
        names = item.article.tags if place.kind == "tag" else (item.article.section or "",)
        for name in names:
            if tag_slug(name) == place.slug:
                return name
    return place.slug
