"""Posting without a target: the log shows exactly what would be posted.

Until an operator configures a target, ``newsbot run`` composes each new
article's status as a default target on a default server (500 characters,
URLs counted as 23) would receive it, and logs it once. Articles older than
the default backlog age would be marked as seen, not posted: the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import AnyHttpUrl

from newsbot import html
from newsbot.app import App
from newsbot.mastodon import Limits
from newsbot.posts import PostPolicy, RelatedLink, compose, format_dry_run
from newsbot.settings import TargetSettings
from newsbot.state.deliveries import DeliveryStore
from newsbot.state.related import RelatedFinder

log = logging.getLogger(__name__)

PREVIEW_TARGET = "(no target)"


class Preview:
    """Logs, once per article, the status a default target would get."""

    def __init__(self, app: App, clock: Callable[[], datetime]) -> None:
        self.store = DeliveryStore(app.engine)
        self.finder = RelatedFinder(app.engine)
        self.clock = clock
        self.target = TargetSettings(server=AnyHttpUrl("https://mastodon.invalid/"))
        self.limits = Limits()
        self.logged: set[str] = set()
        self.backlog_reported = False

    def log_new(self) -> None:
        now = self.clock()
        horizon = now - timedelta(hours=self.target.backlog_max_age_hours)
        policy = PostPolicy(template=self.target.template)
        fresh = [
            s
            for s in self.store.new_articles(PREVIEW_TARGET, now, 10_000)
            if s.article.id not in self.logged
        ]
        old = [s for s in fresh if s.article.published < horizon]
        if old and not self.backlog_reported:
            log.info(
                "%d article(s) older than %.0f h would be marked as seen, not posted",
                len(old),
                self.target.backlog_max_age_hours,
            )
            self.backlog_reported = True
        for stored in fresh:
            self.logged.add(stored.article.id)
            if stored.article.published < horizon:
                continue
            links = [
                RelatedLink(a.title, a.url)
                for a in self.finder.related(stored.article, self.target.related, now)
            ]
            composed = compose(
                stored.article,
                "\n\n".join(html.paragraphs(stored.html)),
                links,
                policy,
                self.limits.max_characters,
                self.limits.characters_reserved_per_url,
            )
            log.info(
                "would post (no target configured):\n%s",
                format_dry_run(composed),
                extra={"article": stored.article.id},
            )
