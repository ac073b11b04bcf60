"""The Mastodon API client: one account on one server, over an injected ``httpx.Client``.

It speaks to any Mastodon-compatible server (the caller creates the HTTP
client, see :func:`make_http_client`) and turns every failure into a typed
error that says what to do next (:mod:`newsbot.mastodon.errors`). It never
retries on its own, except for polling media that the server is still
processing: retry policy belongs to the caller (see
:func:`newsbot.mastodon.retry.backoff`).

The access token is a ``SecretStr`` and is only ever unwrapped inside
:class:`BearerToken` (and, to take it out of what servers echo, inside
:func:`newsbot.mastodon.messages.redact`); errors, reprs and logs never
contain it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

from newsbot import __version__
from newsbot.mastodon.documents import (
    Account,
    Limits,
    PostedStatus,
    Software,
    StatusRequest,
    Unreadable,
    account_from,
    has_max_characters,
    limits_from,
    nodeinfo_href,
    scopes_from,
    software_from,
    status_form,
    status_from,
)
from newsbot.mastodon.errors import (
    MEDIA,
    PLAIN,
    STATUS_CREATE,
    STATUS_DELETE,
    STATUS_EDIT,
    AuthError,
    ErrorReader,
    MastodonError,
    MediaNotReady,
    PermanentError,
    Purpose,
    TransientError,
)
from newsbot.mastodon.ratelimits import MAX_RATE_LIMIT_WAIT

__all__ = ["USER_AGENT", "BearerToken", "MastodonClient", "make_http_client"]

log = logging.getLogger(__name__)

USER_AGENT: Final = f"newsbot/{__version__} (+https://github.com/newsbot/newsbot)"


def make_http_client(
    timeout: float = 30, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """An ``httpx.Client`` for :class:`MastodonClient`: a timeout on every phase, our User-Agent
    (and ``transport`` in place of httpx's own, wrapping it)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        transport=transport,
    )


