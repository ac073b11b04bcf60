"""A fake Mastodon-compatible server on loopback, for tests and benchmarks.

A real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, a random port) that
follows the API contract in ``docs/mastodon-api.md``: instance documents,
credentials, statuses (length counted exactly like Mastodon, Idempotency-Key
remembered per account for an hour, only after success), edits, deletes, the
account's statuses page by page, and media (synchronous or processed in the
background). Everything lives in memory and is open to the test:
``server.statuses``, ``server.media``, ``server.requests``.

Servers differ, and so can this one (``server.configure(...)`` or the
attributes of ``server.config``): ``ignore_idempotency_key``,
``count_urls_in_full`` (says 23 per URL, counts them in full, answers 400), ``latency``,
``error_body`` ("json", "text", "html"), ``rate_reset_format`` ("iso",
"unix"), ``clock_skew``, ``retry_after``, ``media_async``, ``media_fail``, the limits, which
instance endpoints exist, the token's ``scopes``.

Faults are injected per request kind (see ``KINDS``; "any" for all), from a
script consumed in order or at random with fixed rates (seeded, so a run can
be replayed): ``server.inject("post_status", "503", "drop", None)``,
``server.set_fault_rates("post_status", {"timeout": 0.1})``,
``server.rate_limit_storm("post_status", 5)``. See ``FAULTS``.

Standalone, for benchmarks and other processes::

    python -m tests.support.fakemastodon --port 0      # or: python tests/support/fakemastodon.py

prints one JSON line ``{"base_url": ..., "token": ...}`` and serves until
SIGTERM/SIGINT. ``GET /__fake__/statuses`` (``?summary=1``, ``?offset=N``),
``GET /__fake__/requests``, ``GET|POST /__fake__/config`` (the same keys as
``configure``, plus ``faults``, ``clear_faults`` and ``seed``) and ``POST
/__fake__/reset`` inspect and steer it from outside.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import html
import json
import random
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import regex

KINDS = (
    "instance",
    "verify_credentials",
    "post_status",
    "edit_status",
    "delete_status",
    "get_status",
    "account_statuses",
    "home_timeline",
    "upload_media",
    "get_media",
)
"""Request kinds that faults can be aimed at; "any" aims at all of them."""

FAULTS = (
    "500", "502", "503", "504", "429", "422",
    "timeout", "drop", "drop_before", "reset", "slow",
)  # fmt: skip
"""What can go wrong with one request.

