"""``/status`` (HTML) and ``/status.json``: the operator's page, read-only.

Who may see it is a setting (``service.status_page``): ``loopback`` (the
default) answers only requests from the machine itself (``curl`` on the host,
``docker exec``, an SSH tunnel), ``on`` answers everyone, ``off`` nobody. A
refused request gets the same 404 as a missing file, so the page's existence
is not advertised. Behind a reverse proxy on the same machine every request
comes from loopback: block ``/status`` at the proxy, or turn the page off.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from newsbot.service.status import StatusPage

Access = Literal["off", "loopback", "on"]
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


class StatusEndpoints:
    """Serves the composed status to the clients the access setting lets in."""

    def __init__(self, page: StatusPage, access: Access = "loopback") -> None:
        self.page = page
        self.access = access
        self._env = Environment(
            loader=PackageLoader("newsbot.render", "templates"),
            autoescape=select_autoescape(["html"]),
        )

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
        body = self._env.get_template("status.html").render(status=data)
        return HTMLResponse(body, headers=NO_STORE)
