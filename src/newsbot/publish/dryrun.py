"""What ``newsbot publish --dry-run`` shows: exactly what a pass would send, and what not.

Each status is shown with the exact text (and content warning), its length
counted by the target's server profile and the limit, the image that would be
uploaded, and the reply that would hold the related links; then every article
the pass would not post, with why. ``--json`` gives one object per article.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from newsbot.articles import Article
from newsbot.publish.compose import Composed, format_dry_run
from newsbot.publish.media import shown_image

if TYPE_CHECKING:
    from newsbot.publish.publisher import Publisher
    from newsbot.publish.report import PassReport


def dry_run_text(runner: Publisher, report: PassReport) -> str:
    """The dry run of one target as text."""
    lines = [f"=== {runner.name}: {len(report.dry_run)} to post, counted as {report.rules}"]
    for article, composed in report.dry_run:
        lines += [f"--- {runner.name} · {article.id}", format_dry_run(composed)]
        image = _image(runner, article)
        if image is not None:
            lines.append(f"image: {image['url']} (alt: {image['alt']})")
    if report.dry_run_skipped:
        lines.append(f"=== {runner.name}: {len(report.dry_run_skipped)} not to post")
        lines += [f"skip {article.id}: {why}" for article, why in report.dry_run_skipped]
    return "\n".join(lines)


def dry_run_json(runner: Publisher, report: PassReport) -> Iterator[str]:
    """The dry run of one target as JSON lines, one per article."""
    for article, composed in report.dry_run:
        yield json.dumps(_posted(runner, report, article, composed), ensure_ascii=False)
    for article, why in report.dry_run_skipped:
        yield json.dumps(
            {"target": runner.name, "article": article.id, "url": article.url, "skip": why},
            ensure_ascii=False,
        )


def _posted(
    runner: Publisher, report: PassReport, article: Article, composed: Composed
) -> dict[str, Any]:
    return {
        "target": runner.name,
        "article": article.id,
        "url": article.url,
        "status": composed.text,
        "spoiler_text": composed.spoiler_text,
        "language": composed.language,
        "length": composed.length,
        "limit": composed.limit,
        "counting": report.rules,
        "related": [{"title": r.title, "url": r.url} for r in composed.related],
        "reply": composed.reply_text,
        "reply_length": composed.reply_length if composed.reply_text else None,
        "image": _image(runner, article),
    }


def _image(runner: Publisher, article: Article) -> dict[str, str] | None:
    return shown_image(runner.target, runner.media_prefix, article)
