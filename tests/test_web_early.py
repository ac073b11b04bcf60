"""The probes answered on the bound port before the service has loaded, then the hand-over.

Real loopback sockets throughout: the early responder on a bound port, then
the real web server on the same socket, with a connection made before the
hand-over answered after it. The service test
(``test_service.py::test_probes_answer_while_the_first_build_runs``) covers
the probes of the running command during its first build.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsbot.service.metrics import Metrics
from newsbot.web.asgi import web_app
from newsbot.web.early import EarlyProbes, answer, bind
from newsbot.web.server import WebServer


@contextmanager
def early_probes() -> Iterator[tuple[EarlyProbes, str]]:
    probes = EarlyProbes(bind("127.0.0.1", 0))
    probes.start()
    port = probes.socket.getsockname()[1]
    try:
        yield probes, f"http://127.0.0.1:{port}"
    finally:
        probes.handover().close()


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_alive_at_once_and_not_ready_while_starting() -> None:
    with early_probes() as (_, base), httpx.Client(timeout=5, trust_env=False) as client:
        alive = client.get(base + "/healthz")
        assert (alive.status_code, alive.text) == (200, "ok\n")
        assert alive.headers["cache-control"] == "no-store"
        unready = client.get(base + "/readyz")
        assert unready.status_code == 503
        assert unready.json() == {"ready": False, "reasons": ["starting"]}
        feed = client.get(base + "/rss.xml")
        assert (feed.status_code, feed.headers["retry-after"]) == (503, "1")
        assert client.post(base + "/healthz").status_code == 405


def test_a_head_gets_no_body_and_a_silent_client_is_dropped_for_the_next() -> None:
    with early_probes() as (probes, _):
        port = probes.socket.getsockname()[1]
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)  # sends nothing
        try:
            head = raw(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            silent.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"content-length: 3\r\n" in head


def test_answer_reads_only_the_request_line() -> None:
    assert answer(b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503 ")
    assert answer(b"").startswith(b"HTTP/1.1 405 ")
    assert answer(b"GET /healthz/publishing HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 503 ")


class Verdicts:
    """Readiness as the service reports it: ready once told so."""

    def __init__(self) -> None:
        self.ready = False

    def readiness(self) -> tuple[bool, Mapping[str, Any]]:
        return self.ready, {"ready": self.ready, "reasons": [] if self.ready else ["no build yet"]}

    def publishing(self) -> tuple[bool, Mapping[str, Any]]:
        return True, {}


def test_the_web_server_takes_the_socket_over_with_a_waiting_connection(tmp_path: Path) -> None:
    """A connection in the listen backlog at the hand-over is the real server's to answer.

    (One the early thread has already accepted is answered by it: see the
    HEAD test. The connection here is made once the early thread has stopped,
    so which side answers it does not depend on thread timing.)
    """
    verdicts = Verdicts()
    with early_probes() as (probes, base):
        port = probes.socket.getsockname()[1]
        sock = probes.handover()
        waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
        app = web_app(tmp_path, verdicts, Metrics().registry)
        with WebServer(app, "127.0.0.1", 0, sock=sock) as server:
            assert server.port == port
            waiting.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            chunks = []
            while chunk := waiting.recv(4096):
                chunks.append(chunk)
            waiting.close()
            head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503 ")
            assert json.loads(body)["reasons"] == ["no build yet"]  # the app's answer now
            verdicts.ready = True
            with httpx.Client(timeout=5, trust_env=False) as client:
                assert client.get(base + "/readyz").status_code == 200


def test_the_early_module_loads_no_heavy_library() -> None:
    """What the port needs before it listens: the standard library only."""
    heavy = ("sqlalchemy", "alembic", "starlette", "uvicorn", "lxml", "feedgen", "httpx")
    code = (
        "import sys, newsbot.web.early; "
        # (a None entry is a module barred from loading, as newsbot does with httpx's CLI)
        f"print([m for m, v in sys.modules.items() if v and m.split('.')[0] in {heavy!r}])"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def test_a_port_in_use_is_an_error_at_bind() -> None:
    with early_probes() as (probes, _), pytest.raises(OSError):
        bind("127.0.0.1", probes.socket.getsockname()[1])


def test_newsbot_run_on_a_port_in_use_exits_3_before_loading_the_service(tmp_path: Path) -> None:
    newsbot = Path(sys.executable).parent / "newsbot"
    with early_probes() as (probes, _):
        port = probes.socket.getsockname()[1]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "NEWSBOT_STORE__CONTENT_DIR": str(tmp_path / "content"),
            "NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp_path / "public"),
            "NEWSBOT_STATE__DATA_DIR": str(tmp_path / "data"),
            "NEWSBOT_SERVICE__HOST": "127.0.0.1",
            "NEWSBOT_SERVICE__PORT": str(port),
        }
        if "PYTHONPATH" in os.environ:  # the sources under test, when not the installed ones
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        done = subprocess.run(
            [str(newsbot), "run"], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "set service.port to a free port" in done.stderr  # what to do about it
    assert not (tmp_path / "data").exists()  # nothing opened before the port was bound
