"""``/metrics``: the service's registry in the Prometheus text format (or OpenMetrics, if asked).

The endpoint only renders; the values are set by the service through
:class:`~newsbot.service.metrics.Metrics`, whose registry is handed in here.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route


class MetricsEndpoint:
    """Renders one registry on each scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def routes(self) -> list[BaseRoute]:
        return [Route("/metrics", self.metrics, methods=["GET"], name="metrics")]

    async def metrics(self, request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(
            encode(self.registry),
            headers={"Content-Type": content_type, "Cache-Control": "no-store"},
        )
