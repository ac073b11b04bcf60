"""The site's navigation files: archive, sitemap, robots.txt and the list of every feed.

- ``archive/`` lists every live article by month, newest first: an index of
  the months, and one page per month (``archive/2019/08/``) with links to the
  newer and older months. A new article changes only its month's page, the
  index, and the pages of the months beside its month (whose links change when
  the month is new), so a build rewrites those, not the whole archive.
- ``sitemap.xml`` (sitemaps.org 0.9) lists the site's pages; past 50,000 URLs,
  the protocol's limit per file, it becomes a sitemap index of
  ``sitemap-N.xml`` files. It is made from indexed columns (links and dates),
  never from the articles' texts.
- ``robots.txt`` allows everything and names the sitemap.
- ``feeds.opml`` (OPML 2.0) lists every feed of the site, each tag and each
  section, in every format, for readers that subscribe to a list at once.

A file that cannot be written is noted (`newsbot.state.unwritten.Retry`): the
next build runs this step, and writes that month's page, again.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from newsbot.articles import Article
from newsbot.build.output import Output
from newsbot.build.site import SITE_PLACE, SiteView
from newsbot.layout import FILES, FeedPlace
from newsbot.render.pages import ListPage, Pages
from newsbot.state import navigation as indexed
from newsbot.state.navigation import DAY, Month
from newsbot.state.unwritten import Retry

SITEMAP_LIMIT = 50_000
"""URLs per sitemap file (sitemaps.org)."""

FORMAT_NAMES = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


@dataclass(frozen=True, slots=True)
class Site:
    """What the navigation files say about the site."""

    base_url: str
    title: str
    description: str
    language: str
    feeds: dict[str, tuple[str, str]]  # format -> (url, media type) of the site's feeds


def write(
    view: SiteView,
    output: Output,
    pages: Pages,
    touched: set[str],
    everything: bool,
    now: datetime,
    again: Iterable[Month] = (),
) -> int:
    """Write the archive (the months ``touched`` articles are in, or all; and the months
    ``again``, whose page the last build could not write), sitemap, robots.txt and OPML;
    returns how many files changed."""
    base_url = view.base_url
    settings = view.settings.site
    site = Site(
        base_url,
        settings.title,
        settings.description,
        settings.language,
        view.feed_links(SITE_PLACE),
    )
    with view.index.engine.connect() as conn:
        counts = indexed.months(conn, now)
        ordered = sorted(counts)
        wanted = (
            set(counts) if everything else neighbours(indexed.months_of(conn, touched), ordered)
        )
        wanted |= set(again) & set(counts)  # a month since emptied has no page to write
        retry = Retry.navigation()
        count = int(output.write("archive/index.html", archive_index(pages, site, counts), retry))
        for month in sorted(wanted):
            items = indexed.month_articles(conn, month, now)
            page = archive_month(pages, site, month, items, counts)
            count += output.write(month_file(month), page, Retry.navigation(month))
        places = [(FeedPlace(*key), name) for key, name in view.feeds()]
        listed = [place.url(base_url) for place, _ in places]
        listed.append(base_url + "archive/")
        for name, data in sitemaps(site, listed, indexed.page_dates(conn, now)).items():
            count += output.write(name, data, retry)
    count += output.write("robots.txt", robots(site), retry)
    count += output.write("feeds.opml", opml(site, places), retry)
    return count


def neighbours(months: Iterable[Month], ordered: Sequence[Month]) -> set[Month]:
    """The pages to write for changes in ``months``: each that has articles (of ``ordered``,
    the months that do), and the months before and after it, whose links to their newer and
    older month change when a month appears or empties."""
    found: set[Month] = set()
    for month in months:
        at = bisect.bisect_left(ordered, month)
        has_articles = at < len(ordered) and ordered[at] == month
        found.update(ordered[max(at - 1, 0) : at + (2 if has_articles else 1)])
    return found


def month_file(month: Month) -> str:
    return f"archive/{month[0]:04d}/{month[1]:02d}/index.html"


def month_url(site: Site, month: Month) -> str:
    return f"{site.base_url}archive/{month[0]:04d}/{month[1]:02d}/"


def archive_index(pages: Pages, site: Site, counts: Counter[Month]) -> bytes:
    """The archive's first page: every month, newest first, as a link with its count."""
    lines = [
        f'<li><a href="{escape(month_url(site, m))}">{m[0]:04d}-{m[1]:02d}</a>'
        f' <span class="meta">{n} article{"s" if n != 1 else ""}</span></li>'
        for m, n in sorted(counts.items(), reverse=True)
    ]
    return pages.archive_index(
        title=f"Archive — {site.title}",
        language=site.language,
        home=site.base_url,
        site_title=site.title,
        feeds=site.feeds,
        months_html="\n".join(lines),
    )


