"""The access log and the HTTP metrics: one ASGI middleware around the whole web app.

Every request gives one log line (``newsbot.access``, INFO: method, path,
status, bytes, milliseconds, client, route class; a probe answered well only
at DEBUG) — JSON when the log is not
a terminal, like every other line — and one observation in
``newsbot_http_requests_total{route, status}`` and
``newsbot_http_request_duration_seconds{route}``. Routes are counted by
class (feed, page, media, probe, metrics, status, other), never by path, so
that a crawler cannot grow the metrics without bound. The query string is
not logged: it is the client's, and may carry anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Metric, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from newsbot.logs import AccessLines

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""From a 304 answered from memory to a large feed on a busy machine."""
MAX_PENDING = 256
"""Requests kept before they are logged and counted, even within one turn of the loop."""
_LE = (*(str(float(bound)) for bound in LATENCY_BUCKETS), "+Inf")
"""Each bucket's ``le`` label, as prometheus's own histograms write it."""

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


class HttpMetrics(Collector):
    """The HTTP and process metrics, in the service's registry.

    Requests are counted in plain dictionaries and turned into metric
    families only when scraped: a 304 from memory costs a few microseconds
    in all, and a labelled prometheus counter and histogram per request
    (their label lookup and locks) took as long as the rest of the answer.
    One thread writes (the server's loop, where every request is observed);
    a scrape from another thread copies what it reads, each copy whole.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        self._latency: dict[str, list[float]] = {}
        """Per route: the count in each bucket (the last one +Inf), then the sum of seconds."""
        registry.register(self)
        ProcessCollector(registry=registry)

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        counts = self._latency.get(route)
        if counts is None:
            counts = self._latency[route] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "newsbot_http_requests",
            "HTTP requests answered, by route class and status code.",
            labels=["route", "status"],
        )
        for (route, status), count in sorted(self._requests.copy().items()):
            requests.add_metric([route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "newsbot_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route class.",
            labels=["route"],
        )
        for route, counts in sorted(self._latency.copy().items()):
            counts = counts.copy()
            buckets: list[tuple[str, float]] = []
            total = 0.0
            for bound, in_bucket in zip(_LE, counts[:-1], strict=True):
                total += in_bucket
                buckets.append((bound, total))
            latency.add_metric([route], buckets, counts[-1])
        yield latency


class AccessLog:
    """ASGI middleware: logs and counts each HTTP request once its answer is sent."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics,
        *,
        log: bool = True,
        lines: AccessLines | None = None,
        logger: logging.Logger | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log
        self.lines = lines
        """Where the lines go when the log is set up as :func:`newsbot.logs.configure` does."""
        self.logger = logger or logging.getLogger("newsbot.access")
        self.timer = timer
        self._pending: list[tuple[str, str, int, int, float, str | None, int]] = []
        """Requests answered in this turn of the loop, not yet logged and counted."""

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
        """Log and count one answered request (also those the server answers from its cache).

        Kept as it is, and logged and counted with the others answered in
        the same turn of the server's loop, once that turn ends: run in a
        batch, that work costs a fraction of what it costs run between two
        answers, each time with cold caches (``bench/serve.py``).
        """
        self._pending.append((method, path, status, sent, seconds, client, time.time_ns()))
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: now
                self.flush()
        elif len(self._pending) >= MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Log and count every request kept by :meth:`record`."""
        pending, self._pending = self._pending, []
        lines = self.lines
        for method, path, status, sent, seconds, client, created_ns in pending:
            route = route_class(path)
            self.metrics.observe(route, status, seconds)
            if not self.log:
                continue
            if route == "probe" and status < 400:
                self._probe_answered(method, path, status)
                continue
            fields = {
                "method": method,
                "path": path,
                "status": status,
                "bytes": sent,
                "ms": round(seconds * 1000, 2),
                "client": client,
                "route": route,
            }
            if lines is not None:
                lines.add(created_ns, f"{method} {path} {status}", fields)
            else:
                self.logger.info("%s %s %d", method, path, status, extra=fields)
        if lines is not None:
            lines.flush()

    def _probe_answered(self, method: str, path: str, status: int) -> None:
        """A probe answered well is logged at DEBUG only, so that the service at rest is quiet.

        The image's health check asks every second and an orchestrator's probes
        as often: 86,400 lines a day saying nothing. A failing probe (503) is
        logged like any request; every probe is counted in the metrics.
        """
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s %s %d", method, path, status, extra={"route": "probe"})
