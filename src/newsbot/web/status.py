"""``/status`` (HTML) and ``/status.json``: the operator's page, read-only.

Who may see it is a setting (``service.status_page``): ``loopback`` (the
default) answers only requests from the machine itself (``curl`` on the host,
``docker exec``, an SSH tunnel), ``on`` answers everyone, ``off`` nobody. A
refused request gets the same 404 as a missing file, so the page's existence
is not advertised. Behind a reverse proxy on the same machine every request
comes from loopback: block ``/status`` at the proxy, or turn the page off.

What the page says, and how it looks, is the service's (:class:`StatusSource`);
this module only decides who sees it, off the event loop.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

Access = Literal["off", "loopback", "on"]
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


class StatusSource(Protocol):
    """Composes the status as plain data, and renders that data as a page."""

    def compose(self) -> dict[str, Any]: ...

    def render(self, status: dict[str, Any]) -> str: ...


class StatusEndpoints:
    """Serves the composed status to the clients the access setting lets in."""

    def __init__(self, page: StatusSource, access: Access = "loopback") -> None:
        self.page = page
        self.access = access

    def routes(self) -> list[BaseRoute]:
        if self.access == "off":
            return []
        return [
            Route("/status", self.html, methods=["GET"], name="status"),
            Route("/status.json", self.json, methods=["GET"], name="status_json"),
        ]

    def allowed(self, request: Request) -> bool:
        """Whether this client may see the page."""
        if self.access == "on":
            return True
        host = request.client.host if request.client else ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    async def json(self, request: Request) -> Response:
        if not self.allowed(request):
            return PlainTextResponse("Not Found", status_code=404)
        data = await run_in_threadpool(self.page.compose)
        return JSONResponse(data, headers=NO_STORE)

    async def html(self, request: Request) -> Response:
        if not self.allowed(request):
            return PlainTextResponse("Not Found", status_code=404)
        data = await run_in_threadpool(self.page.compose)
        return HTMLResponse(self.page.render(data), headers=NO_STORE)
