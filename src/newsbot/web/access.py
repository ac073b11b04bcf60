"""The access log and the HTTP metrics: one ASGI middleware around the whole web app.

Every request gives one log line (``newsbot.access``, INFO: method, path,
status, bytes, milliseconds, client, route class) — JSON when the log is not
a terminal, like every other line — and one observation in
``newsbot_http_requests_total{route, status}`` and
``newsbot_http_request_duration_seconds{route}``. Routes are counted by
class (feed, page, media, probe, metrics, status, other), never by path, so
that a crawler cannot grow the metrics without bound. The query string is
not logged: it is the client's, and may carry anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""From a 304 answered from memory to a large feed on a busy machine."""

FEED_NAMES = ("rss.xml", "atom.xml", "feed.json")
PROBES = ("/healthz", "/readyz")


def route_class(path: str) -> str:
    """The kind of resource a path asks for: the ``route`` label of the HTTP metrics."""
    if path in PROBES:
        return "probe"
    if path == "/metrics":
        return "metrics"
    if path in ("/status", "/status.json"):
        return "status"
    if path.rsplit("/", 1)[-1] in FEED_NAMES:
        return "feed"
    if path.startswith("/media/"):
        return "media"
    if path.endswith(("/", ".html")):
        return "page"
    return "other"


class HttpMetrics:
    """The HTTP and process metrics, in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "newsbot_http_requests",
            "HTTP requests answered, by route class and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "newsbot_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route class.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


class AccessLog:
    """ASGI middleware: logs and counts each HTTP request once its answer is sent."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics,
        *,
        log: bool = True,
        logger: logging.Logger | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log
        self.logger = logger or logging.getLogger("newsbot.access")
        self.timer = timer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.timer()
        status = 500  # what the client gets if the app raises before answering
        sent = 0

        async def watch(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client")
            self.record(
                scope.get("method", ""),
                scope.get("path", ""),
                status,
                sent,
                self.timer() - started,
                client[0] if client else None,
            )

    def record(
        self, method: str, path: str, status: int, sent: int, seconds: float, client: str | None
    ) -> None:
        """Log and count one answered request (also those the server answers from its cache)."""
        route = route_class(path)
        self.metrics.observe(route, status, seconds)
        if self.log:
            self.logger.info(
                "%s %s %d",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "bytes": sent,
                    "ms": round(seconds * 1000, 2),
                    "client": client,
                    "route": route,
                },
            )
