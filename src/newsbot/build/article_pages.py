"""The pages step of a build: one HTML page per live article, and its copied image.

Pages of articles that were replaced or removed are deleted unless written
again, and copied images no article uses any more are removed. An image that
cannot be copied is noted with its article, whose page the next build writes
again (`newsbot.state.unwritten.Retry`); the page itself is written, and the
article posted, without waiting for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from newsbot.articles import Article
from newsbot.build import parallel
from newsbot.build.output import Output
from newsbot.build.site import SITE_PLACE, SiteView
from newsbot.errors import OutputError
from newsbot.layout import page_file
from newsbot.state.index import Stored
from newsbot.state.manifest import OutputManifest
from newsbot.state.unwritten import Retry
from newsbot.store.assets import AssetRefused, open_asset, store_path
from newsbot.summaries import summary_text

if TYPE_CHECKING:
    from newsbot.render.pages import Pages

log = logging.getLogger(__name__)

PARALLEL_FROM = 200
"""Below this many pages, forking a second process costs more than it saves."""
CHUNK = 500
"""Pages whose articles are read, and related lists looked up, together."""


@dataclass
class PagesWritten:
    """What the pages step did."""

    changed: int = 0
    """Files whose bytes changed."""
    deleted: int = 0
    """Pages of removed or withdrawn articles deleted."""
    unwritten: dict[str, str] = field(default_factory=dict)
    """Store path -> why, of each article whose page could not be written."""


class ArticlePages:
    """Writes article pages and copies their images into the output folder."""

    def __init__(self, site: SiteView, output: Output, pages: Pages, root: Path) -> None:
        self.site = site
        self.output = output
        self.pages = pages
        self.root = root

    def write(self, paths: Iterable[str], gone: set[str], now: datetime) -> PagesWritten:
        """Write the page of each live article in ``paths``; delete ``gone`` pages not
        written again.

        Many pages are written by several processes (`newsbot.build.parallel`).
        """
        done = PagesWritten()
        if not self.site.settings.feeds.pages:
            return done
        shares = parallel.split(
            partial(self._write_share, now=now),
            sorted(paths),
            minimum=PARALLEL_FROM,
            in_child=self.site.in_child,
        )
        for changed, written, failed, unwritten in shares:
            done.changed += changed
            self.output.adopt(written, failed=failed, unwritten=unwritten)
            done.unwritten.update(failed.values())
        done.deleted = sum(self.output.remove(name) for name in gone - self.output.written)
        return done

    def _write_share(
        self, paths: Sequence[str], now: datetime
    ) -> tuple[int, set[str], dict[str, tuple[str, str]], dict[str, tuple[Retry, str]]]:
        """Write the pages of ``paths`` (one process's share); returns how many files changed,
        the names of the files written or found as they should be, and of the pages that
        could not be written, each with its article's path and why; then the images that
        could not be copied."""
        before = set(self.output.written)
        unwritten = dict(self.output.unwritten)
        failed: dict[str, tuple[str, str]] = {}
        count = 0
        settings = self.site.settings.site
        base_url = self.site.base_url
        feeds_links = self.site.feed_links(SITE_PLACE)
        for stored in self._stored(paths, now):
            article = stored.article.as_seen(now)
            name = page_file(base_url, article.url)
            if name is None or not article.is_live(now):
                continue
            data = self.pages.article_page(
                article,
                stored.html,
                summary=summary_text(article, stored.html),
                site_title=settings.title,
                home=base_url,
                language=settings.language,
                feeds=feeds_links,
                related=self.site.related(article, now),
                section=self.site.place_link("section", article.section),
                tags=[link for tag in article.tags if (link := self.site.place_link("tag", tag))],
            )
            # The image first: the page shows it, and a page that cannot be written keeps
            # it in the output (it is the build's still, not stale).
            self.copy_media(article)
            try:
                count += self.output.write(name, data)
            except OutputError as exc:
                # This page's name only (a file where a folder is due, no permission): the
                # others are written; its article waits for it (`newsbot.state.unwritten`).
                log.error("article page not written: %s", exc, extra={"path": article.path})
                failed[name] = (article.path, str(exc))
        return count, self.output.written - before, failed, self.output.unwritten_since(unwritten)

    def _stored(self, paths: Sequence[str], now: datetime) -> Iterator[Stored]:
        """The stored articles of ``paths``, a chunk at a time (memory stays bounded), with
        their related lists looked up for the whole chunk at once."""
        for start in range(0, len(paths), CHUNK):
            chunk = list(self.site.index.stored(paths[start : start + CHUNK]))
            self.site.prefetch((stored.article for stored in chunk), now)
            yield from chunk
            # Each list is shown on this page and in at most a few feeds, which look
            # theirs up again: kept for every page, the lists grew with the store.
            self.site.forget(stored.article.path for stored in chunk)

    def copy_media(self, article: Article) -> None:
        """Copy the article's image to ``media/`` if it is a file of the store (checked again:
        the store may have changed since the article was read, or an older index be in use)."""
        if article.image is None or not article.image.url:
            return  # none, or a caption and credit without a photo (a scraped page's)
        try:
            rel = store_path(article.image.url, self.site.base_url + "media/")
            if rel is None:
                return
            if self.output.exists("media/" + rel):
                self.output.keep("media/" + rel)  # copied before: still this build's
                return
            with open_asset(self.root, rel) as (_, handle):  # copied a block at a time
                self.output.copy("media/" + rel, handle, Retry.media(article.path))
        except AssetRefused as refused:
            log.warning(
                "image not copied: %s %s", article.image.url, refused, extra={"path": article.path}
            )

    def remove_unused_media(self, urls: set[str], manifest: OutputManifest) -> int:
        """Remove the copied images that the replaced or removed articles used and none uses now.

        Only images in the manifest (copied by a build) are candidates; one still
        referred to by a readable article stays.
        """
        kept = self.output.written | self.output.failed
        candidates = {
            name: url for url in urls if (name := self._media_name(url)) and name not in kept
        }
        if not candidates:
            return 0
        ours = manifest.paths_among(sorted(candidates))
        removed = 0
        for name in sorted(ours):
            if not self.site.index.uses_image(candidates[name]):
                removed += self.output.remove(name)
        return removed

    def _media_name(self, url: str) -> str | None:
        """The output file an image URL of the store is copied to, if it is one."""
        try:
            rel = store_path(url, self.site.base_url + "media/")
        except AssetRefused:
            return None  # never copied, so nothing to remove
        return None if rel is None else f"media/{rel}"
