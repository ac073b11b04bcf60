"""Finding a post whose outcome is unknown among the account's own statuses.

Some servers ignore Idempotency-Key, so after a timeout, a dropped connection
or a crash the account is searched before anything is sent again. A status is
an article's post when one of its lines links to the article as its own; a
``→ Headline URL`` line only points to a related article.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from html import unescape
from urllib.parse import unquote

from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.documents import PostedStatus
from newsbot.publish.compose import RELATED_MARK

RECONCILE_PAGES = 5
"""Pages of 40 of the account's statuses searched for a post whose first attempt is unknown."""
RECONCILE_MAX_PAGES = 25
"""Pages searched back to the first attempt of a post, when its time is known."""
RECONCILE_SLACK = 600
"""Seconds of clock difference allowed between us and the server when searching."""

_PARAGRAPH_OR_BREAK = re.compile(r"<br\s*/?>|</?p\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""<a\s[^>]*?\bhref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def links_as_its_own(content: str, url: str) -> bool:
    """Whether a status's HTML ``content`` links to ``url`` as its own article.

    A line (paragraph or line break) must link to exactly ``url`` (an ``href``,
    or the bare URL where a server does not make links) without being one of
    the ``→ Headline URL`` lines that point to a related article: another
    article's post, or the reply holding related links, is not this article's.
    """
    wanted = unquote(url.strip())
    for line in _PARAGRAPH_OR_BREAK.split(content):
        text = unescape(_TAG.sub("", line)).strip()
        if text.startswith(RELATED_MARK):
            continue
        hrefs = [unquote(unescape(href).strip()) for href in _HREF.findall(line)]
        if wanted in hrefs or (not hrefs and wanted in (unquote(w) for w in text.split())):
            return True
    return False


def find_own(
    client: MastodonClient,
    listing: str | None,
    account_id: str | None,
    wanted: Callable[[PostedStatus], bool],
    since: int | None,
) -> PostedStatus | None:
    """The newest of the account's own statuses that is ``wanted``.

    Searched in ``listing`` (the one that shows the target's visibility: the
    home timeline on some servers), newest first, back to a while before the
    first attempt (``since``, seconds since the epoch) when it is known.
    """
    if account_id is None or listing is None:
        return None
    pages = RECONCILE_PAGES if since is None else RECONCILE_MAX_PAGES
    max_id: str | None = None
    for _ in range(pages):
        if listing == "home_timeline":
            page = client.home_timeline(account_id, limit=40, max_id=max_id)
        else:
            page = client.account_statuses(account_id, limit=40, max_id=max_id)
        for status in page:
            if status.account_id in (None, account_id) and wanted(status):
                return status
        if not page or (since is not None and _older_than(page[-1], since - RECONCILE_SLACK)):
            return None
        max_id = page[-1].id
    return None


def _older_than(status: PostedStatus, epoch_seconds: int) -> bool:
    try:
        created = datetime.fromisoformat(status.created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return created.timestamp() < epoch_seconds
