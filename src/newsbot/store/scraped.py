"""Scraped news pages (placeholder until the reader lands)."""

from __future__ import annotations

from newsbot.articles import Article
from newsbot.errors import ArticleError, Problem
from newsbot.store.fields import Site, Source

SUFFIXES = (".txt",)


def parse(text: str, source: Source, site: Site) -> tuple[Article, list[Problem]]:
    raise ArticleError("scraped pages are not supported yet")
