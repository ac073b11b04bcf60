"""One store file in, one parsed article (or the reason there is none) out.

This is the unit of work of a build: it is pure apart from reading the file,
so a cold build can run it in several processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from newsbot.articles import Article
from newsbot.errors import ArticleError, Problem
from newsbot.related import tokens
from newsbot.related.tokens import Counts
from newsbot.render import bodies as html
from newsbot.store import markdown
from newsbot.store.assets import AssetRefused, asset_size, open_asset
from newsbot.store.fields import Page, Site, Source, page_of
from newsbot.store.scan import SCRAPED_SUFFIXES, FileStat
from newsbot.store.text import decode
from newsbot.summaries import Leads

RETRY_MTIME = -1
"""The modification time stored for a file that could not be read (see `_unopened`)."""

Parser = Callable[[str, Source, Site], tuple[Article, list[Problem]]]


def _parser(suffix: str) -> Parser:
    """The reader of a file of ``suffix`` (one the scan keeps). The scraped pages' reader
    loads at the first such page: a store of Markdown, or a build of one new Markdown
    article, never needs its tables."""
    if suffix in markdown.SUFFIXES:
        return markdown.parse
    if suffix in SCRAPED_SUFFIXES:
        from newsbot.store import scraped

        return scraped.parse
    raise KeyError(suffix)


@dataclass(frozen=True, slots=True)
class Parsed:
    """What reading one file gave: its identity, the article if any, and its problems."""

    stat: FileStat
    digest: str
    article: Article | None
    html: str
    problems: tuple[Problem, ...]
    counts: Counts | None = None
    """The article's term counts for related articles, counted here to run in parallel."""
    page: Page | None = None
    """The page the article is written to, if it has one on the site."""
    leads: Leads | None = None
    """Its posts' lead sentences, split here to run in parallel (see `LeadPlan`)."""


@dataclass(frozen=True, slots=True)
class LeadPlan:
    """Which articles' leads a build splits (`newsbot.summaries.Leads`), and how.

    Only those a target may post: published since ``since`` (the longest backlog
    age of the targets before the build), with no summary of their own (a post
    then shows that), neither draft nor withdrawn. An article without a language
    gets a lead in each of ``languages``, the targets' own or the site's, as a
    post takes them. Splitting costs about 1 ms an article: a cold build of an
    archive splits nothing.
    """

    budget: int
    languages: tuple[str | None, ...]
    since: datetime

    def leads(self, article: Article, body_html: str) -> Leads | None:
        """The leads of ``article`` if it is one of those a target may post."""
        if article.summary.strip() or article.draft or article.withdrawn:
            return None
        if article.published < self.since:
            return None
        languages = [article.lang or language for language in self.languages]
        try:
            return Leads.of(html.lead_text(body_html), self.budget, languages)
        except Exception:  # a text pysbd fails on: its post splits it again, and says so there
            return None


def read(
    root: Path,
    stat: FileStat,
    site: Site,
    max_bytes: int,
    now: datetime | None = None,
    leads: LeadPlan | None = None,
) -> Parsed:
    """Read and parse the file ``stat`` describes; a broken file gives problems, never raises.

    ``now``: when ``newsbot check`` reads it (see `Source.now`); ``leads``: which leads
    to split, for a build."""
    # A file left unread still needs a digest: an empty one would read as "not indexed yet"
    # and its problem would never be recorded.
    unread = f"unread-{stat.size}-{stat.mtime_ns}"
    if stat.size > max_bytes:
        problem = Problem(stat.path, f"file is {stat.size:,} bytes, over the {max_bytes:,} limit")
        return Parsed(stat, unread, None, "", (problem,))
    # Opened as every image is: the walk checked the file, but it may have become a link out
    # of the store or a FIFO since (a build reads long after its walk, in other processes).
    try:
        with open_asset(root, stat.path) as (_, file):
            data = file.read(max_bytes + 1)
    except AssetRefused as refused:
        return _unopened(stat, unread, f"not read: the file {refused}")
    except OSError as exc:
        return _unopened(stat, unread, f"cannot read: {exc.strerror}")
    if len(data) > max_bytes:
        problem = Problem(stat.path, f"file is over the {max_bytes:,} byte limit")
        return Parsed(stat, unread, None, "", (problem,))
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return parse_bytes(root, stat, digest, data, site, now, leads)


def _unopened(stat: FileStat, digest: str, message: str) -> Parsed:
    """A file that could not be opened or read, stored as if modified at a time no file has.

    What keeps it from being read is usually fixed outside the file (``chmod``,
    ``chown``, a link put right, a disk remounted), which leaves its size and
    modification time as they were: stored with its own, it would count as
    unchanged and keep its problem until edited. So every build tries it again.
    """
    return Parsed(
        stat._replace(mtime_ns=RETRY_MTIME), digest, None, "", (Problem(stat.path, message),)
    )


def parse_bytes(
    root: Path,
    stat: FileStat,
    digest: str,
    data: bytes,
    site: Site,
    now: datetime | None = None,
    leads: LeadPlan | None = None,
) -> Parsed:
    """Parse file contents already read; ``digest`` identifies the contents."""
    source = Source(path=stat.path, asset_size=partial(asset_size, root), now=now)
    parser = _parser(Path(stat.path).suffix.lower())
    try:
        article, warnings = parser(decode(data), source, site)
    except ArticleError as exc:
        return Parsed(stat, digest, None, "", (exc.at(stat.path),))
    except RecursionError:
        problem = Problem(stat.path, "nested too deeply to read")
        return Parsed(stat, digest, None, "", (problem,))
    counts = tokens.count(article.title, article.body, article.lang, tokens.WEIGHTING)
    body_html = html.render(article.body, article.url)
    page = page_of(article, site)
    kept = None if leads is None else leads.leads(article, body_html)
    return Parsed(stat, digest, article, body_html, tuple(warnings), counts, page, kept)
