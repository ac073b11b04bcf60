"""``python -m newsbot.probe``: the container's health check, against real loopback servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from newsbot.probe import check, healthz_url


@contextmanager
def answering(status: int) -> Iterator[str]:
    """A loopback HTTP server whose every GET answers ``status``; yields its /healthz URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok\n" if self.path == "/healthz" else b"no\n"
            self.send_response(status if self.path == "/healthz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield healthz_url("0.0.0.0", server.server_address[1])  # asks loopback
    finally:
        server.shutdown()
        server.server_close()


def test_200_is_healthy() -> None:
    with answering(200) as url:
        assert url.startswith("http://127.0.0.1:")
        assert check(url, timeout=5) is None


@pytest.mark.parametrize("status", [500, 503])
def test_another_status_says_which(status: int) -> None:
    with answering(status) as url:
        assert check(url, timeout=5) == f"{url}: HTTP {status}"


def test_nothing_listening_is_unhealthy() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = check(healthz_url("127.0.0.1", port), timeout=5)
    assert problem is not None and "refused" in problem.lower()


def test_a_server_that_does_not_speak_http() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        url = healthz_url("127.0.0.1", listener.getsockname()[1])
        assert check(url, timeout=5) == f"{url}: not an HTTP answer"
        thread.join(5)


def test_ipv6_hosts_are_bracketed() -> None:
    assert healthz_url("::1", 8080) == "http://[::1]:8080/healthz"
    assert healthz_url("::", 8080) == "http://127.0.0.1:8080/healthz"
