"""An HTTP transport whose wait for an answer a shutdown cuts short.

A server that never answers held a stopping service for its whole shutdown
time (a pass waits for its request's answer, up to the target's timeout),
longer than a container manager waits before it kills (``docker stop``: 10 s).
Not waiting is safe: every post, edit and deletion is recorded before its
request is sent, and a request without a recorded answer is looked for on
the account by the next pass before anything is sent again, exactly as after
a crash. So once the service stops, a request in flight gets
`ANSWER_GRACE_SECONDS` more for its answer (a server that answers at all
usually does well within it, and an answer recorded saves that search);
then the pass ends with :class:`~newsbot.publish.report.Interrupted`. The
request itself goes on, on a thread of its own, until its answer or its
timeout, or until the process exits.
"""

from __future__ import annotations

import logging
import threading

import httpx

from newsbot.publish.report import Interrupted

log = logging.getLogger(__name__)

ANSWER_GRACE_SECONDS = 3.0
"""How long a request in flight when the service stops may still take to be answered."""
STOP_POLL_SECONDS = 0.1
"""How often a request waiting for its answer looks whether the service stops."""


class InterruptibleTransport(httpx.BaseTransport):
    """Sends each request (and reads its answer) on a thread, waiting for it or for ``stop``."""

    def __init__(
        self,
        stop: threading.Event,
        inner: httpx.BaseTransport | None = None,
        *,
        grace: float = ANSWER_GRACE_SECONDS,
    ) -> None:
        self._stop = stop
        self._inner = inner or httpx.HTTPTransport()
        self._grace = grace

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._stop.is_set():
            raise Interrupted()
        exchange = _Exchange(self._inner, request)
        exchange.start()
        while not exchange.done.wait(STOP_POLL_SECONDS):
            if self._stop.is_set():
                if exchange.done.wait(self._grace):
                    break
                log.info(
                    "stopped waiting for an answer: the service stops; the request stays "
                    "recorded and the next pass looks for its outcome before sending again",
                    extra={"method": request.method, "path": request.url.path},
                )
                raise Interrupted()
        return exchange.outcome()

    def close(self) -> None:
        self._inner.close()


class _Exchange(threading.Thread):
    """One request and its whole answer, read on this thread."""

    def __init__(self, transport: httpx.BaseTransport, request: httpx.Request) -> None:
        super().__init__(name="newsbot-request", daemon=True)
        self._transport = transport
        self._request = request
        self._response: httpx.Response | None = None
        self._error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            response = self._transport.handle_request(self._request)
            try:
                response.read()
            finally:
                response.close()
            self._response = response
        except BaseException as exc:  # handed to the waiting thread, which raises it
            self._error = exc
        finally:
            self.done.set()

    def outcome(self) -> httpx.Response:
        if self._error is not None:
            raise self._error
        assert self._response is not None
        return self._response