- "500" … "504": that error, before anything is done (no status is created);
- "422": refused as invalid ("Unprocessable Entity"), nothing is done: a permanent refusal
  (an edit on a server whose ``edit_errors`` is "pipeline" gets that server's one answer);
- "429": rate limited (X-RateLimit-* headers, Retry-After if configured);
- "timeout": the request is carried out, then the answer comes only after
  ``timeout_delay`` seconds (longer than the client waits) on a closed connection;
- "drop": the request is carried out, then the connection closes without an answer;
- "drop_before": the connection closes without an answer, nothing is done;
- "reset": the request is carried out, then the connection is reset (TCP RST);
- "slow": the answer comes after ``slow_delay`` seconds, otherwise normal.
"""

ACCOUNT_ID = "1"
USERNAME = "bot"
_ID_BASE = 110_000_000_000_000_000
_SCOPE_PARENTS = {"read", "write", "follow", "push", "admin:read", "admin:write"}
_VISIBILITIES = {"public", "unlisted", "private", "direct"}
_TRUE = {"1", "true", "t", "on", "yes", "y"}
_ISO639_1 = re.compile(r"[a-z]{2}")  # Akkoma checks a list of the two-letter codes


# -- behaviours ---------------------------------------------------------------------------


@dataclass
class FakeConfig:
    """How this server behaves; change it at any time (``server.configure``)."""

    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    supported_mime_types: list[str] = field(
        default_factory=lambda: ["image/jpeg", "image/png", "image/gif", "image/webp"]
    )
    image_size_limit: int = 16 * 1024 * 1024
    api_version: int | None = 2
    """``api_versions.mastodon`` in the v2 document; None leaves it out (before 4.3)."""
    instance_v2: bool = True
    """False: ``/api/v2/instance`` answers 404, as before Mastodon 4.0."""
    instance_v1: str = "modern"
    """"modern" (``configuration.statuses``), "legacy" (``max_toot_chars`` only), "absent" (404)."""
    account_id: str = ACCOUNT_ID
    """The id of the token's account (verify_credentials); another one is another account."""
    scopes: list[str] = field(default_factory=lambda: ["read", "write"])
    """Scopes of the valid token; e.g. ["write:statuses"] makes verify_credentials 403."""
    ignore_idempotency_key: bool = False
    idempotency_ttl: float = 3600.0
    count_urls_in_full: bool = False
    """Reports ``characters_reserved_per_url`` but counts URLs in full; 400 "Status is too long"."""
    error_body: str = "json"
    """"json" ``{"error": ...}``, "text" (text/plain) or "html" (an error page)."""
    rate_reset_format: str = "iso"
    """X-RateLimit-Reset as "iso" (Mastodon, microseconds) or "unix" (seconds)."""
    rate_reset_after: float = 300.0
    """A 429's reset is this many seconds from now, unless ``rate_reset_at`` is set."""
    rate_reset_at: datetime | None = None
    clock_skew: float = 0.0
    """The server's clock runs this many seconds ahead of the real one (negative: behind):
    its ``Date`` header and its rate limits' resets are read from it."""
    retry_after: float | None = None
    """Add ``Retry-After`` to 429 answers (seconds, or an HTTP date, see below)."""
    retry_after_format: str = "seconds"
    """"seconds" or "date"."""
    status_rate_limit: int | None = None
    """Creates and edits allowed per ``status_rate_window`` seconds (Mastodon: 300 / 3 h)."""
    status_rate_window: float = 3 * 3600.0
    media_v2: bool = True
    """False: ``/api/v2/media`` answers 404, only the old synchronous ``/api/v1/media``."""
    media_async: bool = False
    """Uploads answer 202 and stay processing (206) for ``media_processing_polls`` polls."""
    media_processing_polls: int = 2
    media_fail: bool = False
    """Processing fails: 422 on upload (synchronous) or when polled (asynchronous)."""
    timeout_delay: float = 2.0
    slow_delay: float = 0.2
    latency: float = 0.0
    """Every answer leaves this many seconds after its request was carried out (a slow
    network): a client that dies meanwhile has made its post without hearing of it."""
    software: str = "mastodon"
    """NodeInfo ``software.name``; `SOFTWARE` presets set the behaviours below to match."""
    software_version: str = "4.3.0"
    instance_version: str = "4.5.0"
    """The instance documents' ``version`` text ("2.7.2 (compatible; Pleroma 2.6.0)")."""
    count_units: str = "graphemes"
    """"graphemes", "code_points" or "utf16" (JavaScript's String.length)."""
    count_spoiler: bool = True
    raw_payload: str = "spoiler_text+status"
    """What is measured when URLs count in full: "spoiler_text+status" as sent, or "pleroma":
    ``String.trim(String.trim(status) <> spoiler_text)`` (``ActivityDraft.full_payload``). Both
    count the text as written: URLs and remote mentions whole."""
    too_long_status: int = 422
    too_long_message: str = "Validation failed: Text character limit of {limit} exceeded"
    edit_checks_length: bool = True
    account_statuses_private: bool = True
    """The owner's account statuses list holds followers-only and direct posts."""
    home_timeline: bool = True
    """``/api/v1/timelines/home`` lists the account's own posts of every visibility."""
    coarse_scopes: bool = False
    """Only "read" and "write" are known (Takahē): a granular scope grants nothing."""
    bad_token: str = "json401"
    """How a wrong token is answered: "json401" or "text400" ("Invalid Bearer token")."""
    not_found_body: str | None = None
    """Body style of 404 answers when it differs from ``error_body`` ("html" on Takahē)."""
    rate_limit_headers: bool = True
    direct_supported: bool = True
    """False: a direct status is answered 500 "Direct messages are currently unsupported"."""
    languages: str = "any"
    """"any": ``language`` is taken as sent (Mastodon falls back silently on a code it does
    not know); "iso639-1": anything but a two-letter code is refused with 422 "Invalid
    language" (Akkoma, ``Pleroma.ISO639.valid_alpha2?`` in ActivityDraft)."""
    edit_errors: str = "as_create"
    """How an edit the server refuses is answered: "as_create" (what a create with the same
    fields gets: Mastodon) or "pipeline" (Pleroma and Akkoma: whatever failed in the edit's
    pipeline, too long, a bad language or media, ``StatusController.update`` gives
    ``{:error, :internal_server_error}``, which its ``FallbackController`` answers 400
    ``{"error": "internal_server_error"}``)."""

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes``, refusing unknown names and bad choices.

        ``software`` first applies its preset from `SOFTWARE`; the other
        changes then override it.
        """
        names = {item.name for item in fields(self)}
        if "software" in changes:
            preset = SOFTWARE.get(changes["software"])
            if preset is None:
                raise ValueError(f"software must be one of {', '.join(SOFTWARE)}")
            changes = {**preset, **changes}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown setting {name!r}")
            if name == "rate_reset_at" and isinstance(value, str):
                value = datetime.fromisoformat(value)
            setattr(self, name, value)
        _check_choice("error_body", self.error_body, ("json", "text", "html"))
        _check_choice("rate_reset_format", self.rate_reset_format, ("iso", "unix"))
        _check_choice("retry_after_format", self.retry_after_format, ("seconds", "date"))
        _check_choice("instance_v1", self.instance_v1, ("modern", "legacy", "absent"))
        _check_choice("count_units", self.count_units, ("graphemes", "code_points", "utf16"))
        _check_choice("bad_token", self.bad_token, ("json401", "text400"))
        _check_choice("languages", self.languages, ("any", "iso639-1"))
        _check_choice("edit_errors", self.edit_errors, ("as_create", "pipeline"))
        _check_choice("raw_payload", self.raw_payload, ("spoiler_text+status", "pleroma"))

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.rate_reset_at is not None:
            data["rate_reset_at"] = self.rate_reset_at.isoformat()
        return data


# What each server software does, from its source (docs/servers.md) and, for Takahē,
# from measurement (docs/mastodon-api.md, "Servers measured").
_MASTODON_LIKE: dict[str, Any] = {
    "count_units": "graphemes",
    "count_urls_in_full": False,
    "count_spoiler": True,
    "too_long_status": 422,
    "too_long_message": "Validation failed: Text character limit of {limit} exceeded",
    "edit_checks_length": True,
    "account_statuses_private": True,
    "home_timeline": True,
    "coarse_scopes": False,
    "bad_token": "json401",
    "error_body": "json",
    "not_found_body": None,
    "rate_limit_headers": True,
    "ignore_idempotency_key": False,
    "characters_reserved_per_url": 23,
    "direct_supported": True,
    "languages": "any",
    "edit_errors": "as_create",
    "raw_payload": "spoiler_text+status",
}
# Pleroma and Akkoma (lib/pleroma/web/common_api/activity_draft.ex, utils.ex, and
# mastodon_api/controllers/status_controller.ex `update`).
_PLEROMA_LIKE: dict[str, Any] = {
    **_MASTODON_LIKE,
    "count_urls_in_full": True,
    "raw_payload": "pleroma",
    "too_long_message": "The status is over the character limit",
    "rate_limit_headers": False,
    "languages": "iso639-1",
    "edit_errors": "pipeline",
}
SOFTWARE: dict[str, dict[str, Any]] = {
    "mastodon": {**_MASTODON_LIKE, "software_version": "4.3.0", "instance_version": "4.5.0"},
    "takahe": {
        **_MASTODON_LIKE,
        "software_version": "0.11.0",
        "instance_version": "takahe/0.11.0",
        "count_units": "code_points",
        "count_urls_in_full": True,
        "count_spoiler": False,
        "too_long_status": 400,
        "too_long_message": "Status is too long",
        "edit_checks_length": False,
        "account_statuses_private": False,
        "coarse_scopes": True,
        "bad_token": "text400",
        "not_found_body": "html",
        "rate_limit_headers": False,
        "ignore_idempotency_key": True,
    },
    "pleroma": {
        **_PLEROMA_LIKE,
        "software_version": "2.6.0",
        "instance_version": "2.7.2 (compatible; Pleroma 2.6.0)",
    },
    "akkoma": {
        **_PLEROMA_LIKE,
        "software_version": "3.13.2",
        "instance_version": "2.7.2 (compatible; Akkoma 3.13.2)",
    },
    "gotosocial": {
        **_MASTODON_LIKE,
        "software_version": "0.17.0",
        "instance_version": "0.17.0",
        "count_units": "code_points",
        "count_urls_in_full": True,
        "too_long_status": 400,
        "too_long_message": (
            "Bad Request: status too long, {length} characters provided (including "
            "spoiler/content warning) but limit is {limit}"
        ),
        "ignore_idempotency_key": True,
        "characters_reserved_per_url": 25,
    },
    "sharkey": {
        **_MASTODON_LIKE,
        "software_version": "2024.11.0",
        "instance_version": "3.0.0 (compatible; Sharkey 2024.11.0)",
        "count_units": "utf16",
        "count_urls_in_full": True,
        "count_spoiler": False,
        "too_long_status": 400,
        "too_long_message": "Note text too long",
        "account_statuses_private": False,
        "coarse_scopes": True,
        "ignore_idempotency_key": True,
    },
    "friendica": {
        **_MASTODON_LIKE,
        "software_version": "2024.08",
        "instance_version": "2.8.0 (compatible; Friendica 2024.08)",
        "count_urls_in_full": True,
        "coarse_scopes": True,
        "ignore_idempotency_key": True,
        "rate_limit_headers": False,
        "direct_supported": False,
    },
}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


@dataclass
class _FaultPlan:
    script: deque[str | None] = field(default_factory=deque)
    rates: dict[str, float] = field(default_factory=dict)


# -- length counting, as Mastodon's StatusLengthValidator does it -------------------------

_URL = regex.compile(r"(?<![\w/@.])https?://[^\s<>\"]+", regex.IGNORECASE)
_MENTION = regex.compile(r"(?<![/\w])@([a-z0-9_]+)(?:@[\w.-]+\w)?", regex.IGNORECASE)
_HASHTAG = regex.compile(r"(?<![\w/&])#(\w+)")
_GRAPHEME = regex.compile(r"\X")
# A consonant that GB9c (Unicode 15.1) joins to the cluster before it, over a virama.
_CONJUNCT_JOIN = regex.compile(
    r"(?<=\p{InCB=Consonant}[\p{InCB=Extend}\p{InCB=Linker}]*\p{InCB=Linker}"
    r"[\p{InCB=Extend}\p{InCB=Linker}]*)\p{InCB=Consonant}"
)
_URL_TRAILING = ".,:;!?'\""


def _url_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each http(s) URL, trailing punctuation left out as twitter-text does."""
    for match in _URL.finditer(text):
        url = match.group()
        while url and (
            url[-1] in _URL_TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))
        ):
            url = url[:-1]
        if len(url) > url.index("//") + 2:
            yield match.start(), match.start() + len(url)


