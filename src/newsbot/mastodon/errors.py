"""The Mastodon client's errors, and how a failed request becomes one of them.

Each error says what was asked and what the server answered (a
:class:`Context`), and what to do next (its class and explanation)::

    MastodonError                 context: method, path, server, status_code, server_message
    ├── TransientError            try again later, same Idempotency-Key; outcome_unknown
    │   ├── RateLimited           429: retry_at (Retry-After, X-RateLimit-Reset, or +60 s)
    │   └── MediaNotReady         the media is still processing: media_id
    ├── AuthError                 401/403: stop posting to this target; reason
    └── PermanentError            this request will never succeed as it is (other 4xx)
        ├── TooLong               the status is over the server's length limit: recompose
        ├── Gone                  404/410 on edit or delete: record the status as gone
        └── MediaFailed           the server cannot use this media file

The client builds every error through one :class:`ErrorReader`, which holds
the token only to take it out of whatever the server or the network said:
the token never reaches an error's message, context, repr or pickle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from newsbot.errors import NewsbotError
from newsbot.mastodon.messages import redact, server_message
from newsbot.mastodon.ratelimits import MAX_RATE_LIMIT_WAIT, retry_at_from_headers

__all__ = [
    "AuthError",
    "AuthReason",
    "Context",
    "ErrorReader",
    "Gone",
    "MastodonError",
    "MediaFailed",
    "MediaNotReady",
    "PermanentError",
    "Purpose",
    "RateLimited",
    "TooLong",
    "TransientError",
    "needed_scope",
]


@dataclass(frozen=True, slots=True)
class Context:
    """What was asked and what came back: everything an error knows besides its explanation.

    ``path`` is the API path without host or query (``/api/v1/statuses``);
    ``server`` the server's base URL without any user or password;
    ``status_code`` is ``None`` when no answer came; ``server_message`` is the
    server's own error text, short and readable, with the token taken out.
    """

    method: str
    path: str
    server: str = ""
    status_code: int | None = None
    server_message: str = ""


class MastodonError(NewsbotError):
    """Base of the client's errors: what was asked, and what the server answered.

    The message reads ``METHOD /path -> HTTP code: explanation: "server message"``.
    """

    def __init__(self, explanation: str, context: Context) -> None:
        self.explanation = explanation
        self.context = context
        super().__init__(self._describe())

    @property
    def method(self) -> str:
        return self.context.method

    @property
    def path(self) -> str:
        return self.context.path

    @property
    def server(self) -> str:
        return self.context.server

    @property
    def status_code(self) -> int | None:
        return self.context.status_code

    @property
    def server_message(self) -> str:
        return self.context.server_message

    def _describe(self) -> str:
        answer = "" if self.status_code is None else f" -> HTTP {self.status_code}"
        said = f': "{self.server_message}"' if self.server_message else ""
        return f"{self.method} {self.path}{answer}: {self.explanation}{said}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments defeat the default pickling of exceptions.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(
    cls: type[MastodonError], args: tuple[Any, ...], state: dict[str, Any]
) -> MastodonError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class TransientError(MastodonError):
    """The request may succeed later: retry with backoff and the same Idempotency-Key.

    ``outcome_unknown`` is true when the request may have reached the server
    and been carried out (a read timeout, a dropped connection, a 5xx): a
    status may exist although no answer said so. Reconcile before posting
    again if the Idempotency-Key may have expired or the server ignores it.
    """

    def __init__(self, explanation: str, context: Context, *, outcome_unknown: bool) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(explanation, context)


class RateLimited(TransientError):
    """429: wait until ``retry_at`` (timezone-aware UTC), then retry with the same key."""

    def __init__(self, explanation: str, context: Context, *, retry_at: datetime) -> None:
        self.retry_at = retry_at
        until = f"{explanation} until {retry_at.isoformat(timespec='seconds')}"
        super().__init__(until, context, outcome_unknown=False)


class MediaNotReady(TransientError):
    """The server is still processing media ``media_id``: wait, then poll or post again."""

    def __init__(self, explanation: str, context: Context, *, media_id: str | None) -> None:
        self.media_id = media_id
        super().__init__(explanation, context, outcome_unknown=False)


AuthReason = Literal["invalid_token", "missing_scope", "forbidden"]


class AuthError(MastodonError):
    """401/403: the token is refused; stop posting to this target until someone acts.

    ``reason`` is ``invalid_token`` (401: missing, invalid, expired or revoked),
    ``missing_scope`` (403: the token lacks a scope) or ``forbidden`` (403:
    the account is disabled, suspended or not yet approved).
    """

    def __init__(self, explanation: str, context: Context, *, reason: AuthReason) -> None:
        self.reason: AuthReason = reason
        super().__init__(explanation, context)


class PermanentError(MastodonError):
    """The server refused this request as it is (4xx): retrying it unchanged cannot help."""


class TooLong(PermanentError):
    """The status is over the server's length limit: recompose it shorter, counting URLs in full."""


