"""Running the app with uvicorn inside the service's process, until the service says stop.

The service owns the signals: on SIGTERM it stops the scheduler and the web
server together, in its own order. So uvicorn here never installs signal
handlers (it would otherwise take SIGINT and SIGTERM when run on the main
thread, and raise them again after its shutdown); it stops when
:meth:`WebServer.stop` sets ``should_exit``, from any thread.

The listening socket is bound when the :class:`WebServer` is made, in the
caller's thread: a port already in use is an ``OSError`` there, rather than
uvicorn's ``sys.exit`` inside a server thread, and port 0 gives a real port
at once. uvicorn stays quiet: no access log, its own loggers at WARNING, and
``log_config=None`` so the service's logging setup is left as it is.

What one client can make the server hold is bounded (:class:`Limits`):
uvicorn runs its httptools protocol (given as a class, with uvloop as the
loop when installed), which sets no size limit of its own, so the bytes of a
request head are counted here as they arrive: a head still incomplete past
``max_head_bytes`` is answered 400 and the connection closed, which bounds
what a slow client makes us buffer; a head that arrives whole in one read is
measured by :class:`_HeadLimit` and answered 414 or 431 before the app sees
it. A client has ``head_timeout_seconds`` to send a whole request head,
counted from the connection or the end of the previous response. uvicorn
itself has no such deadline: its keep-alive timer restarts on every byte, so
a client that connects and sends nothing, or one byte now and then, would
hold its connection, its buffer and a file descriptor for ever.

The fast path (:class:`~newsbot.web.fast.FastPath`): a GET or HEAD of a
file the cache holds as it is on disk is answered in the protocol itself,
from the bytes and headers
:meth:`~newsbot.web.files.OutputFiles.answer_cached` gives, without an ASGI
task, Starlette or the thread pool; it is logged and counted by the same
observer as the app's requests. With a fast path, each connection starts on
the lean :class:`~newsbot.web.fast.FastHttp`, which does only that, and is
handed over to the full protocol here at its first request that needs more
(a miss, a probe, a body, a head in pieces, pipelining); the full protocol
answers cached files itself too, when nothing else is in flight.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from newsbot.web.early import bind
from newsbot.web.fast import FastHttp, FastPath, FastSettings, compose

START_TIMEOUT = 10.0
"""Seconds :meth:`WebServer.start` waits for the server to listen."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a single client can make the server hold."""

    max_head_bytes: int = 16 * 1024
    """Request line and headers together (counted as they arrive, and once whole)."""
    head_timeout_seconds: float = 10.0
    """Time to send a whole request head, from connecting or from the previous response."""
    keep_alive_seconds: int = 5
    """An idle kept-alive connection is closed after this (uvicorn's own timer)."""
    write_stall_seconds: float = 30.0
    """A client that takes none of a response for this long is dropped."""


class _HeadLimit:
    """Answers 414 or 431, without calling the app, to a request whose head is too large."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope["raw_path"]) + len(scope["query_string"]) + 1
            fields = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if target + len(scope["method"]) + fields > self.max_bytes:
                status, reason = (414, "URI") if target > self.max_bytes // 2 else (431, "head")
                response = PlainTextResponse(
                    f"Request {reason} too large\n",
                    status_code=status,
                    headers={"Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Config(uvicorn.Config):
    """uvicorn's config, carrying the limits and fast path its protocol instances read."""

    def __init__(self, app: ASGIApp, limits: Limits, fast: FastPath | None, **options: Any) -> None:
        super().__init__(
            _HeadLimit(app, limits.max_head_bytes),
            http=_BoundedHttp if fast is None else _FastConnection,
            ws="none",  # no WebSocket route: its library is never loaded
            timeout_keep_alive=limits.keep_alive_seconds,
            **options,
        )
        self.limits = limits
        self.fast = fast
        self._fast_settings: FastSettings | None = None

    def fast_settings(
        self, server_state: ServerState, app_state: dict[str, Any], loop: asyncio.AbstractEventLoop
    ) -> FastSettings:
        """What this server's fast connections share, made with the first of them."""
        if self._fast_settings is None:
            assert self.fast is not None
            limits = self.limits

            def hand_over() -> _BoundedHttp:
                return _BoundedHttp(self, server_state, app_state, loop)

            self._fast_settings = FastSettings(
                self.fast,
                server_state,
                hand_over,
                max_head_bytes=limits.max_head_bytes,
                head_timeout=limits.head_timeout_seconds,
                idle_after_answer=min(limits.keep_alive_seconds, limits.head_timeout_seconds),
                write_stall=limits.write_stall_seconds,
            )
        return self._fast_settings


