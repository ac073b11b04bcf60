"""``newsbot import``: scraped pages become Markdown articles that editors can correct.

A page already in the store is replaced in place: the Markdown file takes the
page's id (so no reader sees a new item), and the page is renamed with an
``.imported`` suffix, which the store ignores. A page from elsewhere lands in
``<folder>/<year>/<headline-slug>.md``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from newsbot.articles import slugify
from newsbot.errors import ArticleError, NewsbotError
from newsbot.settings import Settings
from newsbot.store import scraped
from newsbot.store.assets import asset_size
from newsbot.store.fields import Site, Source
from newsbot.store.text import decode
from newsbot.store.writer import to_markdown


class PageImportError(NewsbotError):
    """A page could not be imported; the message names it."""


def import_page(page: Path, folder: Path, settings: Settings, overwrite: bool = False) -> Path:
    """Convert ``page`` and write the Markdown article; returns the path written."""
    root = settings.store.content_dir.resolve()
    inside = page.resolve().is_relative_to(root)
    rel = page.resolve().relative_to(root).as_posix() if inside else page.name
    site = Site(str(settings.site.base_url), settings.site.permalink, settings.site.zone)
    try:
        text = decode(page.read_bytes())
        article, _ = scraped.parse(text, Source(rel, partial(asset_size, root)), site)
    except OSError as exc:
        raise PageImportError(f"{page}: cannot read: {exc.strerror}") from None
    except ArticleError as exc:
        raise PageImportError(str(exc.at(str(page)))) from None
    if inside:
        target = page.with_suffix(".md")
    else:
        target = folder / f"{article.published.year:04d}" / f"{slugify(article.title, 60)}.md"
    if target.exists() and not overwrite:
        raise PageImportError(f"{target} exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(to_markdown(article), encoding="utf-8")
    if inside:
        page.rename(page.with_name(page.name + ".imported"))
    return target
