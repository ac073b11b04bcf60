"""Markdown articles with YAML front matter, the store's canonical format."""

from __future__ import annotations

from newsbot.articles import Article
from newsbot.errors import Problem
from newsbot.store import frontmatter
from newsbot.store.fields import Site, Source, build
from newsbot.store.scan import MARKDOWN_SUFFIXES

SUFFIXES = MARKDOWN_SUFFIXES


def parse(text: str, source: Source, site: Site) -> tuple[Article, list[Problem]]:
    """The article in a Markdown file; raises `ArticleError` for a broken one."""
    matter = frontmatter.split(text)
    return build(matter.fields, matter.lines, matter.body, source, site, matter.body_line)
