"""A server's error text, short and readable, whatever the body: JSON, plain text or HTML.

Mastodon answers ``{"error": "..."}``; other servers answer OAuth pairs,
lists of validation errors, plain text or a proxy's HTML page. What an error
shows the operator is the gist, at most :data:`MESSAGE_LIMIT` characters;
:func:`redact` takes out the access token where a server echoes it back.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Final

import httpx
from pydantic import SecretStr

MESSAGE_LIMIT: Final = 300
"""The longest server message an error repeats, in characters."""
REDACTED: Final = "**********"

_HTML_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BODY = re.compile(r"<body\b[^>]*>(.*?)(?:</body\s*>|$)", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def server_message(response: httpx.Response) -> str:
    """The server's error text, short and readable: JSON, plain text or an HTML page."""
    body = response.content
    if not body.strip():
        return response.reason_phrase or f"HTTP {response.status_code}"
    try:
        text = body.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    content_type = response.headers.get("Content-Type", "").lower()
    stripped = text.lstrip()
    message: str | None = None
    if "json" in content_type or stripped.startswith(("{", "[")):
        try:
            message = _message_from_json(json.loads(text))
        except ValueError:
            message = None
    if message is None and ("html" in content_type or stripped.startswith("<")):
        message = _text_from_html(text)
    return _shorten(message if message is not None else text)


def redact(text: str, token: SecretStr) -> str:
    """``text`` without the token: a server that echoes it must not make it leak into an error.

    Also the token as ``repr`` writes it, escapes and all: the HTTP library
    quotes a header value it refuses (a token with a line break) that way.
    And its UTF-8 bytes read as Latin-1, as a server echoing the header it got
    decodes a token that is not ASCII (one from a file saved with a byte order mark).
    """
    secret = token.get_secret_value()
    if not secret:
        return text
    latin_1 = secret.encode().decode("latin-1")
    for form in (secret, repr(secret)[1:-1], repr(secret.encode())[2:-1], latin_1):
        text = text.replace(form, REDACTED)
    return text


def _message_from_json(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        parts = [part for part in (_message_from_json(item) for item in data) if part]
        return "; ".join(parts) or None
    if not isinstance(data, dict):
        return None
    for key in ("error", "message", "detail", "errors", "error_description"):
        found = _message_from_json(data.get(key))
        if found:
            description = data.get("error_description")
            if key == "error" and isinstance(description, str) and description not in found:
                return f"{found}: {description}"
            return found
    return json.dumps(data, ensure_ascii=False)


def _text_from_html(page: str) -> str:
    page = _HTML_DROP.sub(" ", page)
    title_match = _HTML_TITLE.search(page)
    body_match = _HTML_BODY.search(page)
    title = _plain(title_match.group(1)) if title_match else ""
    body = _plain(body_match.group(1) if body_match else _HTML_TITLE.sub(" ", page))
    if not title or body.startswith(title):
        return body or title
    return f"{title}: {body}" if body else title


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_HTML_TAG.sub(" ", fragment)).split())


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1].rstrip() + "…"
