"""The store index: what the last scan saw, and the parsed articles, in the database.

A build asks it which files changed since last time, hands it the freshly
parsed ones, and asks it for the newest articles of each feed. Rows are keyed
by path; an article id used by two files belongs to one of them, the other is
reported and kept out of the feeds. So does a page two ids make (or a ``url``
that names another article's page): one file would overwrite the other's.

Who owns an id or a page is what an editor expects (see `Rank`): a live article
before a draft, a scheduled or a withdrawn one, and among live ones the one live
first; a draft that goes live later does not take a published article's page.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Column, Connection, Engine, Row, and_, delete, func, insert, select, update

from newsbot.articles import Article, Image, revision_of, tag_slug
from newsbot.errors import Problem
from newsbot.state import terms
from newsbot.state.database import chunks
from newsbot.state.schema import (
    article_tags,
    article_terms,
    articles,
    meta,
    related_links,
    sources,
    term_stats,
)
from newsbot.state.titles import title_key, url_key
from newsbot.store.scan import FileStat
from newsbot.times import epoch_seconds

if TYPE_CHECKING:  # the parsers load only when a build reads files
    from newsbot.store.reader import Parsed

FeedKey = tuple[str, str]
"""Which feed: ``("site", "")``, ``("tag", slug)`` or ``("section", slug)``."""

SITE: FeedKey = ("site", "")


class Age(NamedTuple):
    """When a file was first stored, and since when it has been live (None: it is not)."""

    added: int
    live_since: int | None


class Known(NamedTuple):
    """What the index remembers of one file (a tuple: a build makes one per file of the
    store, and a frozen dataclass costs several times as much to make)."""

    size: int
    mtime_ns: int
    digest: str


@dataclass(frozen=True, slots=True)
class Stored:
    """An article as stored, with its rendered body."""

    article: Article
    html: str
    leads: str | None = None
    """Its posts' lead sentences as the build stored them (`newsbot.summaries.Leads`)."""


GENERATION = "generation"
"""The meta key of the last build that finished: set in its last transaction, once its
output was written. An article first stored by a later build is not on the site yet (its
build is still writing, or failed half-way), so no pass posts it (`DeliveryStore`)."""
UNFINISHED = "output_unfinished"
"""Meta key set while a build's output may lag behind its index: from the first transaction
that can change the index to the end of the build (pages and other files it could not
write are listed then, `newsbot.state.unwritten`, and written again by the next build). A
build that finds it set writes every feed and page (unchanged bytes are left alone), so what
a failed or interrupted build did not write is not lost: its index already says the files
are up to date, and nothing else would ever write them. No publish pass leaves its mark
meanwhile (`newsbot.state.pass_marks`)."""

IDENTITY = "state_id"
"""The meta key of the database's identity: a random value made once, which each output
folder's mark names (`newsbot.build.stamp.read_mark`), so that a folder written from another
database is never taken for one written from this one."""

CHANGES = "changes"
"""The meta key counting changes of the articles table: a row stored, removed or
(un)shadowed. A publish pass that saw this count needs to read no old article
again while it stays the same (see `newsbot.publish.publisher`)."""


