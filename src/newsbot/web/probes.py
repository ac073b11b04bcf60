"""``/healthz`` and ``/readyz``: is the process alive, and is it doing its job.

Liveness answers ``ok`` as long as the event loop runs, and nothing else, so
an orchestrator restarts only a process that is stuck. Readiness reports the
service's :class:`~newsbot.service.health.Status`: 503 until a first build succeeded
or after a failed build; it is about serving the feeds, so a posting problem
never takes them offline. The JSON body says why, with the last build, each
target's last pass and publishing health. ``/healthz/publishing`` is the
endpoint a monitor alerts on: 503 while a target is stopped for good (a
refused token) or holds uncertain deliveries.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from newsbot.service.health import Status

NO_STORE = {"Cache-Control": "no-store"}
"""A probe must see the state of now, never a cached answer."""


class HealthEndpoints:
    """The probes, reading the status the service keeps up to date."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz, methods=["GET"], name="healthz"),
            Route("/readyz", self.readyz, methods=["GET"], name="readyz"),
            Route("/healthz/publishing", self.publishing, methods=["GET"], name="publishing"),
        ]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=NO_STORE)

    async def readyz(self, request: Request) -> Response:
        snapshot = self.status.snapshot()
        code = 200 if snapshot.ready else 503
        return JSONResponse(snapshot.to_json(), status_code=code, headers=NO_STORE)

    async def publishing(self, request: Request) -> Response:
        health = self.status.snapshot().publishing()
        return JSONResponse(health, status_code=200 if health["ok"] else 503, headers=NO_STORE)
