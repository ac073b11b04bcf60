"""What every output step of a build needs to know about the site.

The settings that shape the output, which feed sets get files, the links
between them, and the stored related lists (looked up once per article and
build, as a page and three feeds show the same list).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from newsbot.articles import Article, tag_slug
from newsbot.layout import MEDIA_TYPES, FeedPlace
from newsbot.settings import Settings
from newsbot.state.index import FeedKey, StoreIndex
from newsbot.state.navigation import feed_names
from newsbot.state.related_lists import RelatedLists

SITE_PLACE = FeedPlace("site", "")


class SiteView:
    """The site as one build sees it; `begin` forgets what the previous build looked up."""

    def __init__(self, settings: Settings, index: StoreIndex, related: RelatedLists) -> None:
        self.settings = settings
        self.index = index
        self.related_lists = related
        self.base_url = str(settings.site.base_url)
        self._related: dict[str, Sequence[Article]] = {}
        self._feeds: list[tuple[FeedKey, str]] | None = None

    def begin(self) -> None:
        self._related = {}
        self._feeds = None

    def in_child(self) -> None:
        """In a process forked from the build: open database connections of its own (the
        parent's pooled ones stay the parent's)."""
        self.index.engine.dispose(close=False)

    def wanted(self, key: FeedKey) -> bool:
        """Whether the feed set ``key`` gets files (tags and sections can be turned off)."""
        kind = key[0]
        feeds = self.settings.feeds
        return (
            kind == "site"
            or (kind == "tag" and feeds.per_tag)
            or (kind == "section" and feeds.per_section)
        )

    def feeds(self) -> list[tuple[FeedKey, str]]:
        """Every feed set that gets files, in order, with the name it is shown under
        (`newsbot.state.navigation.feed_names`).

        Looked up once per build: the site's index page and the navigation files both list
        every section and tag, and in a build of one article the lookup (hundreds of feed
        sets, each named from an article) cost as much as rendering one feed set.
        """
        if self._feeds is None:
            keys = sorted(key for key in self.index.feed_keys() if self.wanted(key))
            with self.index.engine.connect() as conn:
                names = feed_names(conn, keys)
            self._feeds = [(key, names.get(key, key[1])) for key in keys]
        return self._feeds

    def feed_links(self, place: FeedPlace) -> dict[str, tuple[str, str]]:
        """Format -> (URL, media type) of the feeds of ``place``."""
        return {fmt: (place.url(self.base_url, fmt), kind) for fmt, kind in MEDIA_TYPES.items()}

    def place_link(self, kind: str, name: str | None) -> tuple[str, str] | None:
        """(name, URL of its page) of a tag or section that has a page, else None."""
        if not name or not self.wanted((kind, tag_slug(name))):
            return None
        return name, FeedPlace(kind, tag_slug(name)).url(self.base_url)

    def prefetch(self, shown: Iterable[Article], now: datetime) -> None:
        """Look up the stored related lists of ``shown`` at once, before `related` asks for
        them one by one."""
        site = self.settings.site
        missing = [article.path for article in shown if article.path not in self._related]
        if missing:
            found = self.related_lists.lookup_many(missing, site.related, now, site.related_policy)
            self._related.update(found)

    def forget(self, paths: Iterable[str]) -> None:
        """Drop the related lists of ``paths`` (their pages are written)."""
        for path in paths:
            self._related.pop(path, None)

    def related(self, article: Article, now: datetime) -> Sequence[Article]:
        """The stored related list of ``article`` as pages and feeds show it (a lookup)."""
        site = self.settings.site
        found = self._related.get(article.path)
        if found is None:
            found = self.related_lists.lookup(article, site.related, now, site.related_policy)
            self._related[article.path] = found
        return found