class _FastConnection(FastHttp):
    """A new connection of a server that answers cached files itself (uvicorn makes one each)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        loop = _loop or asyncio.get_event_loop()
        assert isinstance(config, _Config)
        super().__init__(config.fast_settings(server_state, app_state, loop), loop)


class _BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded heads, deadlines, and the fast path."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = config.limits if isinstance(config, _Config) else Limits()
        self._fast = config.fast if isinstance(config, _Config) else None
        self._max_head = limits.max_head_bytes
        self._head_bytes = 0
        self._in_head = True
        """Waiting for (the rest of) a request head."""
        self._answered = False
        """The current request was answered by the fast path: its body is ignored."""
        self._head_timeout = limits.head_timeout_seconds
        self._head_deadline: asyncio.TimerHandle | None = None
        self._stall_timeout = limits.write_stall_seconds
        self._stall_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_head and not self.transport.is_closing():
            self.send_400_response("Request head too large")

    def on_message_begin(self) -> None:
        self._answered = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        if self._fast is not None and self._answer_fast(self._fast):
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        if not self._answered:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:  # nothing pipelined in flight
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        for deadline in (self._head_deadline, self._stall_deadline):
            if deadline is not None:
                deadline.cancel()
        self._head_deadline = self._stall_deadline = None
        super().connection_lost(exc)

    def _answer_fast(self, fast: FastPath) -> bool:
        """Answer from the cache, if it holds the file and nothing else is in flight."""
        started = fast.timer()
        if self.pipeline or not (self.cycle is None or self.cycle.response_complete):
            return False
        if self.flow.write_paused:
            # The client takes no answers: requests it pipelined in one write would each be
            # answered into the buffer here, all of them in this one read (2,000 requests of
            # a 60 kB feed, 120 MB). uvicorn's own path queues them and waits for the buffer.
            return False
        if self.expect_100_continue or self.parser.should_upgrade():
            return False
        if self.parser.get_http_version() != "1.1":
            return False
        keep_alive = self.parser.should_keep_alive()
        composed = compose(
            fast,
            self.parser.get_method(),
            self.url,
            self.headers,
            self.server_state.default_headers,
            keep_alive,
            self._max_head,
        )
        if composed is None:
            return False
        self.transport.write(composed.data)
        self._answered = True
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        if fast.observe is not None:
            client = self.client[0] if self.client else None
            seconds = fast.timer() - started
            fast.observe(composed.method, composed.path, composed.status, composed.body_bytes,
                         seconds, client)  # fmt: skip
        return True

    def pause_writing(self) -> None:
        """The socket's buffer is full: the client has that long to take some of it."""
        super().pause_writing()
        if self._stall_deadline is None:
            self._stall_deadline = self.loop.call_later(self._stall_timeout, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_deadline is not None:
            self._stall_deadline.cancel()
            self._stall_deadline = None

    def _stalled(self) -> None:
        """Drop a client that read nothing for the whole stall time (what is buffered goes too)."""
        self._stall_deadline = None
        self.transport.abort()

    def _arm_head_deadline(self) -> None:
        self.head_deadline_at(self.loop.time() + self._head_timeout)

    def head_deadline_at(self, when: float) -> None:
        """The next request head must be whole by ``when`` (the loop's clock)."""
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = None
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_at(when, self._head_overdue)

    def _head_overdue(self) -> None:
        """Close the connection if its next request head has still not arrived whole."""
        self._head_deadline = None
        if self._in_head and not self.transport.is_closing():
            self._close()

    def timeout_keep_alive_handler(self) -> None:
        super().timeout_keep_alive_handler()
        self._close()

    def _close(self) -> None:
        """Close after what is buffered is sent, or drop it if the client stops taking it.

        A plain close waits for the buffer to empty, which a client that reads
        nothing would make last for ever.
        """
        self.transport.close()
        if self.transport.get_write_buffer_size() and self._stall_deadline is None:
            self._stall_deadline = self.loop.call_later(self._stall_timeout, self._stalled)


class _Server(uvicorn.Server):
    """uvicorn's server without signal handlers, telling when it has started."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


class WebServer:
    """An ASGI app on a bound socket, served by uvicorn until :meth:`stop`."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        on_started: Callable[[WebServer], None] | None = None,
        shutdown_timeout: int = 10,
        access_log: bool = False,
        limits: Limits | None = None,
        fast: FastPath | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: a socket already listening (see :mod:`newsbot.web.early`), else bound here."""
        self.socket = bind(host, port) if sock is None else sock
        self.host, self.port = self.socket.getsockname()[:2]
        self.started = threading.Event()
        self._on_started = on_started
        config = _Config(
            app,
            Limits() if limits is None else limits,
            fast,
            log_config=None,
            log_level="warning",
            access_log=access_log,
            server_header=False,
            timeout_graceful_shutdown=shutdown_timeout,
        )
        self._server = _Server(config, self._has_started)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve(self) -> None:
        """Serve on this thread until :meth:`stop` is called (from another thread)."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Serve on a thread of its own; returns once the server listens."""
        self._thread = threading.Thread(target=self.serve, name="newsbot-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(timeout)
                raise RuntimeError(f"the web server on {self.url} did not start")

    @property
    def running(self) -> bool:
        """Whether the server's own thread (from :meth:`start`) is still serving."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the server to finish its requests and stop; wait for its thread if it has one."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def _has_started(self) -> None:
        self.started.set()
        if self._on_started is not None:
            self._on_started(self)

    def __enter__(self) -> WebServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    on_started: Callable[[WebServer], None] | None = None,
) -> None:
    """Serve ``app`` on this thread until stopped; ``on_started`` gets the server to stop later.

    For a service that runs its scheduler on the main thread, use
    :class:`WebServer` and :meth:`WebServer.start` instead.
    """
    WebServer(app, host, port, on_started=on_started).serve()
