"""Articles as Markdown files with YAML front matter, the store's canonical format.

This is what `newsbot import` writes for a scraped page. The file must read
back (through `markdown.parse`) as the same article, so the id is written
explicitly (the imported file lives at another path, from which another id
would be derived), dates are ISO 8601 in UTC with their zone, and fields left
at their default are left out. Keys follow the order of `fields.FIELDS` so the
files diff well.

The ``url`` field is not written: the article's link is derived from its id
and the site's permalink pattern, which is what a scraped page always has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml

from newsbot.articles import Article, Image

# Long titles and captions stay on one line each; YAML folding would be correct but
# makes the file harder to edit by hand.
_WIDTH = 1_000_000


def to_markdown(article: Article) -> str:
    """The Markdown file that reads back as ``article`` (its path aside)."""
    matter = yaml.safe_dump(
        _front_matter(article),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=_WIDTH,
    )
    body = f"\n{article.body}\n" if article.body else ""
    return f"---\n{matter}---\n{body}"


def _front_matter(article: Article) -> dict[str, Any]:
    """The front-matter fields of ``article``, in `fields.FIELDS` order, defaults left out."""
    fields: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "date": _timestamp(article.published),
        "updated": _timestamp(article.updated) if article.updated != article.published else None,
        "author": list(article.authors),
        "summary": article.summary,
        "tags": list(article.tags),
        "section": article.section,
        "lang": article.lang,
        "image": _image(article.image) if article.image is not None else None,
        "related": list(article.related),
        "draft": article.draft,
        "withdrawn": article.withdrawn,
        "content_warning": article.content_warning,
    }
    return {name: value for name, value in fields.items() if value not in (None, "", [], False)}


def _timestamp(value: datetime) -> str:
    """ISO 8601 with its zone, so the value means the same whatever the site's zone."""
    return value.isoformat()


def _image(image: Image) -> dict[str, Any]:
    """The image mapping without empty parts; a scraped photo has a credit but no address."""
    parts: dict[str, Any] = {
        "url": image.url,
        "alt": image.alt,
        "credit": image.credit,
        "type": image.type,
        "length": image.length,
    }
    return {name: value for name, value in parts.items() if value not in (None, "")}
