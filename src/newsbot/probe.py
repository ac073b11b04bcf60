"""``python -m newsbot.probe``: the container's health check, on the standard library alone.

Docker runs the health check every few seconds for as long as the container
lives, so it must cost next to nothing: ``newsbot healthcheck`` loads the
whole command line and the settings (a quarter of a second of CPU), this
module only ``urllib``. It reads the address from the environment
(``NEWSBOT_SERVICE__HOST``/``PORT``, which the image sets); when a config
file is given (``NEWSBOT_CONFIG``) it hands over to ``newsbot healthcheck``,
which reads the file. Exit 0 when ``/healthz`` answers 200, else 1.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104  # listening everywhere: ask loopback


def healthz_url(host: str, port: int | str) -> str:
    """Where the service on ``host``:``port`` answers its liveness probe."""
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200; otherwise why not."""
    # Straight to our own port: a proxy from the environment (HTTP_PROXY) is not for loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            return None if answer.status == 200 else f"{url}: HTTP {answer.status}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"


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