class Gone(PermanentError):
    """404/410 on an edit or delete: the status no longer exists, or is not this account's."""


class MediaFailed(PermanentError):
    """The server refused the media file or could not process it."""


# -- reading a failed request -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Purpose:
    """How an endpoint's error answers are read."""

    status_text: bool = False  # 400/422 may mean "too long" or "media not ready"
    status_target: bool = False  # 404/410 mean the status is gone
    media: bool = False  # 404/413/415/422 mean the media is unusable


PLAIN = Purpose()
STATUS_CREATE = Purpose(status_text=True)
STATUS_EDIT = Purpose(status_text=True, status_target=True)
STATUS_DELETE = Purpose(status_target=True)
MEDIA = Purpose(media=True)

_TOO_LONG = re.compile(
    r"too.long|character.limit|over the (?:character )?limit"
    r"|characters?\b.*\bexceed|exceed.*\bcharacter",
    re.IGNORECASE,
)
_MEDIA_PROCESSING = re.compile(r"not (?:yet |finished )?process|still process", re.IGNORECASE)
_SCOPE = re.compile(r"scope", re.IGNORECASE)
# Takahē answers a wrong token with 400 text/plain "Invalid Bearer token".
_BAD_TOKEN = re.compile(
    r"invalid[\w ]*(?:bearer|token)|(?:token|bearer)[\w ]*(?:invalid|revoked|expired)",
    re.IGNORECASE,
)


def needed_scope(method: str, path: str) -> str:
    """The narrowest Mastodon scope that ``method path`` needs."""
    if "/media" in path:
        return "write:media"
    if path.endswith("verify_credentials"):
        return "read:accounts"
    if method == "GET":
        return "read:statuses"
    return "write:statuses"


