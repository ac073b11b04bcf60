"""The Mastodon API client: server limits, credentials, statuses and media.

It speaks to any Mastodon-compatible server over an injected ``httpx.Client``
(created by the caller, see :func:`make_http_client`) and turns every failure
into a typed error that says what to do next. It never retries on its own,
except for polling media that the server is still processing: retry policy
belongs to the caller (see :func:`newsbot.mastodon.retry.backoff`).

The access token is a ``SecretStr`` and is only ever unwrapped inside
:class:`BearerToken`; errors, reprs and logs never contain it.

The error tree::

    MastodonError                 method, path, status_code, server_message
    ├── TransientError            try again later, same Idempotency-Key; outcome_unknown
    │   ├── RateLimited           429: retry_at (Retry-After, X-RateLimit-Reset, or +60 s)
    │   └── MediaNotReady         the media is still processing: media_id
    ├── AuthError                 401/403: stop posting to this target; reason
    └── PermanentError            this request will never succeed as it is (other 4xx)
        ├── TooLong               the status is over the server's length limit: recompose
        ├── Gone                  404/410 on edit or delete: record the status as gone
        └── MediaFailed           the server cannot use this media file
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, TypedDict
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from newsbot import __version__
from newsbot.errors import NewsbotError
from newsbot.mastodon.retry import backoff

__all__ = [
    "Account",
    "AuthError",
    "BearerToken",
    "Gone",
    "Limits",
    "MastodonClient",
    "MastodonError",
    "MediaFailed",
    "MediaNotReady",
    "PermanentError",
    "PostedStatus",
    "RateLimited",
    "Software",
    "StatusRequest",
    "TooLong",
    "TransientError",
    "backoff",
    "make_http_client",
    "retry_at_from_headers",
]

log = logging.getLogger(__name__)

USER_AGENT: Final = f"newsbot/{__version__} (+https://github.com/newsbot/newsbot)"
DEFAULT_RATE_LIMIT_WAIT: Final = timedelta(seconds=60)
"""How long to wait after a 429 that says nothing about when the limit lifts."""
MAX_RATE_LIMIT_WAIT: Final = timedelta(hours=1)
"""A 429 never makes the caller wait longer than this, whatever the headers say."""
_MESSAGE_LIMIT = 300
_DELTA_THRESHOLD = 1_000_000_000  # a "Reset" below this is seconds from now, not a Unix time


# -- errors ---------------------------------------------------------------------------


class _Context(TypedDict):
    method: str
    path: str
    status_code: int | None
    server_message: str


class MastodonError(NewsbotError):
    """Base of the client's errors: what was asked, and what the server answered.

    ``path`` is the API path without host or query (``/api/v1/statuses``);
    ``status_code`` is ``None`` when no answer came; ``server_message`` is the
    server's own error text, short and readable, whatever the body format.
    """

    def __init__(
        self,
        explanation: str,
        *,
        method: str,
        path: str,
        status_code: int | None = None,
        server_message: str = "",
    ) -> None:
        self.explanation = explanation
        self.method = method
        self.path = path
        self.status_code = status_code
        self.server_message = server_message
        super().__init__(self._describe())

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

    def __init__(
        self,
        explanation: str,
        *,
        outcome_unknown: bool,
        method: str,
        path: str,
        status_code: int | None = None,
        server_message: str = "",
    ) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(
            explanation,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
        )


class RateLimited(TransientError):
    """429: wait until ``retry_at`` (timezone-aware UTC), then retry with the same key."""

    def __init__(
        self,
        explanation: str,
        *,
        retry_at: datetime,
        method: str,
        path: str,
        status_code: int | None = 429,
        server_message: str = "",
    ) -> None:
        self.retry_at = retry_at
        super().__init__(
            f"{explanation} until {retry_at.isoformat(timespec='seconds')}",
            outcome_unknown=False,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
        )


class MediaNotReady(TransientError):
    """The server is still processing media ``media_id``: wait, then poll or post again."""

    def __init__(
        self,
        explanation: str,
        *,
        media_id: str | None,
        method: str,
        path: str,
        status_code: int | None = None,
        server_message: str = "",
    ) -> None:
        self.media_id = media_id
        super().__init__(
            explanation,
            outcome_unknown=False,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
        )


AuthReason = Literal["invalid_token", "missing_scope", "forbidden"]


class AuthError(MastodonError):
    """401/403: the token is refused; stop posting to this target until someone acts.

    ``reason`` is ``invalid_token`` (401: missing, invalid, expired or revoked),
    ``missing_scope`` (403: the token lacks a scope) or ``forbidden`` (403:
    the account is disabled, suspended or not yet approved).
    """

    def __init__(
        self,
        explanation: str,
        *,
        reason: AuthReason,
        method: str,
        path: str,
        status_code: int | None = None,
        server_message: str = "",
    ) -> None:
        self.reason: AuthReason = reason
        super().__init__(
            explanation,
            method=method,
            path=path,
            status_code=status_code,
            server_message=server_message,
        )


class PermanentError(MastodonError):
    """The server refused this request as it is (4xx): retrying it unchanged cannot help."""


class TooLong(PermanentError):
    """The status is over the server's length limit: recompose it shorter, counting URLs in full."""