class BearerToken(httpx.Auth):
    """``Authorization: Bearer``; the only place the token is unwrapped for sending."""

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
        self._sleep = sleep
        self._errors = ErrorReader(
            self.base_url, token, clock=clock, max_rate_limit_wait=max_rate_limit_wait
        )

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
        if v2 is None or not has_max_characters(v2):
            v1 = self._instance_document("/api/v1/instance")
            if v1 is not None:
                documents.append(v1)
        return limits_from(documents)

    def verify_credentials(self) -> Account:
        """The token's account; raises :class:`AuthError` if the token is refused."""
        path = "/api/v1/accounts/verify_credentials"
        data = self._json_object(self._send("GET", path, PLAIN), "GET", path)
        try:
            return account_from(data)
        except Unreadable as why:
            raise self._errors.unexpected("GET", path, str(why)) from None

    def post_status(self, request: StatusRequest, idempotency_key: str) -> PostedStatus:
        """Create a status. Send the same ``idempotency_key`` again on every retry."""
        if not idempotency_key:
            raise ValueError("an Idempotency-Key is required")
        path = "/api/v1/statuses"
        response = self._send(
            "POST",
            path,
            STATUS_CREATE,
            data=status_form(request, edit=False),
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._posted_status(response, "POST", path)

    def edit_status(self, status_id: str, request: StatusRequest) -> PostedStatus:
        """Replace a status's text, language, content warning and media (visibility stays)."""
        path = f"/api/v1/statuses/{_segment(status_id)}"
        response = self._send("PUT", path, STATUS_EDIT, data=status_form(request, edit=True))
        return self._posted_status(response, "PUT", path)

    def delete_status(self, status_id: str) -> None:
        """Delete a status; :class:`Gone` if it is already gone."""
        self._send("DELETE", f"/api/v1/statuses/{_segment(status_id)}", STATUS_DELETE)

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
            response = self._send("POST", path, MEDIA, data=form, files=files)
        except MastodonError as exc:
            if exc.status_code not in (404, 405):
                raise
            path = "/api/v1/media"  # servers older than the asynchronous API
            response = self._send("POST", path, MEDIA, data=form, files=files)
        media = self._json_object(response, "POST", path)
        if "id" not in media:
            raise self._errors.unexpected("POST", path, "no id in the media attachment")
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
            if self._send("GET", path, MEDIA).status_code != 206:
                return
        raise MediaNotReady(
            f"still processing after {max_wait:g} s",
            self._errors.context("GET", path, status_code=206),
            media_id=media_id,
        )

    def server_software(self) -> Software:
        """What the server says it runs: NodeInfo ``software`` and the instance ``version`` text.

        Every part is optional: a server without NodeInfo, or with a document
        we cannot read, gives ``None`` there. Only links on the server's own
        origin are followed.
        """
        href = nodeinfo_href(self._get_json_or_none("/.well-known/nodeinfo"), self.base_url)
        nodeinfo = self._get_json_or_none(href) if href is not None else None
        return software_from(nodeinfo, self._get_json_or_none("/api/v1/instance"))

    def application_scopes(self) -> list[str] | None:
        """The scopes of the token's application, as ``/api/v1/apps/verify_credentials`` says.

        Mastodon reports the application's scopes, and a token can have
        fewer: a missing scope is certain, a listed one is not. ``None`` when
        the server does not say (no such endpoint, a refusal, no answer).
        """
        try:
            return scopes_from(self._send("GET", "/api/v1/apps/verify_credentials", PLAIN).json())
        except (MastodonError, ValueError):
            return None

    def check_media_scope(self) -> None:
        """Raise :class:`AuthError` if the token may not use the media API.

        Asks for a media attachment that does not exist: "not found" means the
        token got past the scope check; a refusal names the missing scope.
        """
        try:
            self._send("GET", "/api/v1/media/0", PLAIN)
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
        data = self._json(self._send("GET", path, PLAIN, params=params), "GET", path)
        if not isinstance(data, list):
            raise self._errors.unexpected("GET", path, "the answer is not a list of statuses")
        # Some servers ignore exclude_reblogs: a reblog is never one of our posts.
        try:
            return [
                status_from(item)
                for item in data
                if isinstance(item, dict) and not item.get("reblog")
            ]
        except Unreadable as why:
            raise self._errors.unexpected("GET", path, str(why)) from None

    def _get_json_or_none(self, path: str) -> Any:
        try:
            return self._send("GET", path, PLAIN).json()
        except (PermanentError, ValueError):
            return None

    # -- plumbing ----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        purpose: Purpose,
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
            error = self._errors.for_transport(exc, method, path)
            log.debug("%s", error)
            # The library's own error may quote the Authorization header: leave it out then.
            raise error from (None if self._errors.mentions_token(str(exc)) else exc)
        log.debug("%s %s -> %d", method, path, response.status_code)
        if response.is_success:
            return response
        raise self._errors.for_answer(response, method, path, purpose)

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            kind = response.headers.get("content-type", "no type").split(";")[0].strip()
            why = f"the answer is not JSON but {kind}"
            if kind == "text/html":
                why += ": a web page, not a Mastodon-compatible API at this address"
            raise self._errors.unexpected(method, path, why) from None

    def _json_object(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        data = self._json(response, method, path)
        if not isinstance(data, dict):
            raise self._errors.unexpected(method, path, "the answer is not a JSON object")
        return data

    def _posted_status(self, response: httpx.Response, method: str, path: str) -> PostedStatus:
        data = self._json_object(response, method, path)
        try:
            return status_from(data)
        except Unreadable as why:
            raise self._errors.unexpected(method, path, str(why)) from None

    def _instance_document(self, path: str) -> Mapping[str, Any] | None:
        try:
            response = self._send("GET", path, PLAIN)
        except PermanentError as exc:
            log.debug("no instance document at %s: %s", path, exc)
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def _segment(value: str) -> str:
    """An id as one path segment: nothing in it can change the path."""
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")
