"""``python -m newsbot.probe``: the container's health check, on the standard library alone.

Docker runs the health check every few seconds for as long as the container
lives, so it must cost next to nothing: ``newsbot healthcheck`` loads the
whole command line and the settings (a quarter of a second of CPU), this
module only a socket: one ``GET /healthz`` over HTTP/1.0 and its status
line (``urllib`` alone would add a tenth of a second, through ``email`` and
``http.client``, to every check). It reads the address from the environment
(``NEWSBOT_SERVICE__HOST``/``PORT``, which the image sets); when a config
file is given (``NEWSBOT_CONFIG``) it hands over to ``newsbot healthcheck``,
which reads the file. Exit 0 when ``/healthz`` answers 200, else 1.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104  # listening everywhere: ask loopback


def healthz_url(host: str, port: int | str) -> str:
    """Where the service on ``host``:``port`` answers its liveness probe."""
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200; otherwise why not.

    Straight to the service's own port (a proxy from the environment is not for
    loopback); HTTP/1.0, so the server closes the connection after the answer.
    """
    parts = urlsplit(url)
    target = parts.path or "/"
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout) as conn:
            conn.sendall(f"GET {target} HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
            with conn.makefile("rb") as answer:
                status_line = answer.readline(256)
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    fields = status_line.split()
    if len(fields) >= 2 and fields[0].startswith(b"HTTP/") and fields[1] == b"200":
        return None
    if len(fields) >= 2 and fields[0].startswith(b"HTTP/"):
        return f"{url}: HTTP {fields[1].decode('ascii', 'replace')}"
    return f"{url}: not an HTTP answer"


def main(environ: Mapping[str, str] = os.environ) -> int:
    if environ.get("NEWSBOT_CONFIG"):
        os.execvp("newsbot", ["newsbot", "healthcheck"])  # noqa: S606  # a fixed command
    url = healthz_url(
        environ.get("NEWSBOT_SERVICE__HOST", "127.0.0.1"),
        environ.get("NEWSBOT_SERVICE__PORT", "8080"),
    )
    problem = check(url, timeout=4.0)
    if problem is not None:
        print(f"newsbot: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