class Gone(PermanentError):
    """404/410 on an edit or delete: the status no longer exists, or is not this account's."""


class MediaFailed(PermanentError):
    """The server refused the media file or could not process it."""


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What the server allows, read from its instance document; defaults are Mastodon's."""

    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    supported_mime_types: frozenset[str] = frozenset()
    image_size_limit: int | None = None
    api_version: int | None = None
    """``api_versions.mastodon`` (Mastodon 4.3+); ``None`` on older or other servers."""


@dataclass(frozen=True, slots=True)
class Software:
    """What a server says it runs (NodeInfo name and version, the instance version text)."""

    name: str | None
    version: str | None
    instance_version: str | None


@dataclass(frozen=True, slots=True)
class Account:
    """The account the token belongs to."""

    id: str
    acct: str
    url: str


@dataclass(frozen=True, slots=True)
class PostedStatus:
    """A status as the server returned it: ``id`` to edit or delete it, ``url`` to show it."""

    id: str
    url: str | None
    uri: str
    content: str = ""
    created_at: str = ""
    in_reply_to_id: str | None = None
    visibility: str = ""
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """The fields of a status to create or edit (visibility and reply cannot change on edit)."""

    status: str
    visibility: str = "public"
    language: str | None = None
    spoiler_text: str = ""
    sensitive: bool = False
    media_ids: tuple[str, ...] = ()
    in_reply_to_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Purpose:
    """How an endpoint's error answers are read."""

    status_text: bool = False  # 400/422 may mean "too long" or "media not ready"
    status_target: bool = False  # 404/410 mean the status is gone
    media: bool = False  # 404/413/415/422 mean the media is unusable


_PLAIN = _Purpose()
_STATUS_CREATE = _Purpose(status_text=True)
_STATUS_EDIT = _Purpose(status_text=True, status_target=True)
_STATUS_DELETE = _Purpose(status_target=True)
_MEDIA = _Purpose(media=True)

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


# -- the client ---------------------------------------------------------------------------


