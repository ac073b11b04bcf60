"""Posting without a target: the log shows exactly what would be posted.

Until an operator configures a target, ``newsbot run`` composes each new
article's status as a default target on a default server (500 characters,
URLs counted as 23) would receive it, and logs it once. Which articles that is
follows the pass's own rule (`newsbot.publish.rules`): articles older than the
default backlog age would be marked as seen, not posted, and the log says so,
once. Nothing is recorded: a target configured later starts from scratch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import AnyHttpUrl

from newsbot.articles import Article
from newsbot.mastodon.documents import Limits
from newsbot.publish import rules
from newsbot.publish.compose import PostPolicy, RelatedLink, compose, format_dry_run
from newsbot.render import bodies as html
from newsbot.settings import RelatedPolicy, TargetSettings
from newsbot.state.index import SITE, Stored, StoreIndex
from newsbot.state.related_lists import RelatedLists

log = logging.getLogger(__name__)

FIRST_LOOK = 64
"""Newest articles read at first on each look; more only while they are all recent."""


class Preview:
    """Logs, once per article, the status a default target would get."""

    def __init__(
        self,
        index: StoreIndex,
        lists: RelatedLists,
        policy: RelatedPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.index = index
        self.lists = lists
        self.policy = policy
        self.clock = clock
        self.target = TargetSettings(server=AnyHttpUrl("https://mastodon.invalid/"))
        self.limits = Limits()
        self.logged: set[str] = set()
        self.backlog_reported = False

    def log_new(self) -> None:
        now = self.clock()
        horizon = rules.horizon(self.target, now)
        if not self.backlog_reported:
            self._report_backlog(now)
        policy = PostPolicy(template=self.target.template)
        for stored in rules.sort(self.target, self._recent(now, horizon), _article, now).to_post:
            if stored.article.id in self.logged:
                continue
            self.logged.add(stored.article.id)
            links = [
                RelatedLink(a.title, a.url)
                for a in self.lists.related(stored.article, self.target.related, now, self.policy)
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

    def _recent(self, now: datetime, horizon: datetime) -> list[Stored]:
        """The live articles published since ``horizon``, oldest first.

        Read newest first, so that a large store costs a few rows per look, and a
        new article is seen however many old ones the store holds.
        """
        limit = FIRST_LOOK
        while True:
            newest = self.index.newest(SITE, now, limit)
            recent = [s for s in newest if s.article.published >= horizon]
            if len(recent) < limit:
                return recent[::-1]
            limit *= 4

    def _report_backlog(self, now: datetime) -> None:
        live = (a for a in self.index.articles() if a.is_live(now))
        old = len(rules.sort(self.target, live, _same, now).skipped[rules.Skip.BACKLOG])
        if old:
            log.info(
                "%d article(s) older than %.0f h would be marked as seen, not posted",
                old,
                self.target.backlog_max_age_hours,
            )
        self.backlog_reported = True


def _article(stored: Stored) -> Article:
    return stored.article


def _same(article: Article) -> Article:
    return article
