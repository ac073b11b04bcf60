"""A minimal static server for the output folder (the quick start's ``serve``)."""

from __future__ import annotations

import contextlib
import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from newsbot.feeds import MEDIA_TYPES
from newsbot.layout import FILES


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - overrides the base class attribute
        **SimpleHTTPRequestHandler.extensions_map,
        ".xml": "application/xml",
        ".json": "application/json",
    }

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        name = Path(path).name
        for fmt, file in FILES.items():
            if name == file:
                return f"{MEDIA_TYPES[fmt]}; charset=utf-8"
        return super().guess_type(path)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_folder(folder: Path, host: str, port: int) -> None:
    """Serve ``folder`` until interrupted."""
    handler = functools.partial(_Handler, directory=str(folder))
    with (
        ThreadingHTTPServer((host, port), handler) as server,
        contextlib.suppress(KeyboardInterrupt),
    ):
        server.serve_forever()