class ErrorReader:
    """Turns a failed request to one server into the error that says what to do next.

    The one place the client's errors are built: everything that came from
    outside (the server's message, a redirect's target, the network's
    complaint) passes through :func:`~newsbot.mastodon.messages.redact` first.
    ``clock`` gives the time a rate limit is measured from.
    """

    def __init__(
        self,
        server: str,
        token: SecretStr,
        *,
        clock: Callable[[], datetime],
        max_rate_limit_wait: timedelta = MAX_RATE_LIMIT_WAIT,
    ) -> None:
        parts = urlsplit(server)
        self._server = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self._token = token
        self._clock = clock
        self._max_rate_limit_wait = max_rate_limit_wait

    def __repr__(self) -> str:
        return f"ErrorReader({self._server!r})"

    def mentions_token(self, text: str) -> bool:
        """Whether ``text`` holds the token in any form :func:`redact` takes out."""
        return redact(text, self._token) != text

    def context(
        self, method: str, path: str, *, status_code: int | None = None, said: str = ""
    ) -> Context:
        """The context of an error about ``method path``; ``said`` is the server's own text."""
        return Context(
            method=method,
            path=path,
            server=self._server,
            status_code=status_code,
            server_message=redact(said, self._token),
        )

    def unexpected(self, method: str, path: str, why: str) -> TransientError:
        """A success answer we cannot read: for a write, the server may well have done it."""
        return TransientError(
            f"unexpected answer ({why})",
            self.context(method, path),
            outcome_unknown=method != "GET",
        )

    def for_answer(
        self, response: httpx.Response, method: str, path: str, purpose: Purpose
    ) -> MastodonError:
        """The error an answer other than 2xx means for an endpoint used for ``purpose``."""
        code = response.status_code
        context = self.context(method, path, status_code=code, said=server_message(response))
        message = context.server_message
        if code == 429:
            now = self._clock()
            retry_at = retry_at_from_headers(response.headers, now, cap=self._max_rate_limit_wait)
            return RateLimited("rate limited", context, retry_at=retry_at)
        if code >= 500:
            explanation = "server error; the request may have been carried out"
            return TransientError(explanation, context, outcome_unknown=True)
        if code in (408, 425):
            explanation = "the server did not take the request in time"
            return TransientError(explanation, context, outcome_unknown=False)
        if code == 401 or (code == 400 and _BAD_TOKEN.search(message)):
            return AuthError(
                "the access token is missing, invalid or revoked: "
                "create a new token for this account",
                context,
                reason="invalid_token",
            )
        if code == 403:
            if _SCOPE.search(message):
                needed = needed_scope(method, path)
                return AuthError(
                    f"the access token lacks the scope {needed} (or {needed.split(':')[0]}) "
                    f"that {method} {path} needs",
                    context,
                    reason="missing_scope",
                )
            return AuthError(
                "the account may not do this (disabled, suspended or not approved)",
                context,
                reason="forbidden",
            )
        if purpose.status_text and code in (400, 422) and _TOO_LONG.search(message):
            return TooLong("the status is too long for this server", context)
        if purpose.status_text and code == 422 and _MEDIA_PROCESSING.search(message):
            return MediaNotReady("attached media is still processing", context, media_id=None)
        if purpose.status_target and code in (404, 410):
            return Gone("the status is gone or not this account's", context)
        if purpose.media and code in (404, 410, 413, 415, 422):
            return MediaFailed("the server cannot use this media", context)
        if 300 <= code < 400:
            where = redact(response.headers.get("Location", ""), self._token)
            return PermanentError(f"unexpected redirect to {where!r}", context)
        return PermanentError("the server refused the request", context)

    def for_transport(self, exc: httpx.TransportError, method: str, path: str) -> MastodonError:
        """A request that got no answer; whether it may have reached the server depends on when."""
        context = self.context(method, path)
        said = redact(str(exc), self._token)
        sent: bool
        match exc:
            case httpx.ConnectTimeout():
                what, sent = "connection timed out", False
            case httpx.PoolTimeout():
                what, sent = "no free connection in the pool", False
            case httpx.ConnectError():
                what, sent = f"cannot connect ({said})", False
            case httpx.ProxyError():
                what, sent = f"proxy error ({said})", False
            case httpx.ReadTimeout():
                what, sent = "no answer in time", True
            case httpx.WriteTimeout():
                what, sent = "sending the request timed out", True
            case httpx.RemoteProtocolError():
                what, sent = f"connection dropped ({said})", True
            case httpx.ReadError():
                what, sent = f"connection lost while waiting for the answer ({said})", True
            case httpx.WriteError():
                what, sent = f"connection lost while sending ({said})", True
            case httpx.UnsupportedProtocol() | httpx.LocalProtocolError():
                return PermanentError(f"cannot send this request ({said})", context)
            case _:
                what, sent = f"{type(exc).__name__} ({said})", True
        if sent:
            what += "; the request may have been carried out"
        return TransientError(what, context, outcome_unknown=sent)
