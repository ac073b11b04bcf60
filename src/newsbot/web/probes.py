"""``/healthz`` and ``/readyz``: is the process alive, and is it doing its job.

Liveness answers ``ok`` as long as the event loop runs, and nothing else, so
an orchestrator restarts only a process that is stuck. Readiness and
publishing health are verdicts the service hands in (:class:`Health`): the
web layer only turns each into 200 or 503 and its JSON body, so what
"ready" means stays with the service. ``/healthz/publishing`` is the
endpoint a monitor alerts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

NO_STORE = {"Cache-Control": "no-store"}
"""A probe must see the state of now, never a cached answer."""

Verdict = tuple[bool, Mapping[str, Any]]
"""Whether all is well (200, else 503), and the JSON body that says why."""


class Health(Protocol):
    """What the probes ask of the service, on each request."""

    def readiness(self) -> Verdict:
        """Whether the feeds are being served as they should (``/readyz``)."""
        ...

    def publishing(self) -> Verdict:
        """Whether every target is posting (``/healthz/publishing``)."""
        ...


class HealthEndpoints:
    """The probes, reading the verdicts the service keeps up to date."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz, methods=["GET"], name="healthz"),
            Route("/readyz", self.readyz, methods=["GET"], name="readyz"),
            Route("/healthz/publishing", self.publishing, methods=["GET"], name="publishing"),
        ]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n", headers=NO_STORE)

    async def readyz(self, request: Request) -> Response:
        return _verdict(self.health.readiness())

    async def publishing(self, request: Request) -> Response:
        return _verdict(self.health.publishing())


def _verdict(verdict: Verdict) -> Response:
    ok, body = verdict
    return JSONResponse(dict(body), status_code=200 if ok else 503, headers=NO_STORE)
