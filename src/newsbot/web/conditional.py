"""Validators and conditional requests: ``ETag``, ``Last-Modified`` and when to answer 304.

The ETag is strong and made from the content (a hash), not from size and
time, so a file the builder touched without changing keeps its ETag and
readers keep getting 304. Each content coding is its own representation with
its own ETag (``"<hash>"`` and ``"<hash>-gzip"``), as RFC 9110 asks of strong
validators; a client sends back the ETag of the variant it stored, with the
same ``Accept-Encoding``, so it still gets its 304.

Precedence follows RFC 9110 section 13.2.2: when ``If-None-Match`` is present,
``If-Modified-Since`` is ignored, so a touched file (newer ``Last-Modified``,
same ETag) still answers 304 to a client sending both.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime

from starlette.datastructures import Headers

ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')
"""One entity-tag of an ``If-None-Match`` list; ``W/`` is dropped (weak comparison)."""


def entity_tag(digest: str, coding: str | None) -> str:
    """The strong ETag of one representation: the content's hash, plus the coding if any."""
    return f'"{digest}"' if coding is None else f'"{digest}-{coding}"'


def http_date(timestamp: float) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), as ``Last-Modified`` wants."""
    return formatdate(timestamp, usegmt=True)


def not_modified(headers: Headers, etag: str, modified: float) -> bool:
    """Whether a GET or HEAD with these request headers gets a 304 (RFC 9110 section 13.2.2)."""
    return unchanged(headers.get("if-none-match"), headers.get("if-modified-since"), etag, modified)


def unchanged(
    if_none_match: str | None, if_modified_since: str | None, etag: str, modified: float
) -> bool:
    """:func:`not_modified`, from the two request headers that decide it."""
    if if_none_match is not None:
        return _none_match_fails(if_none_match, etag)
    if if_modified_since is None:
        return False
    since = _parse_http_date(if_modified_since)
    return since is not None and int(modified) <= since


def _none_match_fails(header: str, etag: str) -> bool:
    """Whether ``etag`` is in the ``If-None-Match`` list, by weak comparison (or ``*``)."""
    if header.strip() == "*":
        return True
    return etag.removeprefix("W/") in {f'"{tag}"' for tag in ENTITY_TAG.findall(header)}


def _parse_http_date(value: str) -> int | None:
    """A UNIX time from an HTTP-date; None when invalid, since the header must then be ignored."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # asctime() dates carry no zone; HTTP dates are all GMT
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())
