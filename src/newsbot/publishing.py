"""Wiring of publish passes: one `Publisher` per configured target, sharing one HTTP client.

Kept apart from ``app`` so that building feeds never imports the posting code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import Engine

from newsbot.articles import Article
from newsbot.mastodon import MastodonClient, make_http_client
from newsbot.publisher import Publisher
from newsbot.settings import Settings, TargetSettings
from newsbot.state.deliveries import DeliveryStore
from newsbot.state.related import RelatedFinder


class NoToken(Exception):
    """A target has no access token configured."""


@dataclass(frozen=True, slots=True)
class Target:
    """A configured target and why it cannot run, if it cannot."""

    name: str
    settings: TargetSettings
    problem: str | None


def targets(settings: Settings, only: Sequence[str] = ()) -> list[Target]:
    """The enabled targets (or the ones named), each with its configuration problem if any."""
    found = []
    for name, target in sorted(settings.targets.items()):
        if (only and name not in only) or (not only and not target.enabled):
            continue
        problem = None
        try:
            if target.access_token() is None:
                problem = (
                    f"no access token: set NEWSBOT_TARGETS__{name.upper()}__TOKEN "
                    f"or targets.{name}.token_file"
                )
        except OSError as exc:
            problem = f"cannot read targets.{name}.token_file: {exc.strerror}"
        found.append(Target(name, target, problem))
    return found


@contextmanager
def publishers(
    settings: Settings, engine: Engine, chosen: Sequence[Target], pacing: bool = True
) -> Iterator[list[Publisher]]:
    """A publisher per usable target; the HTTP client is closed on exit."""
    http = make_http_client()
    store = DeliveryStore(engine)
    finder = RelatedFinder(engine)
    base_url = str(settings.site.base_url)

    def related(article: Article, k: int, now: datetime) -> Sequence[Article]:
        return finder.related(article, k, now)

    try:
        yield [
            Publisher(
                name=target.name,
                target=target.settings,
                client=MastodonClient(str(target.settings.server), _token(target.settings), http),
                store=store,
                related=related,
                media_root=settings.store.content_dir,
                media_prefix=base_url + "media/",
                sleep=time.sleep,
                rng=random.Random(),  # noqa: S311 - jitter, not secrets
                pacing=pacing,
            )
            for target in chosen
            if target.problem is None
        ]
    finally:
        http.close()


def _token(target: TargetSettings) -> SecretStr:
    token = target.access_token()
    if token is None:
        raise NoToken()
    return token
