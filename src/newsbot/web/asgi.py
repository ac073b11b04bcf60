"""The HTTP app: the output folder, the health probes and the metrics, as one Starlette app.

Built by :func:`web_app` from a declared list of routes, each group from a
small module that owns one kind of traffic: probes (:mod:`newsbot.web.probes`),
metrics (:mod:`newsbot.web.metrics`), files (:mod:`newsbot.web.files`). Later
groups (WebFinger, the ActivityPub actor, inbox and outbox) come in as
``routes`` ahead of the files, whose catch-all route always goes last.
Nothing is global: the folder, the health verdicts and the registry are
handed in by the service that owns them (this package imports nothing of
newsbot but the output folder's layout), and :mod:`newsbot.web.server` runs
the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from newsbot.web.files import OutputFiles
from newsbot.web.media import CachePolicy
from newsbot.web.metrics import MetricsEndpoint
from newsbot.web.probes import Health, HealthEndpoints


def web_app(
    output_dir: Path,
    health: Health,
    registry: CollectorRegistry,
    *,
    cache_policy: CachePolicy | None = None,
    files: OutputFiles | None = None,
    routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Starlette:
    """The app serving ``output_dir``, ``/healthz``, ``/readyz`` and ``/metrics``.

    ``health`` and ``registry`` are read on each request, so the service
    updates them and never the app. ``files`` is given when the server
    answers from the same cache (:class:`~newsbot.web.server.FastPath`).
    ``routes`` are served before the files, which take every other path.
    ``on_shutdown`` run on the server's loop as it stops, after the last
    request: what the routes opened on that loop is closed there.
    """

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        for close in on_shutdown:
            await close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            *HealthEndpoints(health).routes(),
            *MetricsEndpoint(registry).routes(),
            *routes,
            *(OutputFiles(output_dir, cache_policy) if files is None else files).routes(),
        ],
        middleware=list(middleware),
    )
