"""HTML pages: the index of each feed set (with feed autodiscovery) and article pages.

Article pages carry OpenGraph tags, because every server that receives a post
fetches the link to build its preview card; they are small static files, so
that costs the site nothing.

Every value a template prints goes through `_finalize` first: whatever reaches
a page, from an article or from the settings, carries no character XML forbids
and no bidirectional control left open. The body is already sanitised HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from newsbot.articles import Article
from newsbot.bidi import balance
from newsbot.store.text import strip_forbidden


@dataclass(frozen=True, slots=True)
class ListPage:
    """An index page: its heading, the feeds to advertise, and the articles to list."""

    title: str
    description: str
    language: str
    feeds: Mapping[str, tuple[str, str]]  # format -> (url, media type)
    items: Sequence[Article]
    hub: str | None = None


class Pages:
    """Renders pages from the package's Jinja templates (autoescaped)."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("newsbot", "templates"),
            autoescape=select_autoescape(["html"]),
            keep_trailing_newline=True,
            finalize=_finalize,
        )

    def list_page(self, page: ListPage) -> bytes:
        template = self.env.get_template("list.html")
        return template.render(
            title=page.title,
            description=page.description,
            language=page.language,
            feeds=page.feeds,
            items=page.items,
            hub=page.hub,
            sections=(),
            tags=(),
        ).encode("utf-8")

    def article_page(
        self,
        article: Article,
        body_html: str,
        summary: str,
        site_title: str,
        home: str,
        language: str,
        feeds: Mapping[str, tuple[str, str]],
    ) -> bytes:
        template = self.env.get_template("article.html")
        return template.render(
            article=article,
            body=Markup(body_html),
            summary=summary,
            site_title=site_title,
            home=home,
            language=language,
            feeds=feeds,
        ).encode("utf-8")


def _finalize(value: Any) -> Any:
    """A printed value made safe as text; HTML already sanitised (`Markup`) passes as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return balance(strip_forbidden(value))
    return value