def archive_month(
    pages: Pages, site: Site, month: Month, items: Sequence[Article], counts: Counter[Month]
) -> bytes:
    """One month's page, with links to the newer and older months that have articles."""
    ordered = sorted(counts)
    newer = [m for m in ordered if m > month]
    older = [m for m in ordered if m < month]
    page = ListPage(
        title=f"{month[0]:04d}-{month[1]:02d} — {site.title}",
        description=f"Articles of {month[0]:04d}-{month[1]:02d}.",
        language=site.language,
        feeds=site.feeds,
        items=items,
        home=site.base_url,
        site_title=site.title,
        previous=month_url(site, newer[0]) if newer else None,
        next=month_url(site, older[-1]) if older else None,
    )
    return pages.list_page(page)


def sitemaps(
    site: Site, pages: Sequence[str], articles: Iterable[tuple[str, int]]
) -> dict[str, bytes]:
    """``sitemap.xml`` and, for a large site, its parts: site pages first, then ``articles``.

    ``articles`` are (URL, publication time) pairs, newest first.
    """
    parts: list[bytes] = []
    chunk: list[tuple[str, str | None]] = []
    for url, day in _dated(site, pages, articles):
        chunk.append((url, day))
        if len(chunk) == SITEMAP_LIMIT:  # each part is written out as soon as it is full
            parts.append(_urlset(chunk))
            chunk = []
    if chunk or not parts:
        parts.append(_urlset(chunk))
    if len(parts) == 1:
        return {"sitemap.xml": parts[0]}
    files = {f"sitemap-{n}.xml": part for n, part in enumerate(parts, 1)}
    entries = "".join(
        f"<sitemap><loc>{escape(site.base_url + name)}</loc></sitemap>" for name in files
    )
    index = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>\n'
    )
    return {"sitemap.xml": index.encode("utf-8"), **files}


def _dated(
    site: Site, pages: Sequence[str], articles: Iterable[tuple[str, int]]
) -> Iterator[tuple[str, str | None]]:
    """(URL, day or None) of every entry of the sitemap, in order; read as the parts are made,
    so that a large store's URLs are never all held at once."""
    for url in pages:
        yield url, None
    days: dict[int, str] = {}  # a date written once per day, not once per article
    for url, published in articles:
        if url.startswith(site.base_url):
            day = published // DAY
            if (text := days.get(day)) is None:
                text = days[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
            yield url, text


def _urlset(urls: Sequence[tuple[str, str | None]]) -> bytes:
    entries = "".join(
        f"<url><loc>{escape(url)}</loc>{f'<lastmod>{day}</lastmod>' if day else ''}</url>"
        for url, day in urls
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
    ).encode()


def robots(site: Site) -> bytes:
    return f"User-agent: *\nAllow: /\n\nSitemap: {site.base_url}sitemap.xml\n".encode()


def opml(site: Site, places: Sequence[tuple[FeedPlace, str]]) -> bytes:
    """Every feed of ``places`` (each with its display name), grouped by feed set."""
    groups = []
    for place, name in places:
        title = site.title if place.kind == "site" else f"{site.title}: {name}"
        outlines = "".join(
            f"<outline type=\"rss\" text={quoteattr(f'{title} ({FORMAT_NAMES[fmt]})')}"
            f" title={quoteattr(f'{title} ({FORMAT_NAMES[fmt]})')}"
            f" xmlUrl={quoteattr(place.url(site.base_url, fmt))}"
            f" htmlUrl={quoteattr(place.url(site.base_url))}/>"
            for fmt in FILES
        )
        groups.append(f"<outline text={quoteattr(title)}>{outlines}</outline>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head>'
        f"<title>{escape(site.title)}: all feeds</title>"
        f"</head><body>{''.join(groups)}</body></opml>\n"
    ).encode()
