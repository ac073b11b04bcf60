"""Cached files answered by the server itself: the composer, and the connection that only does that.

Feed readers ask for the same few files again and again, mostly to be told
304. Such an answer is a dictionary lookup, a ``stat`` and a few hundred bytes
written, so the cost of a request is the code it passes through. Measured on
a 2-core machine with ``wrk`` (``bench/serve.py``): uvicorn's protocol alone
(a request scope, header lists, two timers per request) held the server to
~40,000 304s a second, and Python run between two system calls runs cold, so
every object touched per request counts several times what a tight loop
shows.

So a connection starts as a :class:`FastHttp`: it answers a request from the
cache (:class:`FastPath`) when the request is the simple, common one — one
whole GET or HEAD head per read, no body, HTTP/1.1, a file the cache holds
as it is on disk — with one timer per connection, not per request. The
first request it cannot answer that way (a miss, a probe, ``/status``, a
body, a head in pieces, pipelined requests, a bad head, anything the app's
middleware must see) hands the connection over to the full protocol: the
bytes it holds begin at a request boundary (the previous one ended with its
read), so the full protocol parses them as if it had had the connection
from the start. The full protocol answers cached files by itself too
(:func:`compose`), with the same bytes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, cast
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from newsbot.web.cache import Answer

CachedAnswer = Callable[[str, str, str | None, str | None, str | None], Answer | None]
"""(method, path without its leading ``/``, If-None-Match, If-Modified-Since, Accept-Encoding)."""
Observe = Callable[[str, str, int, int, float, str | None], None]
"""(method, path, status, body bytes, seconds, client host): one answered request."""
Declines = Callable[[list[tuple[bytes, bytes]]], bool]
"""Whether a request (by its headers) must go to the app, whatever the cache holds."""

END_OF_HEAD = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class FastPath:
    """What the server needs to answer cached files by itself."""

    answer: CachedAnswer
    observe: Observe | None = None
    declines: Declines | None = None
    timer: Callable[[], float] = time.perf_counter
    largest_body: int = 64 * 1024
    """A larger body goes through the app, which sends it as the client takes it."""


class Composed(NamedTuple):
    """A whole response, ready to write, and what the access log says of it."""

    data: bytes
    method: str
    path: str
    status: int
    body_bytes: int


def compose(
    fast: FastPath,
    method: bytes,
    url: bytes,
    headers: list[tuple[bytes, bytes]],
    default_headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
    max_head: int,
) -> Composed | None:
    """The response to a GET or HEAD of a cached file, or None when the app must answer.

    ``headers`` have lowercase names and no trailing whitespace in values
    (as uvicorn's parser callbacks leave them). A head larger than
    ``max_head`` is the app's to refuse (its head limit answers 414 or 431).
    """
    if method not in (b"GET", b"HEAD") or url[:1] != b"/" or b"#" in url:
        return None
    if len(url) + len(method) + 1 + sum(len(n) + len(v) + 4 for n, v in headers) > max_head:
        return None
    if fast.declines is not None and fast.declines(headers):
        return None
    try:
        path = url.partition(b"?")[0].decode("ascii")
    except UnicodeDecodeError:
        return None
    if "%" in path:
        path = unquote(path)
    if_none_match = if_modified_since = accept_encoding = None
    for name, value in headers:
        if name == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since":
            if_modified_since = value.decode("latin-1")
        elif name == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    verb = method.decode("ascii")
    answer = fast.answer(verb, path[1:], if_none_match, if_modified_since, accept_encoding)
    if answer is None or len(answer.body) > fast.largest_body:
        return None
    head = [STATUS_LINE[answer.status]]
    for name, value in default_headers:  # the date, which changes each second
        head += (name, b": ", value, b"\r\n")
    head.append(answer.lines)
    if not keep_alive:
        head.append(b"connection: close\r\n")
    head += (b"\r\n", answer.body)
    return Composed(b"".join(head), verb, path, answer.status, len(answer.body))


class FullProtocol(Protocol):
    """The protocol a :class:`FastHttp` connection is handed over to (the server's own)."""

    def connection_made(self, transport: asyncio.Transport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def head_deadline_at(self, when: float) -> None: ...


@dataclass(frozen=True, slots=True)
class FastSettings:
    """What every fast connection of one server shares."""

    fast: FastPath
    server_state: Any
    """uvicorn's ``ServerState``: its open connections and the current ``date`` header."""
    hand_over: Callable[[], FullProtocol]
    """A new full protocol for this server, not yet connected."""
    max_head_bytes: int
    head_timeout: float
    idle_after_answer: float
    """An answered connection waits this long for its next head (keep-alive, within the head's
    own deadline)."""
    write_stall: float


class FastHttp(asyncio.Protocol):
    """A connection answered from the cache until it asks for something else."""

    def __init__(self, settings: FastSettings, loop: asyncio.AbstractEventLoop) -> None:
        self._settings = settings
        self._loop = loop
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._complete = False
        self._keep_alive = False
        self._method = b""
        self._version = ""
        self._transport: asyncio.Transport | None = None
        self._client: str | None = None
        self._since = 0.0
        """When the connection opened or its last answer was written (the loop's clock)."""
        self._idle_until = 0.0
        """No next request head by then: close (a deadline moved, never re-armed per request)."""
        self._idle: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None

    # -- the connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's: not a subclass
        peer = transport.get_extra_info("peername")
        self._client = peer[0] if isinstance(peer, tuple) else None
        self._settings.server_state.connections.add(self)
        self._since = self._loop.time()
        self._idle_until = self._since + self._settings.head_timeout
        self._idle = self._loop.call_at(self._idle_until, self._idle_check)

    def connection_lost(self, exc: Exception | None) -> None:
        self._settings.server_state.connections.discard(self)
        self._cancel_timers()

    def shutdown(self) -> None:
        """The server stops: nothing is ever in flight here between reads, so close now."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        settings = self._settings
        end = data.find(END_OF_HEAD)
        if end < 0 or end != len(data) - 4 or len(data) > settings.max_head_bytes:
            self._hand_over(data)  # a head in pieces, pipelined requests, a body, too large
            return
        started = settings.fast.timer()
        self._url = b""
        self._headers = []
        self._complete = False
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # the full protocol's
            self._hand_over(data)
            return
        if not self._complete or self._version != "1.1":
            self._hand_over(data)
            return
        keep_alive = self._keep_alive
        composed = compose(
            settings.fast,
            self._method,
            self._url,
            self._headers,
            settings.server_state.default_headers,
            keep_alive,
            settings.max_head_bytes,
        )
        if composed is None:
            self._hand_over(data)
            return
        transport = self._transport
        assert transport is not None
        transport.write(composed.data)
        if keep_alive:
            self._since = self._loop.time()
            self._idle_until = self._since + settings.idle_after_answer
        else:
            self._close()
        observe = settings.fast.observe
        if observe is not None:
            seconds = settings.fast.timer() - started
            observe(composed.method, composed.path, composed.status, composed.body_bytes,
                    seconds, self._client)  # fmt: skip

    # -- the parser's callbacks --------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        # Read now: once the message is complete the parser is ready for the next one.
        parser = self._parser
        self._keep_alive = parser.should_keep_alive()
        self._method = parser.get_method()
        self._version = parser.get_http_version()

    def on_message_complete(self) -> None:
        self._complete = True

    # -- writing, idling, handing over -------------------------------------------------------

    def pause_writing(self) -> None:
        """The client takes no answers: read no more requests, and drop it after the stall time."""
        assert self._transport is not None
        self._transport.pause_reading()
        if self._stall is None:
            self._stall = self._loop.call_later(self._settings.write_stall, self._stalled)

    def resume_writing(self) -> None:
        assert self._transport is not None
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def _stalled(self) -> None:
        self._stall = None
        if self._transport is not None:
            self._transport.abort()

    def _idle_check(self) -> None:
        """Close a connection that sent no request head in time; else wait for the new deadline."""
        self._idle = None
        if self._transport is None or self._transport.is_closing():
            return
        if self._loop.time() < self._idle_until:
            self._idle = self._loop.call_at(self._idle_until, self._idle_check)
        else:
            self._close()

    def _close(self) -> None:
        """Close after what is buffered is sent, or drop it if the client stops taking it."""
        assert self._transport is not None
        self._transport.close()
        if self._transport.get_write_buffer_size() and self._stall is None:
            self._stall = self._loop.call_later(self._settings.write_stall, self._stalled)

    def _hand_over(self, data: bytes) -> None:
        """Give the connection, from this request on, to the full protocol."""
        transport = self._transport
        assert transport is not None
        self._cancel_timers()
        self._settings.server_state.connections.discard(self)
        full = self._settings.hand_over()
        transport.set_protocol(full)  # type: ignore[arg-type]
        full.connection_made(transport)
        # The head's deadline still counts from the connection or the last answer:
        # handing over gives a slow client no more time.
        full.head_deadline_at(self._since + self._settings.head_timeout)
        full.data_received(data)

    def _cancel_timers(self) -> None:
        for timer in (self._idle, self._stall):
            if timer is not None:
                timer.cancel()
        self._idle = self._stall = None
