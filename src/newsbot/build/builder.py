"""One build: the store scanned, changed files parsed, affected feeds and pages rewritten.

The work is proportional to what changed: unchanged files are recognised by
their size and modification time (then by a content hash) and never opened;
only the feeds an added, changed or removed article belongs to are rendered
again. A change of the settings that shape the output rebuilds everything.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from newsbot.build.indexing import Indexer, Progress, changed
from newsbot.build.output import Output
from newsbot.build.site import SITE_PLACE, SiteView
from newsbot.build.stamp import (
    PACKAGE,
    Mark,
    Stamp,
    code_digest,
    fingerprint,
    listing,
    read_mark,
    write_mark,
)
from newsbot.errors import Problem, StoreError
from newsbot.settings import Settings
from newsbot.state import build_changes, suspect, unwritten
from newsbot.state.build_changes import BuildChanges
from newsbot.state.index import CHANGES, GENERATION, UNFINISHED, Known, StoreIndex
from newsbot.state.manifest import OutputManifest
from newsbot.state.related import RelatedFinder
from newsbot.state.related_lists import Computed, RelatedLists, Work
from newsbot.state.stamp import STAMP
from newsbot.state.suspect import Suspect
from newsbot.store.scan import UNREADABLE, Scanned, walk
from newsbot.times import epoch_seconds

if TYPE_CHECKING:  # rendering modules load only when something is rendered
    from newsbot.build.article_pages import ArticlePages
    from newsbot.build.feed_files import FeedFiles
    from newsbot.render.pages import Pages

__all__ = ["BuildReport", "Builder", "Progress"]

log = logging.getLogger(__name__)

_FORGOTTEN = Known(size=-1, mtime_ns=-1, digest="")
"""What a full build takes each stored file for: changed, whatever it holds."""

RELATED_PARALLEL_FROM = 16
"""Below this many related lists (~10 ms each), a second process costs more than it saves."""


@dataclass
class BuildReport:
    """What a build did, for logs, metrics and the command line."""

    files: int = 0
    read: int = 0
    removed: int = 0
    """Files of the store gone since the last build (their articles are removed)."""
    feeds_written: int = 0
    pages_written: int = 0
    changed_feeds: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    pages_removed: int = 0
    """Pages of removed or withdrawn articles deleted from the output."""
    stale_removed: int = 0
    """Other files of earlier builds that no longer belong to the output (the feeds of a tag
    or section left without articles, or of a kind turned off; images no article uses),
    removed."""
    suspect: Suspect | None = None
    """Why the store was not trusted; then nothing was read, written or removed."""
    related_seconds: float = 0.0
    """Of ``seconds``, the time spent computing and refreshing stored related lists."""
    unwritten: int = 0
    """Output files that could not be written or removed (logged each); the next build
    tries again."""
    pages_unwritten: dict[str, str] = field(default_factory=dict)
    """Store path -> why, of each article whose page could not be written: no target posts
    it until a build writes the page (`newsbot.state.unwritten`)."""
    files_unwritten: dict[str, str] = field(default_factory=dict)
    """Output file -> why, of each other file (a feed, a navigation file, a copied image)
    that could not be written, and of each file that could not be removed: the next build
    writes or removes it again (`newsbot.state.unwritten.files`), and nothing waits for it."""


class Builder:
    """Builds the output folder from the store, remembering what it did in the index.

    The steps: scan and index (`newsbot.build.indexing`), article pages
    (`newsbot.build.article_pages`), feeds (`newsbot.build.feed_files`) and
    navigation (`newsbot.build.navigation`).
    """

    def __init__(self, settings: Settings, index: StoreIndex, output: Output) -> None:
        self.settings = settings
        self.index = index
        self.output = output
        self.root = settings.store.content_dir
        self.related = RelatedLists(RelatedFinder(index.engine), spread=self._spread)
        self.view = SiteView(settings, index, self.related)
        self.indexer = Indexer(settings, index, self.related)

    def _spread(self, work: Work, paths: Sequence[str]) -> list[list[Computed]]:
        """Related lists computed on every core (`newsbot.build.parallel`)."""
        from newsbot.build import parallel  # multiprocessing: only when lists are computed

        return parallel.split(
            work, paths, minimum=RELATED_PARALLEL_FROM, in_child=self.view.in_child
        )

    def build(
        self,
        now: datetime,
        progress: Progress | None = None,
        *,
        confirm_removals: bool = False,
        backlog: bool = True,
        scanned: Scanned | None = None,
    ) -> BuildReport:
        """Bring the output up to date with the store as it is ``now``.

        A suspect store (see `newsbot.state.suspect`) changes nothing: neither the
        index nor the output; ``report.suspect`` says why. ``confirm_removals``
        accepts an empty store or a large loss as intended. ``backlog=False``
        leaves the related lists still missing to a later build (the build a
        dropped file asks for then does only what that file needs). ``scanned``: the
        store as a scan just found it (`newsbot.build.stamp.compare`), taken instead of
        scanning again.

        What the build looked up (related lists, the files written, the cached
        excerpts) is forgotten when it ends: a service would otherwise hold it
        until its next build.
        """
        try:
            return self._build(now, progress, confirm_removals, backlog, scanned)
        finally:
            self.view.begin()
            self.output.begin()
            _forget_excerpts()

    def _build(
        self,
        now: datetime,
        progress: Progress | None,
        confirm_removals: bool,
        backlog: bool,
        scanned: Scanned | None,
    ) -> BuildReport:
        started = time.perf_counter()
        report = BuildReport()
        stamp = now.astimezone(UTC).isoformat()
        self.view.begin()
        shape = self._fingerprint()
        full = shape != self.index.get_meta("fingerprint")
        since = self._suspect_since(stamp)
        known = self.index.known()
        try:
            files, walk_problems = scanned if scanned is not None else walk(self.root)
        except StoreError as exc:
            live = self.index.live_count()
            if not live:
                raise  # nothing published yet: nothing to protect, say what is wrong
            return self._held(report, suspect.missing(str(exc), live, since), started)
        store_listing = listing(files)
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
        unfinished = self.index.get_meta(UNFINISHED) is not None
        count_before = self.index.get_meta(CHANGES)
        generation = int(self.index.get_meta(GENERATION) or "0") + 1
        mark = self._folder_mark()
        root = str(self.output.root.resolve())
        retried = unwritten.paths(self.index.engine, mark.folder)
        again = unwritten.files(self.index.engine, mark.folder)
        manifest = OutputManifest(self.index.engine, mark.folder)
        with self.index.engine.begin() as conn:
            identity = self.index.identity(conn)
            manifest.belongs_to(conn, root, epoch_seconds(now))
            self.index.drop_meta(conn, STAMP)  # until this build ends complete
            self.index.set_meta(conn, UNFINISHED, stamp)
        if full:
            # Every file is read and stored again, each over its own row: a file the new
            # settings or code refuse keeps its last reading published (its posts are not
            # deleted as withdrawn), and the file stored first keeps an id a copy shares.
            # Terms and related lists are made again from scratch.
            self.index.forget_terms()
            known = dict.fromkeys(known, _FORGOTTEN)
        report.files = len(files)
        to_read = [f for f in files if changed(known.get(f.path), f)]
        removed = sorted(set(known) - present)
        report.read, report.removed = len(to_read), len(removed)
        changes = self.indexer.update(
            to_read, removed, known, generation, progress, now=now, backlog=backlog, full=full
        )
        # What the scan found, a few objects per file of the store, is not needed past the
        # index step: freed here, the pages and navigation steps reuse its memory.
        del files, present, to_read, known
        report.related_seconds = changes.related_seconds
        affected, touched_pages, gone_pages = changes.feeds, changes.pages, changes.gone_pages
        # The files the last build could not write, and only those: the pages, the feed sets
        # and pages of the other files (images), and navigation below.
        touched_pages |= retried | again.pages
        affected |= again.feeds
        # An article whose related list changed is one entry of the feeds that show it; of
        # the others it belongs to (most, in a large store), not a byte changes.
        affected |= self.index.showing(sorted(changes.relinked), now, self.settings.feeds.items)
        last = self.index.get_meta("last_build")
        if last is not None:
            due = self.index.due_between(datetime.fromisoformat(last), now)
            affected |= self.indexer.feeds_of_paths(due)
            touched_pages |= set(due)
        # What this build changes, whatever folder it writes, for folders that lag behind.
        own = None
        if not (full or unfinished):
            own = BuildChanges(
                set(affected), set(touched_pages), set(gone_pages), set(changes.old_media),
                bool(removed) or bool(gone_pages),
            )  # fmt: skip
        # A folder whose mark is not this database's last build lags behind what the index
        # knows (another copy of newsbot, with a folder of its own, read the changes; or
        # this folder was emptied, restored or never written whole): it gets what the
        # builds since its mark changed, or all of it when they are not all known.
        in_step = mark.built_by(identity, generation - 1)
        behind = None
        if not in_step and own is not None and mark.state == identity:
            behind = build_changes.since(self.index.engine, mark.generation, generation - 1)
        old_media = set(changes.old_media)
        if behind is not None:
            affected |= behind.feeds
            touched_pages |= behind.pages
            gone_pages |= behind.gone
            old_media |= behind.media
        caught_up = in_step or behind is not None
        # A site index the last build could not write is listed, not a folder to write whole.
        no_index = SITE_PLACE.index not in again.names and not self.output.exists(SITE_PLACE.index)
        everything = full or unfinished or not caught_up or no_index
        if everything:
            affected = self.index.feed_keys() | affected
            touched_pages = self.index.paths()
        # Each step (and its rendering modules) is loaded only when it has work: a build
        # with nothing changed is mostly interpreter start-up and imports.
        if touched_pages or gone_pages:
            pages = self.article_pages.write(touched_pages, gone_pages, now)
            report.pages_written, report.pages_removed = pages.changed, pages.deleted
            report.pages_unwritten = pages.unwritten
        if affected:
            report.feeds_written, report.changed_feeds, emptied = self.feed_files.write(
                affected, now
            )
            report.stale_removed += emptied
        if affected or touched_pages or gone_pages or again.navigation:
            from newsbot.build import navigation

            all_months = everything or bool(removed) or bool(gone_pages)
            all_months = all_months or (behind is not None and behind.months)
            report.pages_written += navigation.write(
                self.view, self.output, self.pages, touched_pages, all_months, now, again.months
            )
        # The files the last build could not remove, unless this build wrote them again (a
        # tag with articles again): before the stale files, which skip those still stuck.
        for name in sorted(again.removals - self.output.written - self.output.failed):
            report.stale_removed += self.output.remove(name)
        report.unwritten = len(self.output.failed)
        report.files_unwritten = {name: why for name, (_, why) in self.output.unwritten.items()}
        # A file that could not be written (a page, an image, a feed, a navigation file)
        # counts as written here: what the last build left of it stays until a build
        # writes it, and is never removed as stale.
        if everything:
            report.stale_removed += self._remove_stale(manifest)
        elif old_media:
            report.stale_removed += self.article_pages.remove_unused_media(old_media, manifest)
        report.problems = sorted(walk_problems + self.index.problems(), key=lambda p: p.path)
        done_mark = Mark(mark.folder, identity, generation)
        with self.index.engine.begin() as conn:
            manifest.add(conn, self.output.written)
            manifest.discard(conn, self.output.removed)
            self.index.set_meta(conn, "fingerprint", shape)
            self.index.set_meta(conn, GENERATION, str(generation))
            build_changes.record(conn, generation, own)
            # Passes during this build (or after one that stopped half-way) saw its articles
            # stored but not yet posted (`DeliveryStore.new_articles` waits for the build),
            # or articles held for their page that is written now: one more change tells
            # them to read the store again.
            pages_done = unwritten.replace(conn, mark.folder, report.pages_unwritten)
            unwritten.replace_files(conn, mark.folder, self.output.unwritten)
            if unfinished or pages_done or self.index.change_count(conn) != count_before:
                self.index.changed(conn)
            self.index.set_meta(conn, "last_build", stamp)
            suspect.save(conn, None)
            self.index.drop_meta(conn, UNFINISHED)  # what is left unwritten is listed
            if not report.problems and changes.lists_complete and not report.unwritten:
                next_due = self.index.next_due(conn, now)
                done = Stamp(shape, root, store_listing, next_due, done_mark.dumps())
                self.index.set_meta(conn, STAMP, done.dumps())
        listed = len(report.pages_unwritten) + len(report.files_unwritten)
        if report.unwritten == listed:  # every file not written is one the next build retries
            self._mark(done_mark, report)
        report.seconds = time.perf_counter() - started
        return report

    def _folder_mark(self) -> Mark:
        """The output folder's mark; a folder without one is given its id at once, before
        anything is written into it or listed as written (`newsbot.state.manifest`)."""
        found = read_mark(self.output.root)
        if found is not None:
            return found
        made = Mark(secrets.token_hex(16))
        try:
            self.output.root.mkdir(parents=True, exist_ok=True)
            write_mark(self.output.root, made)
        except OSError as exc:  # the writes that follow fail and say so; this build goes on
            log.error("output folder %s not marked: %s", self.output.root, exc.strerror)
        return made

    def _mark(self, mark: Mark, report: BuildReport) -> None:
        """Mark the folder as written whole from this build, once the index says so.

        After the index's last transaction: a crash between the two leaves the old mark,
        and the next build writes everything again rather than trusting a folder that
        may lag behind.
        """
        try:
            write_mark(self.output.root, mark)
        except OSError as exc:
            log.error("output folder %s not marked as written: %s (the next build writes "
                      "every file again)", self.output.root, exc.strerror)  # fmt: skip
            report.unwritten += 1

    def _held(self, report: BuildReport, verdict: suspect.Suspect, started: float) -> BuildReport:
        """A suspect store: remember why, touch neither the index nor the output."""
        with self.index.engine.begin() as conn:
            suspect.save(conn, verdict)
            self.index.drop_meta(conn, STAMP)  # the next build clears the verdict
        report.suspect = verdict
        report.seconds = time.perf_counter() - started
        return report

    def _suspect_since(self, stamp: str) -> str:
        """When the store became suspect: kept from build to build while it stays so."""
        before = suspect.load(self.index.engine)
        return stamp if before is None else before.since

    def _remove_stale(self, manifest: OutputManifest) -> int:
        """After a build that wrote everything: remove the files of the manifest it did not write.

        Only files in the manifest are candidates, so files newsbot never wrote stay.
        """
        stale = sorted(manifest.paths() - self.output.written - self.output.failed)
        return sum(self.output.remove(name) for name in stale)

    @cached_property
    def pages(self) -> Pages:
        from newsbot.build.template_cache import bytecode_cache
        from newsbot.render.pages import Pages

        state = self.settings.state
        compiled = (
            None if state.database_url else bytecode_cache(state.data_dir, code_digest(PACKAGE))
        )
        return Pages(self.settings.site.zone, compiled)

    @cached_property
    def article_pages(self) -> ArticlePages:
        from newsbot.build.article_pages import ArticlePages

        return ArticlePages(self.view, self.output, self.pages, self.root)

    @cached_property
    def feed_files(self) -> FeedFiles:
        from newsbot.build.feed_files import FeedFiles

        return FeedFiles(self.view, self.output, self.pages)

    def _fingerprint(self) -> str:
        return fingerprint(self.settings)


def _forget_excerpts() -> None:
    """Empty the excerpt cache (up to 4,096 article bodies), meant for one build's pages and feeds.

    Looked up in ``sys.modules``: a build that rendered nothing never loaded it.
    """
    summaries = sys.modules.get("newsbot.summaries")
    if summaries is not None:
        summaries.excerpt.cache_clear()
