"""``/healthz`` and ``/readyz``: is the process alive, and is it doing its job.

Liveness answers ``ok`` as long as the event loop runs, and nothing else, so
an orchestrator restarts only a process that is stuck. Readiness reports the
service's :class:`~newsbot.health.Status`: 503 until a first build succeeded,
after a failed build, or while a target is stopped by a fatal error; the JSON
body says why, with the last build and each target's last pass.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from newsbot.health import Status

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
        ]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=NO_STORE)

    async def readyz(self, request: Request) -> Response:
        snapshot = self.status.snapshot()
        code = 200 if snapshot.ready else 503
        return JSONResponse(snapshot.to_json(), status_code=code, headers=NO_STORE)