def grapheme_length(text: str) -> int:
    """Length in extended grapheme clusters (a flag, an emoji with a skin tone: 1).

    As Ruby 3.4 (Mastodon's) counts them: Unicode 15.0, before rule GB9c joined
    Indic conjuncts, so "क्ष" is two clusters ("क्", "ष") where ``\\X`` now sees one.
    """
    if text.isascii() and "\r" not in text:
        return len(text)
    return len(_GRAPHEME.findall(text)) + len(_CONJUNCT_JOIN.findall(text))


def countable_length(status: str, spoiler_text: str, characters_per_url: int) -> int:
    """Mastodon's count: spoiler + status; a URL is ``characters_per_url``; @u@host is @u."""
    replacements: list[tuple[int, int, str]] = [
        (start, end, "x" * characters_per_url) for start, end in _url_spans(status)
    ]
    for match in _MENTION.finditer(status):
        if not any(start < match.end() and match.start() < end for start, end, _ in replacements):
            replacements.append((match.start(), match.end(), "@" + match.group(1)))
    replacements.sort()
    pieces, position = [], 0
    for start, end, stand_in in replacements:
        pieces.append(status[position:start])
        pieces.append(stand_in)
        position = end
    pieces.append(status[position:])
    return grapheme_length(spoiler_text + "".join(pieces))


