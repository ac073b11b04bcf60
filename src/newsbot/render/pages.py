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
from datetime import UTC, datetime, time, tzinfo
from typing import Any

from jinja2 import BytecodeCache, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from newsbot.articles import Article, strip_forbidden
from newsbot.bidi import balance


@dataclass(frozen=True, slots=True)
class ListPage:
    """An index page: its heading, the feeds to advertise, and the articles to list."""

    title: str
    description: str
    language: str
    feeds: Mapping[str, tuple[str, str]]  # format -> (url, media type)
    items: Sequence[Article]
    hub: str | None = None
    sections: Sequence[tuple[str, str]] = ()
    tags: Sequence[tuple[str, str]] = ()
    home: str | None = None
    site_title: str = ""
    previous: str | None = None
    next: str | None = None


class Pages:
    """Renders pages from the package's Jinja templates (autoescaped), in one typography."""

    def __init__(self, zone: tzinfo = UTC, compiled: BytecodeCache | None = None) -> None:
        """``compiled``: where templates compiled by an earlier process are kept
        (`newsbot.build.template_cache`); without it, each is compiled at first use."""
        self.zone = zone
        self.env = Environment(
            loader=PackageLoader("newsbot.render", "templates"),
            autoescape=select_autoescape(["html"]),
            keep_trailing_newline=True,
            finalize=_finalize,
            # The templates are files of the package: looked up on disk again before each
            # page (a stat per page of a build) they could only have changed by a reinstall.
            auto_reload=False,
            bytecode_cache=compiled,
        )
        self.env.globals["moment"] = self.moment

    def moment(self, value: datetime, with_time: bool = True) -> Markup:
        """A ``<time>`` element showing a date in the site's zone.

        A moment at midnight sharp is taken for a date written without a time,
        and shown as a date only, never with an invented "00:00".
        """
        local = value.astimezone(self.zone)
        shown = local.strftime("%Y-%m-%d")
        if with_time and local.timetz().replace(tzinfo=None) != time(0, 0):
            shown += local.strftime(" %H:%M ") + (local.tzname() or "")
        return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), shown.strip())

    def list_page(self, page: ListPage) -> bytes:
        template = self.env.get_template("list.html")
        return template.render(
            title=page.title,
            description=page.description,
            language=page.language,
            feeds=page.feeds,
            items=page.items,
            hub=page.hub,
            sections=page.sections,
            tags=page.tags,
            home=page.home,
            site_title=page.site_title,
            previous=page.previous,
            next=page.next,
        ).encode("utf-8")

    def archive_index(
        self,
        title: str,
        language: str,
        home: str,
        site_title: str,
        feeds: Mapping[str, tuple[str, str]],
        months_html: str,
    ) -> bytes:
        """The archive's index: ``months_html`` holds the escaped list items of the months."""
        template = self.env.get_template("archive.html")
        return template.render(
            title=title,
            language=language,
            home=home,
            site_title=site_title,
            feeds=feeds,
            months=Markup(months_html),
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
        related: Sequence[Article] = (),
        section: tuple[str, str] | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """An article's page: ``related`` listed after the body, ``section`` and ``tags``
        as (name, URL of their page)."""
        template = self.env.get_template("article.html")
        return template.render(
            article=article,
            body=Markup(body_html),
            summary=summary,
            site_title=site_title,
            home=home,
            language=language,
            feeds=feeds,
            related=related,
            section=section,
            tags=tags,
        ).encode("utf-8")


def _finalize(value: Any) -> Any:
    """A printed value made safe as text; HTML already sanitised (`Markup`) passes as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return balance(strip_forbidden(value))
    return value
