"""WebSub: tell the hub which feeds changed, so subscribers get new items in seconds."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

log = logging.getLogger(__name__)


def ping(http: httpx.Client, hub: str, feed_urls: Sequence[str]) -> int:
    """Announce each changed feed to ``hub``; returns how many the hub accepted.

    A hub that is down costs a log line, never a build: the feeds are already
    written, and readers still poll.
    """
    accepted = 0
    for url in feed_urls:
        try:
            response = http.post(hub, data={"hub.mode": "publish", "hub.url": url})
        except httpx.HTTPError as exc:
            log.warning("WebSub hub unreachable: %s", type(exc).__name__, extra={"hub": hub})
            return accepted
        if response.is_success:
            accepted += 1
        else:
            log.warning(
                "WebSub hub refused a ping",
                extra={"hub": hub, "feed": url, "status": response.status_code},
            )
    return accepted