def make_http_client(timeout: float = 30) -> httpx.Client:
    """An ``httpx.Client`` for :class:`MastodonClient`: a timeout on every phase, our User-Agent."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


class BearerToken(httpx.Auth):
    """``Authorization: Bearer``; the only place the token is unwrapped."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken('**********')"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MastodonClient:
    """One account on one Mastodon-compatible server.

    ``clock`` gives the time a rate limit is measured from; ``sleep`` waits
    between media polls. Both are injected so tests run without waiting.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        http: httpx.Client,
        *,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        max_rate_limit_wait: timedelta = MAX_RATE_LIMIT_WAIT,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._auth = BearerToken(token)
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._max_rate_limit_wait = max_rate_limit_wait

    def __repr__(self) -> str:
        return f"MastodonClient({self.base_url!r})"

    # -- API ---------------------------------------------------------------------------

    def instance_limits(self) -> Limits:
        """The server's limits: ``/api/v2/instance``, else ``/api/v1/instance``, else defaults.

        An endpoint that is missing, refuses the request or answers something
        unreadable is skipped; a transient failure or a refused token raises,
        so that a passing outage never makes the caller settle for defaults.
        """
        documents: list[Mapping[str, Any]] = []
        v2 = self._instance_document("/api/v2/instance")
        if v2 is not None:
            documents.append(v2)
        if v2 is None or _limit_value(v2, "statuses", "max_characters") is None:
            v1 = self._instance_document("/api/v1/instance")
            if v1 is not None:
                documents.append(v1)
        return _limits_from(documents)

    def verify_credentials(self) -> Account:
        """The token's account; raises :class:`AuthError` if the token is refused."""
        path = "/api/v1/accounts/verify_credentials"
        data = self._json_object(self._send("GET", path, _PLAIN), "GET", path)
        try:
            return Account(id=str(data["id"]), acct=str(data["acct"]), url=_text(data, "url"))
        except KeyError as missing:
            raise self._unexpected("GET", path, f"no {missing} in the account") from None

    def post_status(self, request: StatusRequest, idempotency_key: str) -> PostedStatus:
        """Create a status. Send the same ``idempotency_key`` again on every retry."""
        if not idempotency_key:
            raise ValueError("an Idempotency-Key is required")
        path = "/api/v1/statuses"
        response = self._send(
            "POST",
            path,
            _STATUS_CREATE,
            data=_status_form(request, edit=False),
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._posted_status(response, "POST", path)

    def edit_status(self, status_id: str, request: StatusRequest) -> PostedStatus:
        """Replace a status's text, language, content warning and media (visibility stays)."""
        path = f"/api/v1/statuses/{_segment(status_id)}"
        response = self._send("PUT", path, _STATUS_EDIT, data=_status_form(request, edit=True))
        return self._posted_status(response, "PUT", path)

    def delete_status(self, status_id: str) -> None:
        """Delete a status; :class:`Gone` if it is already gone."""
        self._send("DELETE", f"/api/v1/statuses/{_segment(status_id)}", _STATUS_DELETE)

    def upload_media(
        self,
        data: bytes,
        filename: str,
        mime_type: str,
        description: str,
        *,
        poll_interval: float = 1.0,
        max_wait: float = 60.0,
    ) -> str:
        """Upload a file with its alt text; returns the media id once the server has processed it.

        A 202 answer means the server processes the file in the background:
        it is polled every ``poll_interval`` seconds for at most ``max_wait``
        seconds, then :class:`MediaNotReady` is raised (with the media id, to
        poll again later with :meth:`wait_for_media`).
        """
        form = {"description": description}
        files = {"file": (filename, data, mime_type)}
        path = "/api/v2/media"
        try:
            response = self._send("POST", path, _MEDIA, data=form, files=files)
        except MastodonError as exc:
            if exc.status_code not in (404, 405):
                raise
            path = "/api/v1/media"  # servers older than the asynchronous API
            response = self._send("POST", path, _MEDIA, data=form, files=files)
        media = self._json_object(response, "POST", path)
        if "id" not in media:
            raise self._unexpected("POST", path, "no id in the media attachment")
        media_id = str(media["id"])
        if response.status_code == 202:
            self.wait_for_media(media_id, poll_interval=poll_interval, max_wait=max_wait)
        return media_id

    def wait_for_media(
        self, media_id: str, *, poll_interval: float = 1.0, max_wait: float = 60.0
    ) -> None:
        """Poll ``GET /api/v1/media/:id`` until 200 (ready); 206 means still processing."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        path = f"/api/v1/media/{_segment(media_id)}"
        for _ in range(max(1, math.ceil(max_wait / poll_interval))):
            self._sleep(poll_interval)
            if self._send("GET", path, _MEDIA).status_code != 206:
                return
        raise MediaNotReady(
            f"still processing after {max_wait:g} s",
            media_id=media_id,
            method="GET",
            path=path,
            status_code=206,
        )

    def server_software(self) -> Software:
        """What the server says it runs: NodeInfo ``software`` and the instance ``version`` text.

        Every part is optional: a server without NodeInfo, or with a document
        we cannot read, gives ``None`` there. Only links on the server's own
        origin are followed.
        """
        name = version = None
        links = self._get_json_or_none("/.well-known/nodeinfo")
        href = _nodeinfo_href(links, self.base_url)
        if href is not None:
            document = self._get_json_or_none(href)
            software = document.get("software") if isinstance(document, dict) else None
            if isinstance(software, dict):
                name = _text(software, "name").lower() or None
                version = _text(software, "version") or None
        instance = self._get_json_or_none("/api/v1/instance")
        text = _text(instance, "version") if isinstance(instance, dict) else ""
        return Software(name=name, version=version, instance_version=text or None)

    def check_media_scope(self) -> None:
        """Raise :class:`AuthError` if the token may not use the media API.

        Asks for a media attachment that does not exist: "not found" means the
        token got past the scope check; a refusal names the missing scope.
        """
        try:
            self._send("GET", "/api/v1/media/0", _PLAIN)
        except AuthError:
            raise
        except (PermanentError, TransientError):
            return

    def home_timeline(
        self, account_id: str, limit: int = 40, max_id: str | None = None
    ) -> list[PostedStatus]:
        """The home timeline, newest first (``max_id`` pages on, like `account_statuses`).

        On some servers (Takahē, the Misskey family) the only list that holds
        the account's own followers-only and direct posts; it holds others'
        statuses too: keep those whose ``account_id`` is the account's.
        """
        del account_id  # the server knows whose timeline it is; kept for symmetry
        return self._statuses("/api/v1/timelines/home", limit, max_id, {})

    def account_statuses(
        self, account_id: str, limit: int = 40, max_id: str | None = None
    ) -> list[PostedStatus]:
        """The account's own statuses, newest first, older than ``max_id``; no reblogs."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        path = f"/api/v1/accounts/{_segment(account_id)}/statuses"
        return self._statuses(path, limit, max_id, {"exclude_reblogs": "true"})

    def _statuses(
        self,
        path: str,
        limit: int,
        max_id: str | None,
        extra: Mapping[str, str],
    ) -> list[PostedStatus]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params = {"limit": str(limit), **extra}
        if max_id is not None:
            params["max_id"] = max_id
        data = self._json(self._send("GET", path, _PLAIN, params=params), "GET", path)
        if not isinstance(data, list):
            raise self._unexpected("GET", path, "the answer is not a list of statuses")
        # Some servers ignore exclude_reblogs: a reblog is never one of our posts.
        return [
            _status_from(item, lambda why: self._unexpected("GET", path, why))
            for item in data
            if isinstance(item, dict) and not item.get("reblog")
        ]

    def _get_json_or_none(self, path: str) -> Any:
        try:
            return self._send("GET", path, _PLAIN).json()
        except (PermanentError, ValueError):
            return None

    # -- plumbing ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        purpose: _Purpose,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                files=files,
                headers=headers,
                auth=self._auth,
            )
        except httpx.TransportError as exc:
            error = _transport_error(exc, method, path)
            log.debug("%s", error)
            raise error from exc
        log.debug("%s %s -> %d", method, path, response.status_code)
        if response.is_success:
            return response
        raise self._error_for(response, method, path, purpose)

    def _error_for(
        self, response: httpx.Response, method: str, path: str, purpose: _Purpose
    ) -> MastodonError:
        code = response.status_code
        message = _scrub(server_message(response), self._token)
        context = _Context(method=method, path=path, status_code=code, server_message=message)
        if code == 429:
            now = self._clock()
            retry_at = retry_at_from_headers(response.headers, now, cap=self._max_rate_limit_wait)
            return RateLimited("rate limited", retry_at=retry_at, **context)
        if code >= 500:
            explanation = "server error; the request may have been carried out"
            return TransientError(explanation, outcome_unknown=True, **context)
        if code in (408, 425):
            explanation = "the server did not take the request in time"
            return TransientError(explanation, outcome_unknown=False, **context)
        if code == 401 or (code == 400 and _BAD_TOKEN.search(message)):
            return AuthError(
                "the access token is missing, invalid or revoked: "
                "create a new token for this account",
                reason="invalid_token",
                **context,
            )
        if code == 403:
            if _SCOPE.search(message):
                needed = needed_scope(method, path)
                return AuthError(
                    f"the access token lacks the scope {needed} (or {needed.split(':')[0]}) "
                    f"that {method} {path} needs",
                    reason="missing_scope",
                    **context,
                )
            return AuthError(
                "the account may not do this (disabled, suspended or not approved)",
                reason="forbidden",
                **context,
            )
        if purpose.status_text and code in (400, 422) and _TOO_LONG.search(message):
            return TooLong("the status is too long for this server", **context)
        if purpose.status_text and code == 422 and _MEDIA_PROCESSING.search(message):
            return MediaNotReady("attached media is still processing", media_id=None, **context)
        if purpose.status_target and code in (404, 410):
            return Gone("the status is gone or not this account's", **context)
        if purpose.media and code in (404, 410, 413, 415, 422):
            return MediaFailed("the server cannot use this media", **context)
        if 300 <= code < 400:
            where = response.headers.get("Location", "")
            return PermanentError(f"unexpected redirect to {where!r}", **context)
        return PermanentError("the server refused the request", **context)

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            raise self._unexpected(method, path, "the answer is not JSON") from None

    def _json_object(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        data = self._json(response, method, path)
        if not isinstance(data, dict):
            raise self._unexpected(method, path, "the answer is not a JSON object")
        return data

    def _posted_status(self, response: httpx.Response, method: str, path: str) -> PostedStatus:
        data = self._json_object(response, method, path)
        return _status_from(data, lambda why: self._unexpected(method, path, why))

    def _unexpected(self, method: str, path: str, why: str) -> TransientError:
        """A success answer we cannot read: for a write, the server may well have done it."""
        return TransientError(
            f"unexpected answer ({why})",
            outcome_unknown=method != "GET",
            method=method,
            path=path,
        )

    def _instance_document(self, path: str) -> Mapping[str, Any] | None:
        try:
            response = self._send("GET", path, _PLAIN)
        except PermanentError as exc:
            log.debug("no instance document at %s: %s", path, exc)
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


# -- helpers ------------------------------------------------------------------------------


def _author(item: Mapping[str, Any]) -> str | None:
    account = item.get("account")
    return str(account["id"]) if isinstance(account, dict) and "id" in account else None


def _nodeinfo_href(links: Any, base_url: str) -> str | None:
    """The path of the newest NodeInfo document on ``base_url``'s own origin, if linked."""
    if not isinstance(links, dict) or not isinstance(links.get("links"), list):
        return None
    hrefs = sorted(
        (str(link.get("rel", "")), str(link.get("href", "")))
        for link in links["links"]
        if isinstance(link, dict)
    )
    origin = urlsplit(base_url)
    for _, href in reversed(hrefs):
        parts = urlsplit(href)
        if (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc) and parts.path:
            return parts.path
    return None


def _segment(value: str) -> str:
    """An id as one path segment: nothing in it can change the path."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _status_form(request: StatusRequest, *, edit: bool) -> dict[str, str | list[str]]:
    """Form fields of a status; form encoding is what every compatible server accepts."""
    form: dict[str, str | list[str]] = {
        "status": request.status,
        "sensitive": "true" if request.sensitive else "false",
    }
    if request.spoiler_text or edit:
        form["spoiler_text"] = request.spoiler_text
    if request.language:
        form["language"] = request.language
    if request.media_ids:
        form["media_ids[]"] = list(request.media_ids)
    if not edit:
        form["visibility"] = request.visibility
        if request.in_reply_to_id:
            form["in_reply_to_id"] = request.in_reply_to_id
    return form


def _status_from(
    data: Mapping[str, Any], unexpected: Callable[[str], TransientError]
) -> PostedStatus:
    if "id" not in data or "uri" not in data:
        raise unexpected("no id or uri in the status")
    url = data.get("url")
    return PostedStatus(
        id=str(data["id"]),
        url=url if isinstance(url, str) else None,
        uri=str(data["uri"]),
        content=_text(data, "content"),
        created_at=_text(data, "created_at"),
        in_reply_to_id=_text(data, "in_reply_to_id") or None,
        visibility=_text(data, "visibility"),
        account_id=_author(data),
    )


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _transport_error(exc: httpx.TransportError, method: str, path: str) -> MastodonError:
    """A request that got no answer; whether it may have reached the server depends on when."""
    sent: bool
    match exc:
        case httpx.ConnectTimeout():
            what, sent = "connection timed out", False
        case httpx.PoolTimeout():
            what, sent = "no free connection in the pool", False
        case httpx.ConnectError():
            what, sent = f"cannot connect ({exc})", False
        case httpx.ProxyError():
            what, sent = f"proxy error ({exc})", False
        case httpx.ReadTimeout():
            what, sent = "no answer in time", True
        case httpx.WriteTimeout():
            what, sent = "sending the request timed out", True
        case httpx.RemoteProtocolError():
            what, sent = f"connection dropped ({exc})", True
        case httpx.ReadError():
            what, sent = f"connection lost while waiting for the answer ({exc})", True
        case httpx.WriteError():
            what, sent = f"connection lost while sending ({exc})", True
        case httpx.UnsupportedProtocol() | httpx.LocalProtocolError():
            return PermanentError(f"cannot send this request ({exc})", method=method, path=path)
        case _:
            what, sent = f"{type(exc).__name__} ({exc})", True
    if sent:
        what += "; the request may have been carried out"
    return TransientError(what, outcome_unknown=sent, method=method, path=path)


def _scrub(text: str, token: SecretStr) -> str:
    """A server that echoes the token back must not make it leak into an error."""
    secret = token.get_secret_value()
    return text.replace(secret, "**********") if secret else text


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


_HTML_DROP = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BODY = re.compile(r"<body\b[^>]*>(.*?)(?:</body\s*>|$)", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


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
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1].rstrip() + "…"


# -- rate limits --------------------------------------------------------------------------


def retry_at_from_headers(
    headers: Mapping[str, str], now: datetime, *, cap: timedelta = MAX_RATE_LIMIT_WAIT
) -> datetime:
    """When a rate limit lifts, from a 429's headers, between ``now`` and ``now + cap``.

    ``Retry-After`` (seconds or an HTTP date) wins where present; otherwise
    ``X-RateLimit-Reset``: an ISO 8601 time (Mastodon, with microseconds) or a
    Unix time in seconds (a small number is taken as seconds from now, as
    some servers send it); otherwise a minute from now.
    """
    retry_at = _retry_after(headers.get("Retry-After"), now) or _reset(
        headers.get("X-RateLimit-Reset"), now
    )
    if retry_at is None:
        retry_at = now + DEFAULT_RATE_LIMIT_WAIT
    return min(max(retry_at, now), now + cap)


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    seconds = _number(value)
    if seconds is not None:
        return now + timedelta(seconds=seconds)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _aware(moment)


def _reset(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    number = _number(value)
    if number is not None:
        if number < _DELTA_THRESHOLD:
            return now + timedelta(seconds=number)
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- instance documents -------------------------------------------------------------------


def _limit_value(document: Mapping[str, Any], group: str, name: str) -> int | None:
    """A positive integer setting under ``configuration.<group>.<name>``."""
    configuration = document.get("configuration")
    if not isinstance(configuration, dict):
        return None
    section = configuration.get(group)
    if not isinstance(section, dict):
        return None
    return _positive_int(section.get(name))


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _first(values: Iterable[int | None], default: int | None) -> int | None:
    return next((value for value in values if value is not None), default)


def _limits_from(documents: list[Mapping[str, Any]]) -> Limits:
    """Each limit from the first document that has it (v2, then v1), else Mastodon's default."""
    defaults = Limits()

    def setting(group: str, name: str, legacy: str | None = None) -> Iterable[int | None]:
        for document in documents:
            yield _limit_value(document, group, name)
            if legacy is not None:
                yield _positive_int(document.get(legacy))

    max_characters = _first(setting("statuses", "max_characters", "max_toot_chars"), None)
    per_url = _first(setting("statuses", "characters_reserved_per_url"), None)
    attachments = _first(setting("statuses", "max_media_attachments"), None)
    image_size = _first(setting("media_attachments", "image_size_limit", "upload_limit"), None)
    return Limits(
        max_characters=max_characters or defaults.max_characters,
        characters_reserved_per_url=per_url or defaults.characters_reserved_per_url,
        max_media_attachments=attachments or defaults.max_media_attachments,
        supported_mime_types=_mime_types(documents),
        image_size_limit=image_size,
        api_version=_api_version(documents),
    )


def _mime_types(documents: list[Mapping[str, Any]]) -> frozenset[str]:
    for document in documents:
        configuration = document.get("configuration")
        media = configuration.get("media_attachments") if isinstance(configuration, dict) else None
        types = media.get("supported_mime_types") if isinstance(media, dict) else None
        if isinstance(types, list):
            return frozenset(item for item in types if isinstance(item, str))
    return frozenset()


def _api_version(documents: list[Mapping[str, Any]]) -> int | None:
    for document in documents:
        versions = document.get("api_versions")
        if isinstance(versions, dict):
            version = versions.get("mastodon")
            if isinstance(version, int) and not isinstance(version, bool):
                return version
    return None
