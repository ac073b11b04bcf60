"""What the service serves over HTTP, wired: the output folder, probes, metrics, status page.

The web package knows only the output folder's layout; everything else it
serves is handed to it from here: the health verdicts (the service's
:class:`~newsbot.service.health.Status`), the metrics registry, the status page
(composed from the store index, the deliveries and each target's last
connection), and the ActivityPub routes when the actor is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from newsbot.app import App, Clock
from newsbot.errors import OutputError
from newsbot.logs import access_lines
from newsbot.publish.publisher import Publisher
from newsbot.publish.targets import Target
from newsbot.service.health import Status
from newsbot.service.metrics import Metrics
from newsbot.service.status import Fediverse, StatusPage
from newsbot.state.ap_deliveries import DeliveryRows
from newsbot.state.inbox import InboxRows
from newsbot.web.access import AccessLog, HttpMetrics
from newsbot.web.asgi import web_app
from newsbot.web.early import EarlyProbes
from newsbot.web.fast import Declines, FastPath
from newsbot.web.files import OutputFiles
from newsbot.web.server import WebServer
from newsbot.web.status import StatusEndpoints


def status_page(
    app: App,
    status: Status,
    targets: Sequence[Target],
    publisher: Callable[[str], Publisher | None],
    next_pass: Callable[[str], datetime | None],
    clock: Clock,
) -> StatusPage:
    """The status page; every configured token is masked wherever a server echoes it."""
    secrets = []
    for target in targets:
        try:
            token = target.settings.access_token()
        except OSError:
            continue
        if token is not None:
            secrets.append(token.get_secret_value())

    def profile(name: str) -> dict[str, Any] | None:
        """What the target's last connection learnt of its server (None before one).

        ``counting`` is the detected software and the rule statuses are composed by
        (learned from a length error, if one taught it).
        """
        runner = publisher(name)
        if runner is None or runner.account_id is None:
            return None
        limits = runner.limits
        return {
            "account_id": runner.account_id,
            "max_characters": limits.max_characters,
            "characters_reserved_per_url": limits.characters_reserved_per_url,
            "max_media_attachments": limits.max_media_attachments,
            "api_version": limits.api_version,
            "counting": runner.server.describe(),
        }

    return StatusPage(
        app.index,
        app.deliveries(),
        status,
        targets,
        secrets=secrets,
        profile=profile,
        next_pass=next_pass,
        clock=clock,
        fediverse=Fediverse(InboxRows(app.engine), DeliveryRows(app.engine))
        if app.settings.activitypub.enabled
        else None,
    )


def start_web(
    app: App,
    status: Status,
    metrics: Metrics,
    page: StatusPage,
    *,
    routes: Sequence[BaseRoute] = (),
    middleware: Sequence[Middleware] = (),
    declines: Declines | None = None,
    early: EarlyProbes | None = None,
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> WebServer:
    """The web server, listening and serving on a thread of its own.

    Files are answered from one cache, by the server itself when it can;
    ``declines`` names the requests that must reach the app whatever the
    cache holds (an ActivityPub client asking for an article as JSON).
    ``early`` has answered the probes on the socket since start-up: the
    server takes its socket over.
    """
    service = app.settings.service
    endpoints = StatusEndpoints(page, service.status_page)
    files = OutputFiles(app.settings.feeds.output_dir)

    async def log_the_last_requests() -> None:
        """The loop stops before the end of its last turn, where they would be logged."""
        asgi.flush()

    asgi = AccessLog(
        web_app(
            app.settings.feeds.output_dir,
            status,
            metrics.registry,
            files=files,
            routes=[*endpoints.routes(), *routes],
            middleware=middleware,
            on_shutdown=[*on_shutdown, log_the_last_requests],
        ),
        HttpMetrics(metrics.registry),
        log=app.settings.log.access,
        lines=access_lines() if app.settings.log.access else None,
    )
    fast = FastPath(files.answer_cached, asgi.record, declines)
    try:
        sock = None if early is None else early.handover()
        server = WebServer(asgi, service.host, service.port, fast=fast, sock=sock)
    except OSError as exc:
        where = f"{service.host}:{service.port}"
        raise OutputError(f"cannot listen on {where}: {exc.strerror}") from None
    server.start()
    return server
