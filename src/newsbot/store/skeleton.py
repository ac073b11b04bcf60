"""``newsbot new "Headline"``: a Markdown article to fill in, with its date and a stable id.

The file goes to ``<store>/<year>/<slug>.md`` and its front matter names the
id explicitly (``<year>/<slug>``), so the article keeps its id in every feed
reader even if the file is later moved or renamed. It starts as a draft, as
in other static site tools: nothing is published or posted until the editor
removes ``draft: true``. An existing file is never overwritten; a second
article with the same headline on the same year gets ``-2``, ``-3``...
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from newsbot.articles import slugify
from newsbot.errors import NewsbotError

MAX_SAME_SLUG = 100


class SkeletonError(NewsbotError):
    """The skeleton cannot be written (an empty headline, no free name)."""


def new_article(
    root: Path,
    title: str,
    now: datetime,
    *,
    section: str | None = None,
    tags: tuple[str, ...] = (),
    draft: bool = True,
) -> tuple[Path, str]:
    """Write the skeleton under ``root``; the path written and the article's id.

    ``now`` is the moment in the site's time zone: the article's date, and
    its year folder.
    """
    title = " ".join(title.split())
    slug = slugify(title, 60)
    if not slug:
        raise SkeletonError("the headline needs at least one letter or digit")
    year = f"{now.year:04d}"
    folder = root / year
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_SAME_SLUG + 1):
        name = slug if number == 1 else f"{slug}-{number}"
        path = folder / f"{name}.md"
        try:
            with path.open("x", encoding="utf-8") as file:
                article_id = f"{year}/{name}"
                file.write(_text(article_id, title, now, section, tags, draft))
            return path, article_id
        except FileExistsError:
            continue
    raise SkeletonError(f"{folder}/{slug}.md and {MAX_SAME_SLUG - 1} numbered ones exist")


def _text(
    article_id: str,
    title: str,
    now: datetime,
    section: str | None,
    tags: tuple[str, ...],
    draft: bool,
) -> str:
    # JSON strings are valid YAML scalars: any headline (quotes, colons, '#') stays text.
    lines = [
        "---",
        f"id: {article_id}",
        f"title: {json.dumps(title, ensure_ascii=False)}",
        f"date: {now:%Y-%m-%d %H:%M}",
        f"tags: {json.dumps(list(tags), ensure_ascii=False)}",
    ]
    if section:
        lines.append(f"section: {json.dumps(section, ensure_ascii=False)}")
    lines.append('summary: ""')
    if draft:
        lines.append("draft: true   # remove this line to publish")
    lines += ["---", "Write the article here, in Markdown.", ""]
    return "\n".join(lines)