def render_content(text: str, base_url: str) -> str:
    """HTML content the way Mastodon renders plain text: paragraphs, <br />, linked URLs, tags."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text.strip()) if part]
    return "".join(
        "<p>" + _linkify(part, base_url).replace("\n", "<br />") + "</p>" for part in paragraphs
    )


def _linkify(text: str, base_url: str) -> str:
    entities: list[tuple[int, int, str]] = [
        (start, end, _link(text[start:end])) for start, end in _url_spans(text)
    ]
    for match in _HASHTAG.finditer(text):
        if not any(start < match.end() and match.start() < end for start, end, _ in entities):
            tag = match.group(1)
            link = (
                f'<a href="{base_url}/tags/{html.escape(tag.lower())}" class="mention hashtag" '
                f'rel="tag">#<span>{html.escape(tag)}</span></a>'
            )
            entities.append((match.start(), match.end(), link))
    entities.sort()
    pieces, position = [], 0
    for start, end, markup in entities:
        pieces.append(html.escape(text[position:start]))
        pieces.append(markup)
        position = end
    pieces.append(html.escape(text[position:]))
    return "".join(pieces)


def _link(url: str) -> str:
    prefix = re.match(r"https?://(?:www\.)?", url, re.IGNORECASE)
    head = prefix.group() if prefix else ""
    rest = url[len(head) :]
    display, suffix = rest[:30], rest[30:]
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener noreferrer" '
        f'translate="no"><span class="invisible">{html.escape(head)}</span>'
        f'<span class="{"ellipsis" if suffix else ""}">{html.escape(display)}</span>'
        f'<span class="invisible">{html.escape(suffix)}</span></a>'
    )


# -- the server ---------------------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    body: Any = None  # JSON value, or bytes for a ready-made body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        style: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.style = style


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeMastodon:
    """One fake server with one account ("bot"); start it, or use it as a context manager."""

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Callable[[], datetime] = _utc_now,
        log_requests: bool = True,
        **config: Any,
    ) -> None:
        self.token = token or "fake-" + secrets.token_urlsafe(24)
        self.config = FakeConfig()
        self.config.update(config)
        self.clock = clock
        self.log_requests = log_requests
        self._host, self._port = host, port
        self._seed = seed
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- life ---------------------------------------------------------------------------

    def start(self) -> FakeMastodon:
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), _Handler, self)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeMastodon:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    # -- state open to tests --------------------------------------------------------------

    def reset(self) -> None:
        """Forget every status, media, key, logged request and fault (not the config)."""
        with self._lock:
            self.statuses: list[dict[str, Any]] = []
            self._status_ids: list[int] = []
            self._status_index: dict[str, int] = {}
            self.media: dict[str, dict[str, Any]] = {}
            self.requests: list[dict[str, Any]] = []
            self._idempotency: dict[tuple[str, str], tuple[str, float]] = {}
            self._status_writes: deque[float] = deque()
            self._next_id = 0
            self._faults: dict[str, _FaultPlan] = {}
            self._rngs: dict[str, random.Random] = {}

    def configure(self, **changes: Any) -> None:
        with self._lock:
            self.config.update(changes)

    def live_statuses(self) -> list[dict[str, Any]]:
        """Statuses that are not deleted, oldest first."""
        with self._lock:
            return [status for status in self.statuses if not status["deleted"]]

    def status(self, status_id: str) -> dict[str, Any] | None:
        with self._lock:
            index = self._status_index.get(status_id)
            return None if index is None else self.statuses[index]

    def server_now(self) -> datetime:
        """The time by this server's clock: ``clock`` moved by ``clock_skew``."""
        return self.clock() + timedelta(seconds=self.config.clock_skew)

    def expire_idempotency_keys(self) -> None:
        """As if the hour had passed."""
        with self._lock:
            self._idempotency.clear()

    # -- faults ---------------------------------------------------------------------------

    def inject(self, kind: str, *faults: str | None) -> None:
        """Script the next requests of ``kind``: one fault (or None: normal) per request."""
        _check_kind(kind)
        for fault in faults:
            _check_fault(fault)
        with self._lock:
            self._faults.setdefault(kind, _FaultPlan()).script.extend(faults)

    def set_fault_rates(self, kind: str, rates: Mapping[str, float]) -> None:
        """Once the script is used up, each request of ``kind`` meets a fault at these rates."""
        _check_kind(kind)
        for fault, rate in rates.items():
            _check_fault(fault)
            if not 0 <= rate <= 1:
                raise ValueError(f"rate of {fault} must be between 0 and 1")
        if sum(rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        with self._lock:
            self._faults.setdefault(kind, _FaultPlan()).rates = dict(rates)

    def rate_limit_storm(self, kind: str, count: int, *, retry_after: float | None = None) -> None:
        """The next ``count`` requests of ``kind`` are answered 429."""
        if retry_after is not None:
            self.configure(retry_after=retry_after)
        self.inject(kind, *(["429"] * count))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._rngs.clear()

    def _next_fault(self, kind: str | None) -> str | None:
        if kind is None:
            return None
        with self._lock:
            for name in (kind, "any"):
                plan = self._faults.get(name)
                if plan is not None and plan.script:
                    return plan.script.popleft()
            for name in (kind, "any"):
                plan = self._faults.get(name)
                if plan is not None and plan.rates:
                    rng = self._rngs.setdefault(name, random.Random(f"{self._seed}:{name}"))
                    draw = rng.random()
                    for fault, rate in plan.rates.items():
                        if draw < rate:
                            return fault
                        draw -= rate
        return None

    # -- documents --------------------------------------------------------------------------

    def _account_json(self) -> dict[str, Any]:
        return {
            "id": self.config.account_id,
            "username": USERNAME,
            "acct": USERNAME,
            "display_name": "newsbot",
            "bot": True,
            "locked": False,
            "url": f"{self.base_url}/@{USERNAME}",
            "uri": f"{self.base_url}/users/{USERNAME}",
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "",
            "avatar": f"{self.base_url}/avatars/original/missing.png",
            "header": f"{self.base_url}/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": len(self.statuses),
            "emojis": [],
            "fields": [],
        }

    def _media_json(self, media: dict[str, Any]) -> dict[str, Any]:
        ready = media["processing_left"] <= 0 and not media["failed"]
        return {
            "id": media["id"],
            "type": media["type"],
            "url": media["url"] if ready else None,
            "preview_url": media["url"],
            "remote_url": None,
            "description": media["description"],
            "blurhash": None,
            "meta": {},
        }

    def _status_json(self, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": status["id"],
            "created_at": status["created_at"],
            "edited_at": status["edited_at"],
            "in_reply_to_id": status["in_reply_to_id"],
            "in_reply_to_account_id": self.config.account_id if status["in_reply_to_id"] else None,
            "sensitive": status["sensitive"],
            "spoiler_text": status["spoiler_text"],
            "visibility": status["visibility"],
            "language": status["language"],
            "uri": status["uri"],
            "url": status["url"],
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": status["content"],
            "reblog": None,
            "account": self._account_json(),
            "media_attachments": [
                self._media_json(self.media[media_id])
                for media_id in status["media_ids"]
                if media_id in self.media
            ],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _instance_v2(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "domain": f"127.0.0.1:{self._port}",
            "title": "Fake Mastodon",
            "version": self.config.instance_version,
            "source_url": "https://github.com/mastodon/mastodon",
            "configuration": self._configuration(),
            "registrations": {"enabled": False, "approval_required": False},
        }
        if self.config.api_version is not None:
            document["api_versions"] = {"mastodon": self.config.api_version}
        return document

    def _instance_v1(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "uri": f"127.0.0.1:{self._port}",
            "title": "Fake Mastodon",
            "version": self.config.instance_version,
        }
        if self.config.instance_v1 == "legacy":
            document["max_toot_chars"] = self.config.max_characters
        else:
            document["configuration"] = self._configuration()
        return document

    def _configuration(self) -> dict[str, Any]:
        config = self.config
        return {
            "statuses": {
                "max_characters": config.max_characters,
                "max_media_attachments": config.max_media_attachments,
                "characters_reserved_per_url": config.characters_reserved_per_url,
            },
            "media_attachments": {
                "supported_mime_types": list(config.supported_mime_types),
                "image_size_limit": config.image_size_limit,
                "image_matrix_limit": 33177600,
                "video_size_limit": 103809024,
            },
        }

    # -- API ------------------------------------------------------------------------------

    def _verify_credentials(self, request: _Request) -> _Reply:
        return _Reply(200, self._account_json())

    def _create_status(self, request: _Request) -> _Reply:
        form = request.form()
        key = request.headers.get("idempotency-key") or None
        with self._lock:
            if key is not None and not self.config.ignore_idempotency_key:
                original = self._remembered(key)
                if original is not None and original["deleted"]:
                    # Mastodon looks the original up among the account's statuses.
                    raise _ApiError(404, "Record not found")
                if original is not None:
                    return _Reply(200, self._status_json(original))
            self._count_status_write()
            fields_ = self._status_fields(form)
            status = self._store_status(fields_, key)
            if key is not None:
                self._idempotency[(self.config.account_id, key)] = (status["id"], time.monotonic())
            return _Reply(200, self._status_json(status))

    def counted_length(self, text: str, spoiler: str) -> int:
        """A status's length as this server's software counts it."""
        config = self.config
        counted = spoiler if config.count_spoiler else ""
        if not config.count_urls_in_full:  # Mastodon's validator
            return countable_length(text, counted, config.characters_reserved_per_url)
        if config.raw_payload == "pleroma":  # Elixir's String.trim takes Unicode spaces too
            counted = (text.strip() + counted).strip()
        else:
            counted += text
        if config.count_units == "code_points":
            return len(counted)
        if config.count_units == "utf16":
            return len(counted.encode("utf-16-le")) // 2
        return grapheme_length(counted)

    def _remembered(self, key: str) -> dict[str, Any] | None:
        """The status first created with ``key`` within the last hour (TTL), if any."""
        remembered = self._idempotency.get((self.config.account_id, key))
        if remembered is None or time.monotonic() - remembered[1] >= self.config.idempotency_ttl:
            return None
        return self.statuses[self._status_index[remembered[0]]]

    def _edit_status(self, request: _Request) -> _Reply:
        form = request.form()
        with self._lock:
            status = self._own_status(request.params["id"])
            self._count_status_write()
            try:
                fields_ = self._status_fields(form, current=status)
            except _ApiError:
                self._edit_refused()
                raise
            status.update(fields_)
            status["content"] = render_content(status["text"], self.base_url)
            status["edited"] = True
            status["edited_at"] = _iso(self.clock())
            status["edits"] += 1
            return _Reply(200, self._status_json(status))

    def _edit_refused(self) -> None:
        """Where every refused edit gets one answer (Pleroma, Akkoma: see `edit_errors`),
        raise it; otherwise the refusal's own answer stands."""
        if self.config.edit_errors == "pipeline":
            raise _ApiError(400, "internal_server_error") from None

    def _delete_status(self, request: _Request) -> _Reply:
        with self._lock:
            status = self._own_status(request.params["id"])
            status["deleted"] = True
            document = self._status_json(status)
            document["text"] = status["text"]
            return _Reply(200, document)

    def _get_status(self, request: _Request) -> _Reply:
        with self._lock:
            return _Reply(200, self._status_json(self._own_status(request.params["id"])))

    def _home_timeline(self, request: _Request) -> _Reply:
        if not self.config.home_timeline:
            return _Reply(200, [])
        return self._statuses_page(request, "/api/v1/timelines/home", private=True)

    def _nodeinfo_links(self, request: _Request) -> _Reply:
        href = f"{self.base_url}/nodeinfo/2.0"
        return _Reply(200, {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                                       "href": href}]})  # fmt: skip

    def _nodeinfo(self, request: _Request) -> _Reply:
        software = {"name": self.config.software, "version": self.config.software_version}
        return _Reply(200, {"version": "2.0", "software": software, "protocols": ["activitypub"]})

    def _account_statuses(self, request: _Request) -> _Reply:
        if request.params["id"] != self.config.account_id:
            raise _ApiError(404, "Record not found")
        here = f"/api/v1/accounts/{self.config.account_id}/statuses"
        owner = request.headers.get("authorization") == f"Bearer {self.token}"
        private = owner and self.config.account_statuses_private
        return self._statuses_page(request, here, private=private)

    def _statuses_page(self, request: _Request, here_path: str, *, private: bool) -> _Reply:
        query = request.query
        limit = min(max(_int(query.get("limit"), None) or 20, 1), 40)
        max_id = _int(query.get("max_id"), None)
        floor = _int(query.get("min_id") or query.get("since_id"), None)
        with self._lock:
            ids = self._status_ids
            end = len(ids) if max_id is None else bisect.bisect_left(ids, max_id)
            page: list[dict[str, Any]] = []
            for index in range(end - 1, -1, -1):
                if floor is not None and self._status_ids[index] <= floor:
                    break
                status = self.statuses[index]
                hidden = not private and status["visibility"] in ("private", "direct")
                if not status["deleted"] and not hidden:
                    page.append(self._status_json(status))
                    if len(page) == limit:
                        break
        headers = {}
        if page:
            here = f"{self.base_url}{here_path}"
            older = urlencode({"limit": limit, "max_id": page[-1]["id"]})
            newer = urlencode({"limit": limit, "min_id": page[0]["id"]})
            headers["Link"] = f'<{here}?{older}>; rel="next", <{here}?{newer}>; rel="prev"'
        return _Reply(200, page, headers)

    def _upload_media(self, request: _Request) -> _Reply:
        parts = request.multipart()
        upload = parts.get("file")
        if upload is None or not isinstance(upload, tuple):
            raise _ApiError(422, "Validation failed: File can't be blank")
        filename, mime_type, data = upload
        description = parts.get("description")
        description = description if isinstance(description, str) else ""
        config = self.config
        if config.supported_mime_types and mime_type not in config.supported_mime_types:
            raise _ApiError(422, "Validation failed: File content type is invalid")
        if mime_type.startswith("image/") and len(data) > config.image_size_limit:
            megabytes = config.image_size_limit // (1024 * 1024)
            message = f"Validation failed: File file size must be less than {megabytes} MB"
            raise _ApiError(422, message)
        if len(description) > 1500:
            message = "Validation failed: Description is too long (maximum is 1500 characters)"
            raise _ApiError(422, message)
        asynchronous = config.media_async and request.path.startswith("/api/v2/")
        if config.media_fail and not asynchronous:
            raise _ApiError(422, "Error processing thumbnail for uploaded media")
        with self._lock:
            media_id = self._new_id()
            media = {
                "id": media_id,
                "type": mime_type.split("/")[0] if "/" in mime_type else "unknown",
                "filename": filename,
                "mime_type": mime_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "description": description,
                "url": f"{self.base_url}/system/media_attachments/{media_id}/{filename}",
                "processing_left": config.media_processing_polls if asynchronous else 0,
                "failed": config.media_fail,
                "polls": 0,
                "status_id": None,
            }
            self.media[media_id] = media
            return _Reply(202 if asynchronous else 200, self._media_json(media))

    def _get_media(self, request: _Request) -> _Reply:
        with self._lock:
            media = self.media.get(request.params["id"])
            if media is None:
                raise _ApiError(404, "Record not found")
            media["polls"] += 1
            if media["processing_left"] > 0:
                media["processing_left"] -= 1
                return _Reply(206, self._media_json(media))
            if media["failed"]:
                raise _ApiError(422, "Error processing thumbnail for uploaded media")
            return _Reply(200, self._media_json(media))

    # -- statuses, inside the lock --------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(_ID_BASE + self._next_id)

    def _own_status(self, status_id: str) -> dict[str, Any]:
        index = self._status_index.get(status_id)
        if index is None or self.statuses[index]["deleted"]:
            raise _ApiError(404, "Record not found")
        return self.statuses[index]

    def _count_status_write(self) -> None:
        limit = self.config.status_rate_limit
        if limit is None:
            return
        now = time.monotonic()
        writes = self._status_writes
        while writes and now - writes[0] >= self.config.status_rate_window:
            writes.popleft()
        if len(writes) >= limit:
            wait = self.config.status_rate_window - (now - writes[0])
            lifts = self.server_now() + timedelta(seconds=wait)
            raise _ApiError(429, "Too many requests", self._rate_headers(limit, lifts))
        writes.append(now)

    def _status_fields(
        self, form: Mapping[str, Any], current: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Validated fields of a new status, or of an edit of ``current``.

        As in Mastodon's UpdateStatusService, an edit keeps the text, content
        warning and language it does not send, but drops media it does not send.
        """
        config = self.config
        edit = current is not None
        text = _field(form, "status")
        spoiler = _field(form, "spoiler_text")
        if current is not None and "status" not in form:
            text = current["text"]
        if current is not None and "spoiler_text" not in form:
            spoiler = current["spoiler_text"]
        media_ids = [str(item) for item in _list_field(form, "media_ids")]
        if len(media_ids) > config.max_media_attachments:
            raise _ApiError(422, f"Cannot attach more than {config.max_media_attachments} files")
        attached = [media_id for media_id in media_ids if media_id in self.media]
        if any(self.media[media_id]["processing_left"] > 0 for media_id in attached):
            raise _ApiError(
                422, "Cannot attach files that have not finished processing. Try again in a moment!"
            )
        if not text.strip() and not attached:
            raise _ApiError(422, "Validation failed: Text can't be blank")
        if not edit or config.edit_checks_length:
            length = self.counted_length(text, spoiler)
            if length > config.max_characters:
                message = config.too_long_message.format(limit=config.max_characters, length=length)
                raise _ApiError(config.too_long_status, message)
        fields_: dict[str, Any] = {
            "text": text,
            "spoiler_text": spoiler,
            "media_ids": attached,
        }
        if not edit or "sensitive" in form or "spoiler_text" in form:
            fields_["sensitive"] = _truthy(form.get("sensitive")) or bool(spoiler)
        if "language" in form or not edit:
            language = _field(form, "language") or None
            if language and config.languages == "iso639-1" and not _ISO639_1.fullmatch(language):
                raise _ApiError(422, "Invalid language")
            fields_["language"] = language
        if not edit:
            visibility = _field(form, "visibility") or "public"
            if visibility not in _VISIBILITIES:
                raise _ApiError(422, "Validation failed: Visibility is not included in the list")
            reply_to = _field(form, "in_reply_to_id") or None
            if reply_to is not None and reply_to not in self._status_index:
                message = "The post you are trying to reply to does not appear to exist."
                raise _ApiError(404, message)
            if visibility == "direct" and not config.direct_supported:
                raise _ApiError(500, "Direct messages are currently unsupported")
            fields_["visibility"] = visibility
            fields_["in_reply_to_id"] = reply_to
        return fields_

    def _store_status(self, fields_: dict[str, Any], key: str | None) -> dict[str, Any]:
        status_id = self._new_id()
        status = {
            "id": status_id,
            **fields_,
            "idempotency_key": key,
            "created_at": _iso(self.clock()),
            "edited_at": None,
            "edited": False,
            "edits": 0,
            "deleted": False,
            "url": f"{self.base_url}/@{USERNAME}/{status_id}",
            "uri": f"{self.base_url}/users/{USERNAME}/statuses/{status_id}",
            "content": render_content(fields_["text"], self.base_url),
        }
        for media_id in status["media_ids"]:
            self.media[media_id]["status_id"] = status_id
        self._status_index[status_id] = len(self.statuses)
        self.statuses.append(status)
        self._status_ids.append(int(status_id))
        return status

    # -- rate limit and error answers -------------------------------------------------------

    def _rate_headers(self, limit: int, lifts: datetime) -> dict[str, str]:
        if self.config.rate_reset_at is not None:
            lifts = self.config.rate_reset_at
        if self.config.rate_reset_format == "unix":
            reset = str(int(lifts.timestamp()))
        else:
            reset = lifts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        if not self.config.rate_limit_headers:
            headers = {}
        retry_after = self.config.retry_after
        if retry_after is not None:
            if self.config.retry_after_format == "date":
                moment = self.server_now() + timedelta(seconds=retry_after)
                headers["Retry-After"] = format_datetime(moment, usegmt=True)
            else:
                headers["Retry-After"] = str(int(retry_after))
        return headers

    def _rate_limited(self) -> _ApiError:
        lifts = self.server_now() + timedelta(seconds=self.config.rate_reset_after)
        return _ApiError(429, "Too many requests", self._rate_headers(300, lifts))

    def _error_reply(self, error: _ApiError) -> _Reply:
        style = self.config.error_body
        if error.status == 404 and self.config.not_found_body is not None:
            style = self.config.not_found_body
        style = error.style or style
        if style == "json":
            return _Reply(error.status, {"error": error.message}, error.headers)
        if style == "text":
            body = error.message.encode()
            return _Reply(error.status, body, error.headers, "text/plain; charset=utf-8")
        phrase = HTTPStatus(error.status).phrase
        page = (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{error.status} {phrase}</title>"
            "<style>body { font-family: sans-serif; }</style></head>\n"
            f"<body><h1>{phrase}</h1>\n<p>{html.escape(error.message)}</p></body></html>\n"
        )
        return _Reply(error.status, page.encode(), error.headers, "text/html; charset=utf-8")

    # -- out-of-process control -------------------------------------------------------------

    def _fake_statuses(self, request: _Request) -> _Reply:
        offset = _int(request.query.get("offset"), 0) or 0
        with self._lock:
            answer: dict[str, Any] = {
                "count": sum(1 for status in self.statuses if not status["deleted"]),
                "total": len(self.statuses),
            }
            if not _truthy(request.query.get("summary")):
                answer["statuses"] = [dict(status) for status in self.statuses[offset:]]
        return _Reply(200, answer)

    def _fake_requests(self, request: _Request) -> _Reply:
        offset = _int(request.query.get("offset"), 0) or 0
        with self._lock:
            return _Reply(200, {"count": len(self.requests), "requests": self.requests[offset:]})

    def _fake_config(self, request: _Request) -> _Reply:
        if request.method == "POST":
            changes = dict(request.json_body())
            try:
                if changes.pop("clear_faults", False):
                    self.clear_faults()
                if "seed" in changes:
                    self.reseed(int(changes.pop("seed")))
                for kind, plan in (changes.pop("faults", None) or {}).items():
                    if plan.get("script"):
                        self.inject(kind, *plan["script"])
                    if "rates" in plan:
                        self.set_fault_rates(kind, plan["rates"])
                self.configure(**changes)
            except (ValueError, TypeError, AttributeError) as exc:
                raise _ApiError(400, str(exc)) from None
        with self._lock:
            faults = {
                kind: {"script": list(plan.script), "rates": plan.rates}
                for kind, plan in self._faults.items()
            }
            return _Reply(200, {"config": self.config.as_json(), "faults": faults})

    def _fake_reset(self, request: _Request) -> _Reply:
        self.reset()
        return _Reply(200, {"reset": True})


# -- HTTP plumbing ------------------------------------------------------------------------


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    kind: str | None  # None: the control endpoints, never faulted
    scope: str | None  # None: public; "optional:…": a token is checked only if sent
    action: Callable[[FakeMastodon, _Request], _Reply]


def _route(
    method: str,
    path: str,
    kind: str | None,
    scope: str | None,
    action: Callable[[FakeMastodon, _Request], _Reply],
) -> _Route:
    return _Route(method, re.compile(path + r"/?"), kind, scope, action)


def _instance_v2(fake: FakeMastodon, request: _Request) -> _Reply:
    if not fake.config.instance_v2:
        raise _ApiError(404, "Not Found")
    return _Reply(200, fake._instance_v2())


def _instance_v1(fake: FakeMastodon, request: _Request) -> _Reply:
    if fake.config.instance_v1 == "absent":
        raise _ApiError(404, "Not Found")
    return _Reply(200, fake._instance_v1())


def _app_credentials(fake: FakeMastodon, request: _Request) -> _Reply:
    """Mastodon's ``Apps::CredentialsController``: the token's application, with its scopes."""
    return _Reply(
        200, {"id": "1", "name": "newsbot", "website": None, "scopes": fake.config.scopes}
    )


def _upload_media_v2(fake: FakeMastodon, request: _Request) -> _Reply:
    if not fake.config.media_v2:
        raise _ApiError(404, "Not Found")
    return fake._upload_media(request)


_ID = r"(?P<id>[^/]+)"
_ROUTES = (
    _route("GET", "/api/v2/instance", "instance", None, _instance_v2),
    _route("GET", "/api/v1/instance", "instance", None, _instance_v1),
    _route(
        "GET",
        "/api/v1/accounts/verify_credentials",
        "verify_credentials",
        "read:accounts",
        FakeMastodon._verify_credentials,
    ),
    _route(
        "POST", "/api/v1/statuses", "post_status", "write:statuses", FakeMastodon._create_status
    ),
    _route(
        "PUT", f"/api/v1/statuses/{_ID}", "edit_status", "write:statuses", FakeMastodon._edit_status
    ),
    _route(
        "DELETE",
        f"/api/v1/statuses/{_ID}",
        "delete_status",
        "write:statuses",
        FakeMastodon._delete_status,
    ),
    _route(
        "GET",
        f"/api/v1/statuses/{_ID}",
        "get_status",
        "optional:read:statuses",
        FakeMastodon._get_status,
    ),
    _route(
        "GET",
        f"/api/v1/accounts/{_ID}/statuses",
        "account_statuses",
        "optional:read:statuses",
        FakeMastodon._account_statuses,
    ),
    _route(
        "GET",
        "/api/v1/timelines/home",
        "home_timeline",
        "read:statuses",
        FakeMastodon._home_timeline,
    ),
    _route("GET", "/.well-known/nodeinfo", "instance", None, FakeMastodon._nodeinfo_links),
    _route("GET", "/nodeinfo/2.0", "instance", None, FakeMastodon._nodeinfo),
    _route("POST", "/api/v2/media", "upload_media", "write:media", _upload_media_v2),
    _route("POST", "/api/v1/media", "upload_media", "write:media", FakeMastodon._upload_media),
    _route("GET", f"/api/v1/media/{_ID}", "get_media", "write:media", FakeMastodon._get_media),
    _route(
        "GET", "/api/v1/apps/verify_credentials", "verify_credentials", "token", _app_credentials
    ),
    _route("GET", "/__fake__/statuses", None, None, FakeMastodon._fake_statuses),
    _route("GET", "/__fake__/requests", None, None, FakeMastodon._fake_requests),
    _route("GET", "/__fake__/config", None, None, FakeMastodon._fake_config),
    _route("POST", "/__fake__/config", None, None, FakeMastodon._fake_config),
    _route("POST", "/__fake__/reset", None, None, FakeMastodon._fake_reset),
)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"')
_DISPOSITION_FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"')


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, Any]:
        """Fields of a JSON, urlencoded or multipart body."""
        content_type = self.headers.get("content-type", "")
        if "json" in content_type:
            data = self.json_body()
            if not isinstance(data, dict):
                raise _ApiError(400, "Body must be a JSON object")
            return data
        if content_type.startswith("multipart/"):
            return {
                name: value for name, value in self.multipart().items() if isinstance(value, str)
            }
        form: dict[str, Any] = {}
        fields_ = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        for name, values in fields_.items():
            form[name] = values if name.endswith("[]") else values[-1]
        return form

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise _ApiError(400, "Body is not valid JSON") from None

    def multipart(self) -> dict[str, str | list[str] | tuple[str, str, bytes]]:
        """Multipart fields: text as str (``x[]`` as a list), files as (name, type, data)."""
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise _ApiError(422, "Validation failed: File can't be blank")
        boundary = _BOUNDARY.search(content_type)
        if boundary is None:
            raise _ApiError(400, "Multipart body without a boundary")
        delimiter = b"--" + boundary.group(1).encode()
        parts: dict[str, str | list[str] | tuple[str, str, bytes]] = {}
        for section in self.body.split(delimiter)[1:]:
            if section.startswith(b"--"):
                break
            head, _, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            data = data.removesuffix(b"\r\n")
            lines = head.decode("utf-8", "replace").split("\r\n")
            headers = {
                key.strip().lower(): value.strip()
                for key, _, value in (line.partition(":") for line in lines)
            }
            disposition = headers.get("content-disposition", "")
            name = _DISPOSITION_NAME.search(disposition)
            if name is None:
                continue
            filename = _DISPOSITION_FILENAME.search(disposition)
            if filename is not None:
                mime_type = headers.get("content-type", "application/octet-stream")
                parts[name.group(1)] = (filename.group(1), mime_type.split(";")[0].strip(), data)
            elif name.group(1).endswith("[]"):
                existing = parts.setdefault(name.group(1), [])
                if isinstance(existing, list):
                    existing.append(data.decode("utf-8", "replace"))
            else:
                parts[name.group(1)] = data.decode("utf-8", "replace")
        return parts


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fake: FakeMastodon):
        self.fake = fake
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, by the fake server's clock (which may be skewed)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return format_datetime(self.server.fake.server_now(), usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        request = self._read_request()
        route = self._match(request)
        kind = route.kind if route is not None else None
        fault = fake._next_fault(kind)
        entry = self._log(request, kind, fault)
        if fault == "drop_before":
            self._drop(entry)
            return
        if fault == "slow":
            fake._stopping.wait(fake.config.slow_delay)
        reply = self._answer(request, route, fault)
        if fake.config.latency and kind is not None:
            fake._stopping.wait(fake.config.latency)
        if fault == "timeout":
            fake._stopping.wait(fake.config.timeout_delay)
            self.close_connection = True
        elif fault in ("drop", "reset"):
            self._drop(entry, reset=fault == "reset")
            return
        entry["status"] = reply.status
        self._write(reply)

    def _answer(self, request: _Request, route: _Route | None, fault: str | None) -> _Reply:
        fake = self.server.fake
        try:
            if fault is not None and fault.isdigit():
                if fault == "429":
                    raise fake._rate_limited()
                if route is not None and route.kind == "edit_status" and fault.startswith("4"):
                    fake._edit_refused()
                raise _ApiError(int(fault), HTTPStatus(int(fault)).phrase)
            if route is None:
                raise _ApiError(404, "Not Found")
            self._authorize(request, route.scope)
            return route.action(fake, request)
        except _ApiError as error:
            return fake._error_reply(error)

    def _authorize(self, request: _Request, scope: str | None) -> None:
        if scope is None:
            return
        fake = self.server.fake
        optional = scope.startswith("optional:")
        scope = scope.removeprefix("optional:")
        authorization = request.headers.get("authorization")
        if authorization is None and optional:
            return
        if authorization != f"Bearer {fake.token}":
            if fake.config.bad_token == "text400":
                raise _ApiError(400, "Invalid Bearer token", style="text")
            raise _ApiError(401, "The access token is invalid")
        if scope == "token":  # any valid token, whatever its scopes
            return
        granted = set(fake.config.scopes)
        parent = scope.split(":")[0]
        if fake.config.coarse_scopes:  # only "read" and "write" mean anything
            granted = granted & _SCOPE_PARENTS
        profile = scope == "read:accounts" and "profile" in granted
        if scope not in granted and parent not in (granted & _SCOPE_PARENTS) and not profile:
            raise _ApiError(403, "This action is outside the authorized scopes")

    def _read_request(self) -> _Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        headers = {name.lower(): value for name, value in self.headers.items()}
        return _Request(self.command, parts.path, query, headers, body)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _match(self, request: _Request) -> _Route | None:
        for route in _ROUTES:
            if route.method == request.method:
                match = route.pattern.fullmatch(request.path)
                if match:
                    request.params = match.groupdict()
                    return route
        return None

    def _log(self, request: _Request, kind: str | None, fault: str | None) -> dict[str, Any]:
        fake = self.server.fake
        authorization = request.headers.get("authorization")
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "kind": kind,
            "fault": fault,
            "headers": {k: v for k, v in request.headers.items() if k != "authorization"},
            "authorization_present": authorization is not None,
            "authorization_valid": authorization == f"Bearer {fake.token}",
            "status": None,
            "time": time.time(),
        }
        if fake.log_requests and kind is not None:
            with fake._lock:
                fake.requests.append(entry)
        return entry

    def _drop(self, entry: dict[str, Any], *, reset: bool = False) -> None:
        """Close the connection without a word; with ``reset``, abort it (RST)."""
        entry["status"] = None
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()

    def _write(self, reply: _Reply) -> None:
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


def _check_kind(kind: str) -> None:
    if kind != "any" and kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; one of {', '.join(KINDS)} or 'any'")


def _check_fault(fault: str | None) -> None:
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[-1] if value else ""
    return "" if value is None else str(value)


def _list_field(form: Mapping[str, Any], name: str) -> list[Any]:
    value = form.get(name + "[]", form.get(name))
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE if value is not None else False


def _int(value: str | None, default: int | None) -> int | None:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default


# -- standalone ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON object of settings")
    parser.add_argument("--no-request-log", action="store_true", help="keep no request log")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = FakeMastodon(
        token=args.token,
        host=args.host,
        port=args.port,
        seed=args.seed,
        log_requests=not args.no_request_log,
        **json.loads(args.config),
    ).start()
    print(json.dumps({"base_url": server.base_url, "token": server.token}), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
