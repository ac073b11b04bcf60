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
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 10.0
"""Seconds :meth:`WebServer.start` waits for the server to listen."""


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


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one), IPv4 or IPv6.

    The protocol is named (``IPPROTO_TCP``, not 0) because asyncio sets
    ``TCP_NODELAY`` on accepted connections only when it sees it; without it,
    Nagle's algorithm and delayed ACKs add about 40 ms to every response on a
    kept-alive connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


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
    ) -> None:
        self.socket = bind(host, port)
        self.host, self.port = self.socket.getsockname()[:2]
        self.started = threading.Event()
        self._on_started = on_started
        config = uvicorn.Config(
            app,
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
