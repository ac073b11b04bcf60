"""Wiring of publish passes: one `Publisher` per configured target, each with its HTTP client.

Each pass holds the target's lease (``publish:<target>``), so that several
processes sharing one database never publish to one target at the same time.
Kept apart from ``app`` so that building feeds never imports the posting code.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine

from newsbot.articles import Article
from newsbot.errors import NewsbotError
from newsbot.mastodon.client import MastodonClient, make_http_client
from newsbot.publish.publisher import Publisher
from newsbot.settings import Settings, TargetSettings
from newsbot.state.deliveries import DeliveryStore
from newsbot.state.leases import Lease, Leases, process_owner
from newsbot.state.related import RelatedFinder
from newsbot.state.related_lists import RelatedLists

PASS_LEASE_TTL = timedelta(minutes=10)
"""A pass renews its lease as it goes; a holder that vanished frees it after this long."""


class NoToken(NewsbotError):
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
    settings: Settings,
    engine: Engine,
    chosen: Sequence[Target],
    pacing: bool = True,
    *,
    stop: threading.Event | None = None,
    owner: str | None = None,
    offline_profile: str | None = None,
) -> Iterator[list[Publisher]]:
    """A publisher per usable target; the HTTP clients are closed on exit.

    ``stop``, once set, makes every pass end before its next request;
    ``owner`` names this process in the leases (default: `process_owner`);
    ``offline_profile`` makes dry runs that never ask the server (a profile
    name, or "learned"), for which a target needs no token.
    """
    store = DeliveryStore(engine)
    lists = RelatedLists(RelatedFinder(engine))
    leases = Leases(engine, owner or process_owner())
    base_url = str(settings.site.base_url)
    clients: list[httpx.Client] = []

    def related_for(
        target: TargetSettings,
    ) -> Callable[[Article, int, datetime], Sequence[Article]]:
        """The stored related list of an article, under ``target``'s policy (a lookup)."""
        policy = target.related_policy or settings.site.related_policy

        def related(article: Article, k: int, now: datetime) -> Sequence[Article]:
            return lists.related(article, k, now, policy)

        return related

    def publisher(target: Target) -> Publisher:
        http = make_http_client(target.settings.timeout)
        clients.append(http)
        return Publisher(
            name=target.name,
            target=target.settings,
            client=MastodonClient(
                str(target.settings.server),
                SecretStr("") if offline_profile is not None else _token(target.settings),
                http,
            ),
            store=store,
            related=related_for(target.settings),
            media_root=settings.store.content_dir,
            media_prefix=base_url + "media/",
            sleep=_sleeper(stop),
            rng=random.Random(),  # noqa: S311 - jitter, not secrets
            pacing=pacing and target.settings.pacing,
            default_language=settings.site.language,
            lease=pass_lease(leases, target.name),
            stop=stop,
            store_root=settings.store.content_dir,
            offline_profile=offline_profile,
        )

    try:
        yield [
            publisher(target)
            for target in chosen
            if target.problem is None or offline_profile is not None
        ]
    finally:
        for http in clients:
            http.close()


def pass_lease(leases: Leases, target: str) -> Lease:
    """The lease that a pass (or a catch-up) over ``target`` holds."""
    return Lease(leases, f"publish:{target}", PASS_LEASE_TTL, lambda: datetime.now(UTC))


def _sleeper(stop: threading.Event | None) -> Callable[[float], None]:
    """``time.sleep``, or a wait that a shutdown cuts short."""
    if stop is None:
        return time.sleep

    def wait(seconds: float) -> None:
        stop.wait(seconds)

    return wait


def _token(target: TargetSettings) -> SecretStr:
    token = target.access_token()
    if token is None:
        raise NoToken()
    return token
