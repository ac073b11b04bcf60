"""Which articles a target posts, and when: one rule for the pass, the dry run and the preview.

Pure: the caller reads the articles and the target's recent posts, and these
functions decide. An article is skipped for good when the target's filters do
not want it, or when it is older than the target's backlog age (a first start
on a large archive must not flood the account); the rest are posted oldest
first, at most ``posts_per_hour``, evenly spaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from newsbot.articles import Article, tag_slug

if TYPE_CHECKING:  # settings are values here; validating them needs libraries
    from newsbot.settings import TargetSettings

T = TypeVar("T")

HOUR = timedelta(hours=1)
"""The window ``posts_per_hour`` counts posts in."""


class Skip(StrEnum):
    """Why an article is marked as seen without being posted (the words are shown)."""

    NOT_FOR_TARGET = "not for this target"
    BACKLOG = "backlog: older than the target's max age"


def wants(target: TargetSettings, article: Article) -> bool:
    """Whether the target's tag and section filters let ``article`` through."""
    tags = {tag_slug(t) for t in article.tags}
    section = tag_slug(article.section) if article.section else None
    if target.include_tags and not tags & {tag_slug(x) for x in target.include_tags}:
        return False
    if target.include_sections and section not in {tag_slug(x) for x in target.include_sections}:
        return False
    if tags & {tag_slug(x) for x in target.exclude_tags}:
        return False
    return section not in {tag_slug(x) for x in target.exclude_sections}


def horizon(target: TargetSettings, now: datetime) -> datetime:
    """Articles published before this are backlog: marked as seen, never posted."""
    return now - timedelta(hours=target.backlog_max_age_hours)


def verdict(target: TargetSettings, article: Article, now: datetime) -> Skip | None:
    """Why ``article`` is not to be posted, or None when it is."""
    if not wants(target, article):
        return Skip.NOT_FOR_TARGET
    if article.published < horizon(target, now):
        return Skip.BACKLOG
    return None


@dataclass
class Sorted(Generic[T]):
    """New articles sorted by `verdict`, each list in the order given."""

    to_post: list[T] = field(default_factory=list)
    skipped: dict[Skip, list[T]] = field(default_factory=lambda: {skip: [] for skip in Skip})


def sort(
    target: TargetSettings, items: Iterable[T], article: Callable[[T], Article], now: datetime
) -> Sorted[T]:
    """Split ``items`` (each holding an article) into those to post and those to skip."""
    result: Sorted[T] = Sorted()
    for item in items:
        skip = verdict(target, article(item), now)
        (result.to_post if skip is None else result.skipped[skip]).append(item)
    return result


def spacing(target: TargetSettings) -> timedelta:
    """The least time between two posts of the target."""
    return timedelta(seconds=3600 / target.posts_per_hour)


def may_post_now(
    target: TargetSettings, now: datetime, posted_last_hour: int, last_posted: datetime | None
) -> bool:
    """Pacing: at most ``posts_per_hour``, spread evenly, never a burst."""
    if posted_last_hour >= target.posts_per_hour:
        return False
    return last_posted is None or now - last_posted >= spacing(target)


def due_times(
    target: TargetSettings, now: datetime, last_posted: datetime | None, count: int
) -> list[datetime]:
    """When each of ``count`` waiting posts is due under pacing, evenly after the last post."""
    step = spacing(target)
    first = now if last_posted is None else max(now, last_posted + step)
    return [first + step * n for n in range(count)]