class StoreIndex:
    """Queries and updates of the store index over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def known(self) -> dict[str, Known]:
        """Every file the last scan saw."""
        query = select(sources.c.path, sources.c.size, sources.c.mtime_ns, sources.c.digest)
        with self.engine.connect() as conn:
            rows: Iterable[tuple[str, int, int, str]] = conn.execute(query)
            return {path: Known(size, mtime, digest) for path, size, mtime, digest in rows}

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(delete(meta).where(meta.c.key == key))
        conn.execute(insert(meta).values(key=key, value=value))

    def identity(self, conn: Connection) -> str:
        """The database's identity (`IDENTITY`), made on first use."""
        known = conn.execute(select(meta.c.value).where(meta.c.key == IDENTITY)).scalar()
        if known is not None:
            return str(known)
        made = secrets.token_hex(16)
        self.set_meta(conn, IDENTITY, made)
        return made

    def drop_meta(self, conn: Connection, key: str) -> None:
        conn.execute(delete(meta).where(meta.c.key == key))

    def changed(self, conn: Connection) -> None:
        """Count one more change of the stored articles (see `changes`)."""
        self.set_meta(conn, CHANGES, str(int(self.change_count(conn) or "0") + 1))

    def change_count(self, conn: Connection) -> str | None:
        """The count of changes of the stored articles (see `CHANGES`)."""
        value = conn.execute(select(meta.c.value).where(meta.c.key == CHANGES)).scalar()
        return None if value is None else str(value)

    def touch(self, conn: Connection, stats: Iterable[FileStat]) -> None:
        """Remember new stat values of files whose contents did not change."""
        for stat in stats:
            conn.execute(
                update(sources)
                .where(sources.c.path == stat.path)
                .values(size=stat.size, mtime_ns=stat.mtime_ns)
            )

    def affected_by(self, conn: Connection, paths: Sequence[str]) -> set[FeedKey]:
        """The feeds the stored versions of ``paths`` belong to (before they change)."""
        keys: set[FeedKey] = set()
        for chunk in chunks(paths, 500):
            rows: Iterable[str | None] = conn.execute(
                select(articles.c.section).where(articles.c.path.in_(chunk))
            ).scalars()
            keys.update(("section", s) for s in rows if s)
            tags: Iterable[str] = conn.execute(
                select(article_tags.c.tag).where(article_tags.c.path.in_(chunk))
            ).scalars()
            keys.update(("tag", t) for t in tags)
            if chunk:
                keys.add(SITE)
        return keys

    def ids_of(self, conn: Connection, paths: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(paths, 500):
            found.update(
                conn.execute(select(articles.c.id).where(articles.c.path.in_(chunk))).scalars()
            )
        return found

    def pages_of(self, conn: Connection, paths: Sequence[str]) -> set[str]:
        """The page keys the stored versions of ``paths`` claim (see `page_key`)."""
        found: set[str] = set()
        for chunk in chunks(paths, 500):
            query = select(articles.c.page).where(
                articles.c.path.in_(chunk), articles.c.page.is_not(None)
            )
            found.update(conn.execute(query).scalars())
        return found

    def added_of(self, conn: Connection, paths: Sequence[str]) -> dict[str, Age]:
        """The age of each of ``paths`` (kept when a file is stored again, see `Age`)."""
        found: dict[str, Age] = {}
        for chunk in chunks(paths, 500):
            query = select(articles.c.path, articles.c.added, articles.c.live_since).where(
                articles.c.path.in_(chunk)
            )
            found.update({row.path: Age(row.added, row.live_since) for row in conn.execute(query)})
        return found

    def forget_terms(self) -> None:
        """Drop the term index and the related lists: a full build makes them again from
        every file (the code that counted the stored terms may not be the code running)."""
        with self.engine.begin() as conn:
            for table in (related_links, article_terms, term_stats):
                conn.execute(delete(table))
            self.changed(conn)

    def reindex(self, conn: Connection, paths: Sequence[str]) -> None:
        """Index the terms of stored rows again (after `forget_terms`, the rows a full build
        kept as last read)."""
        for chunk in chunks(paths, 500):
            rows = conn.execute(
                select(articles.c.path, articles.c.data).where(articles.c.path.in_(chunk))
            )
            terms.index(conn, [(row.path, decode_article(row.data), None) for row in rows])

    def remove(self, conn: Connection, paths: Sequence[str], *, indexed: bool = True) -> None:
        """Drop the rows of ``paths``; ``indexed=False`` after `forget_terms` (no terms to
        take back: counting them again would cost most of a full build)."""
        if paths:
            self.changed(conn)
        for chunk in chunks(paths, 500):
            if indexed:
                terms.unindex(conn, chunk)
            conn.execute(delete(article_tags).where(article_tags.c.path.in_(chunk)))
            conn.execute(delete(articles).where(articles.c.path.in_(chunk)))
            conn.execute(delete(sources).where(sources.c.path.in_(chunk)))

    def store(
        self,
        conn: Connection,
        batch: Sequence[Parsed],
        generation: int,
        ages: Mapping[str, Age] | None = None,
        *,
        now: datetime,
    ) -> None:
        """Insert freshly parsed files (their old rows must have been removed).

        ``ages`` gives the age of files stored before (see `added_of`): an edited file
        stays as old as it was, and as long live, so it keeps an id or a page a newer
        file also claims. A file live at ``now`` that was not is live from ``generation``.
        """
        if not batch:  # executemany with no rows would insert one row of defaults
            return
        before = ages or {}
        self.store_sources(conn, batch)
        rows = [
            _article_row(p, age_of(p.article, before.get(p.stat.path), now, generation))
            for p in batch
            if p.article is not None
        ]
        if rows:
            conn.execute(insert(articles), rows)
            self.changed(conn)
        tags = [
            {"tag": slug, "path": p.stat.path}
            for p in batch
            if p.article is not None
            for slug in dict.fromkeys(tag_slug(t) for t in p.article.tags)
        ]
        if tags:
            conn.execute(insert(article_tags), tags)
        terms.index(
            conn, [(p.stat.path, p.article, p.counts) for p in batch if p.article is not None]
        )

    def store_sources(self, conn: Connection, batch: Sequence[Parsed]) -> None:
        """(Re)write the source rows of ``batch``: what was read, and what was wrong with it."""
        if not batch:
            return
        paths = [p.stat.path for p in batch]
        for chunk in chunks(paths, 500):
            conn.execute(delete(sources).where(sources.c.path.in_(chunk)))
        conn.execute(
            insert(sources),
            [
                {
                    "path": p.stat.path,
                    "size": p.stat.size,
                    "mtime_ns": p.stat.mtime_ns,
                    "digest": p.digest,
                    "problems": json.dumps([asdict(problem) for problem in p.problems]),
                }
                for p in batch
            ],
        )

    def with_article(self, conn: Connection, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` that have a stored article."""
        found: set[str] = set()
        for chunk in chunks(paths, 500):
            query = select(articles.c.path).where(articles.c.path.in_(chunk))
            found.update(conn.execute(query).scalars())
        return found

    def go_live(
        self, conn: Connection, now: datetime, generation: int
    ) -> tuple[set[str], set[str]]:
        """Mark the scheduled articles whose time has come by ``now`` live from
        ``generation``; returns their ids and pages, to settle again (see `settle`)."""
        query = select(articles.c.id, articles.c.page).where(
            articles.c.visible,
            articles.c.live_since.is_(None),
            articles.c.published <= epoch_seconds(now),
        )
        due = conn.execute(query).all()
        if due:
            conn.execute(
                update(articles)
                .where(
                    articles.c.visible,
                    articles.c.live_since.is_(None),
                    articles.c.published <= epoch_seconds(now),
                )
                .values(live_since=generation)
            )
        return {row.id for row in due}, {row.page for row in due if row.page is not None}

    def settle(self, conn: Connection, ids: Iterable[str], pages: Iterable[str]) -> set[str]:
        """Decide who owns each of ``ids`` and each page of ``pages`` (see `page_key`): the
        file that ranks first (see `Rank`); returns the paths that changed.

        A changed path was left out and now owns its id and page (its page must be
        written), or the reverse (its page belongs to another file now). Only files
        that own their id claim a page; a file that lost its id leaves its page free.
        """
        ids, pages = set(ids), set(pages)
        by_id = _claims(conn, articles.c.id, ids)
        pages.update(row.page for row in by_id.values() if row.page is not None)
        affected = by_id | _claims(conn, articles.c.page, pages)
        more = {row.id for row in affected.values()} - ids  # rivals of a page's claimants
        every = affected | _claims(conn, articles.c.id, more)
        id_owner = owners((row.id, _rank(row), row.path) for row in every.values())
        page_owner = owners(
            (row.page, _rank(row), row.path)
            for row in affected.values()
            if row.page is not None and id_owner[row.id] == row.path
        )
        flipped: set[str] = set()
        for row in affected.values():
            left_out = id_owner[row.id] != row.path or (
                row.page is not None and page_owner[row.page] != row.path
            )
            if left_out != row.shadowed:
                flipped.add(row.path)
                conn.execute(
                    update(articles).where(articles.c.path == row.path).values(shadowed=left_out)
                )
        if flipped:
            self.changed(conn)
        return flipped

    def newest(self, key: FeedKey, now: datetime, limit: int) -> list[Stored]:
        """The newest live articles of a feed, newest first."""
        query = (
            select(articles.c.data, articles.c.html)
            .where(
                articles.c.visible, ~articles.c.shadowed, articles.c.published <= epoch_seconds(now)
            )
            .order_by(articles.c.published.desc(), articles.c.id)
            .limit(limit)
        )
        kind, slug = key
        if kind == "section":
            query = query.where(articles.c.section == slug)
        elif kind == "tag":
            query = query.join(
                article_tags,
                and_(article_tags.c.path == articles.c.path, article_tags.c.tag == slug),
            )
        with self.engine.connect() as conn:
            return [Stored(decode_article(row.data), row.html) for row in conn.execute(query)]

    def showing(self, paths: Sequence[str], now: datetime, limit: int) -> set[FeedKey]:
        """The feeds that show one of ``paths`` among their ``limit`` newest live articles at
        ``now`` (see `newest`): the only feeds that change when nothing but these articles'
        related lists does.

        A few indexed queries per article, each reading at most ``limit`` rows, where
        rendering a feed set takes tens of milliseconds.
        """
        found: set[FeedKey] = set()
        until = epoch_seconds(now)
        with self.engine.connect() as conn:
            for path in paths:
                row = conn.execute(
                    select(articles.c.published, articles.c.id, articles.c.section).where(
                        articles.c.path == path,
                        articles.c.visible,
                        ~articles.c.shadowed,
                        articles.c.published <= until,
                    )
                ).first()
                if row is None:
                    continue  # in no feed now
                keys: list[FeedKey] = [SITE]
                if row.section:
                    keys.append(("section", row.section))
                query = select(article_tags.c.tag).where(article_tags.c.path == path)
                tags: Iterable[str] = conn.execute(query).scalars()
                keys.extend(("tag", tag) for tag in tags)
                for key in keys:
                    if key not in found and _ahead(conn, key, row, until, limit) < limit:
                        found.add(key)
        return found

    def feed_keys(self) -> set[FeedKey]:
        """Every feed that has at least one article behind it."""
        with self.engine.connect() as conn:
            sections: Iterable[str] = conn.execute(
                select(articles.c.section).where(articles.c.section.is_not(None)).distinct()
            ).scalars()
            keys: set[FeedKey] = {("section", s) for s in sections}
            tags: Iterable[str] = conn.execute(select(article_tags.c.tag).distinct()).scalars()
            keys.update(("tag", t) for t in tags)
        return keys | {SITE}

    def due_between(self, start: datetime, end: datetime) -> list[str]:
        """Paths of articles whose date or revision date is a moment in ``(start, end]``: their
        feeds and pages change now (the article appears, or shows its revision date: see
        `Article.as_seen`)."""
        low, high = epoch_seconds(start), epoch_seconds(end)
        query = select(articles.c.path).where(
            (articles.c.published > low) & (articles.c.published <= high)
            | (articles.c.updated > low) & (articles.c.updated <= high)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def next_due(self, conn: Connection, after: datetime) -> int | None:
        """Epoch seconds of the first date or revision date after ``after`` (see
        `due_between`)."""
        moment = epoch_seconds(after)
        found = [
            conn.execute(select(func.min(column)).where(column > moment)).scalar()
            for column in (articles.c.published, articles.c.updated)
        ]
        return min((int(value) for value in found if value is not None), default=None)

    def problems(self) -> list[Problem]:
        """Every problem recorded by the last scan, plus ids and pages used twice."""
        found: list[Problem] = []
        with self.engine.connect() as conn:
            for row in conn.execute(select(sources.c.problems).where(sources.c.problems != "[]")):
                found.extend(Problem(**item) for item in json.loads(row.problems))
            # The left-out rows' paths first: on SQLite the covering index of live articles
            # holds them, where a scan of the table read every row's page (~10 ms of a build
            # of 10,000, for usually none); then the few rows themselves.
            query = select(articles.c.path).where(articles.c.shadowed)
            left_out: list[str] = list(conn.execute(query).scalars())
            for chunk in chunks(sorted(left_out), 500):
                shadowed = conn.execute(
                    select(articles.c.path, articles.c.id, articles.c.page, articles.c.page_field)
                    .where(articles.c.path.in_(chunk))
                    .order_by(articles.c.path)
                ).all()
                found.extend(_left_out(conn, row) for row in shadowed)
        return sorted(found, key=lambda p: (p.path, p.line or 0))

    def ages(self) -> dict[str, Age]:
        """The age of each article of the index (see `owners`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(articles.c.path, articles.c.added, articles.c.live_since))
            return {row.path: Age(row.added, row.live_since) for row in rows}

    def recorded(self, paths: set[str]) -> Iterator[tuple[Article | None, list[Problem]]]:
        """The stored article (None if unreadable) and problems of each of ``paths``."""
        query = (
            select(sources.c.path, sources.c.problems, articles.c.data)
            .select_from(sources.outerjoin(articles, articles.c.path == sources.c.path))
            .order_by(articles.c.added, sources.c.path)
        )
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if row.path not in paths:
                    continue
                stored = [Problem(**item) for item in json.loads(row.problems)]
                yield (decode_article(row.data) if row.data else None), stored

    def links(
        self, conn: Connection, paths: Sequence[str]
    ) -> Iterator[tuple[str | None, str | None]]:
        """(page URL, image URL) of the stored articles of ``paths``; the page is None for a
        file left out, whose page (if any) is another file's."""
        for chunk in chunks(paths, 500):
            query = select(articles.c.data, articles.c.shadowed).where(articles.c.path.in_(chunk))
            for row in conn.execute(query):
                fields = json.loads(row.data)
                image = fields.get("image")
                yield None if row.shadowed else fields["url"], image["url"] if image else None

    def stored(self, paths: Iterable[str]) -> Iterator[Stored]:
        """The articles of ``paths`` that are visible and own their id, with their bodies."""
        ordered = sorted(paths)
        with self.engine.connect() as conn:
            for chunk in chunks(ordered, 500):
                query = select(articles.c.data, articles.c.html).where(
                    articles.c.path.in_(chunk), articles.c.visible, ~articles.c.shadowed
                )
                for row in conn.execute(query):
                    yield Stored(decode_article(row.data), row.html)

    def live_count(self) -> int:
        """How many articles readers may see or will see (not drafts, not withdrawn)."""
        query = select(func.count()).where(articles.c.visible, ~articles.c.shadowed)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def live_among(self, paths: Sequence[str]) -> list[str]:
        """Those of ``paths`` that hold a live article (see `live_count`)."""
        found: list[str] = []
        with self.engine.connect() as conn:
            for chunk in chunks(paths, 500):
                query = select(articles.c.path).where(
                    articles.c.path.in_(chunk), articles.c.visible, ~articles.c.shadowed
                )
                found.extend(conn.execute(query).scalars())
        return found

    def uses_image(self, url: str) -> bool:
        """Whether an article readers may see has the image at ``url``.

        Narrowed by text in the database first (the URL as the stored JSON
        spells it), then checked on the decoded articles.
        """
        spelled = json.dumps(url, ensure_ascii=False)[1:-1]
        pattern = "%" + spelled.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = select(articles.c.data).where(
            articles.c.visible, ~articles.c.shadowed, articles.c.data.like(pattern, escape="\\")
        )
        with self.engine.connect() as conn:
            rows: Iterable[str] = conn.execute(query).scalars()
            for data in rows:
                image = decode_article(data).image
                if image is not None and image.url == url:
                    return True
        return False

    def paths(self) -> set[str]:
        """The path of every readable article."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(articles.c.path)).scalars())

    def articles(self) -> Iterator[Article]:
        """Every article of the store that owns its id (drafts included)."""
        with self.engine.connect() as conn:
            for row in conn.execute(select(articles.c.data).where(~articles.c.shadowed)):
                yield decode_article(row.data)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(articles)).scalar_one())


Rank = tuple[int, int]
"""How strong a file's claim to an id or a page is, lowest first: ``(0, live since)`` for
an article that is or has been live (withdrawn since, say), ``(1, first stored)`` for a
draft or a scheduled article never live.

A live article wins over one readers cannot see, whatever their ages: a draft kept in
the store must not keep a published story off its page. Among live articles the one
live first wins, so a draft (or a scheduled article) that goes live does not take the
page of one already published; among the others, the file stored first, as for ids.
"""

Claim = tuple[str, Rank, str]
"""(article id or page key, rank, path): one file's claim to an id or a page."""


def owners(claims: Iterable[Claim]) -> dict[str, str]:
    """Who owns each id (or page): the file of the first rank (see `Rank`), then by path.

    An edited file keeps its age, so an older article keeps its id when a newer
    file takes it up too. The build settles ownership with it, and ``newsbot
    check`` predicts it with it.
    """
    found: dict[str, tuple[Rank, str]] = {}
    for key, rank, path in claims:
        held = found.get(key)
        if held is None or (rank, path) < held:
            found[key] = (rank, path)
    return {key: path for key, (_, path) in found.items()}


def age_of(article: Article, before: Age | None, now: datetime, generation: int) -> Age:
    """The age of ``article`` stored by build ``generation`` (``before``: its last one).

    Once live, always ranked as live: an article withdrawn (or turned back into a
    draft) keeps its id and page. Its posts were made, and are deleted, under that
    id; a newer file taking the id up would be taken for it and never posted.
    """
    if before is not None and before.live_since is not None:
        live_since: int | None = before.live_since
    elif article.is_live(now):
        live_since = generation
    else:
        live_since = None
    return Age(generation if before is None else before.added, live_since)


def rank_of(age: Age) -> Rank:
    """The rank of a claim of that age (see `Rank`)."""
    return (1, age.added) if age.live_since is None else (0, age.live_since)


def duplicate(path: str, article_id: str, owner: str | None) -> Problem:
    """The problem of a file whose id another file owns."""
    return Problem(path, f"id {article_id!r} is already used by {owner}; left out", field="id")


def taken_page(path: str, url: str, field: str, owner: str | None) -> Problem:
    """The problem of a file whose page (at ``url``) another file owns."""
    return Problem(path, f"its page {url} is already that of {owner}; left out", field=field)


def page_key(page_file: str) -> str:
    """How the index stores a page: a digest of its output file (a link may be long),
    case folded and in NFC, as file systems that ignore case or normalisation (macOS,
    Windows) compare names: there ``articles/Cafe/`` and ``articles/cafe/`` are one file.
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFD", page_file).casefold())
    return hashlib.sha256(folded.encode()).hexdigest()


def _claims(conn: Connection, column: Column[str], values: set[str]) -> dict[str, Row[Any]]:
    """The claims (path, id, page, added, live_since, shadowed) of the rows whose ``column`` is in
    ``values``, by path."""
    found: dict[str, Row[Any]] = {}
    for chunk in chunks(sorted(values), 500):
        query = select(
            articles.c.path,
            articles.c.id,
            articles.c.page,
            articles.c.added,
            articles.c.live_since,
            articles.c.shadowed,
        ).where(column.in_(chunk))
        found.update((row.path, row) for row in conn.execute(query))
    return found


def _rank(row: Row[Any]) -> Rank:
    return rank_of(Age(row.added, row.live_since))


def _left_out(conn: Connection, row: Row[Any]) -> Problem:
    """Why the file of a left-out row is: its id is another's, or its page is."""
    rivals = conn.execute(
        select(articles.c.id, articles.c.added, articles.c.live_since, articles.c.path).where(
            articles.c.id == row.id
        )
    ).all()
    owner = owners((rival.id, _rank(rival), rival.path) for rival in rivals)[row.id]
    if owner != row.path or row.page is None:
        return duplicate(row.path, row.id, owner)
    holder = conn.execute(
        select(articles.c.path).where(articles.c.page == row.page, ~articles.c.shadowed).limit(1)
    ).scalar_one_or_none()
    data: str = conn.execute(
        select(articles.c.data).where(articles.c.path == row.path)
    ).scalar_one()
    return taken_page(row.path, json.loads(data)["url"], row.page_field, holder)


def _article_row(parsed: Parsed, age: Age) -> dict[str, Any]:
    article = parsed.article
    assert article is not None
    page = parsed.page
    return {
        "path": parsed.stat.path,
        "id": article.id,
        "added": age.added,
        "live_since": age.live_since,
        "shadowed": False,
        "published": epoch_seconds(article.published),
        "updated": epoch_seconds(article.updated),
        "section": tag_slug(article.section) if article.section else None,
        "visible": not article.draft and not article.withdrawn,
        "data": encode_article(article),
        "html": parsed.html,
        "leads": None if parsed.leads is None else parsed.leads.encode(),
        "title_key": title_key(article.title),
        "url_key": url_key(article.url),
        "revision": revision_of(article),
        "page": None if page is None else page_key(page.file),
        "page_field": None if page is None else page.field,
    }


_ARTICLE_FIELDS = tuple(f.name for f in fields(Article))
_IMAGE_FIELDS = tuple(f.name for f in fields(Image))


def encode_article(article: Article) -> str:
    """The stored JSON of ``article``: what ``dataclasses.asdict`` gives, built without its
    deep copy (a cold build encodes every article; the copy took most of the time)."""
    data = {name: getattr(article, name) for name in _ARTICLE_FIELDS}
    if article.image is not None:
        data["image"] = {name: getattr(article.image, name) for name in _IMAGE_FIELDS}
    data["published"] = article.published.isoformat()
    data["updated"] = article.updated.isoformat()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode_article(text: str) -> Article:
    data = json.loads(text)
    data["published"] = datetime.fromisoformat(data["published"])
    data["updated"] = datetime.fromisoformat(data["updated"])
    data["image"] = Image(**data["image"]) if data["image"] else None
    for name in ("authors", "tags", "related"):
        data[name] = tuple(data[name])
    return Article(**data)


def _ahead(conn: Connection, key: FeedKey, row: Row[Any], until: int, limit: int) -> int:
    """How many live articles come before ``row`` in the feed ``key`` (in `StoreIndex.newest`'s
    order), counted up to ``limit``."""
    before = (articles.c.published > row.published) | and_(
        articles.c.published == row.published, articles.c.id < row.id
    )
    query = select(articles.c.path).where(
        articles.c.visible, ~articles.c.shadowed, articles.c.published <= until, before
    )
    kind, slug = key
    if kind == "section":
        query = query.where(articles.c.section == slug)
    elif kind == "tag":
        query = query.join(
            article_tags, and_(article_tags.c.path == articles.c.path, article_tags.c.tag == slug)
        )
    counted = select(func.count()).select_from(query.limit(limit).subquery())
    return int(conn.execute(counted).scalar_one())
