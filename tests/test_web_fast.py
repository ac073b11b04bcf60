"""A connection's first protocol: cached files answered by itself, anything else handed over.

Real sockets on loopback against a real server. Each test says which
protocol holds the connection afterwards (the server's own list of open
connections), so a test of the hand-over cannot pass by never handing over.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from newsbot.build.output import Output
from newsbot.service.health import Status
from newsbot.service.metrics import Metrics
from newsbot.web.asgi import web_app
from newsbot.web.fast import FastPath
from newsbot.web.files import OutputFiles
from newsbot.web.server import Limits, WebServer

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>\n"
BIG = b"<x>" + b"y" * 60_000 + b"</x>"
"""Under the fast path's largest body; a few fill the buffers of a client that reads nothing."""
HEAD = b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass
class Served:
    server: WebServer
    answered: list[tuple[str, str, int]] = field(default_factory=list)
    """What the fast path answered (method, path, status): by either protocol."""

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.server.host, self.server.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _LEFT.pop(sock.fileno(), None)  # a number an earlier, closed socket had
        return sock

    def protocols(self) -> list[str]:
        """The protocol of each open connection, by class name."""
        state = self.server._server.server_state
        return sorted(type(connection).__name__ for connection in state.connections)


@contextlib.contextmanager
def serving(root: Path, limits: Limits | None = None) -> Iterator[Served]:
    output = Output(root)
    output.write("rss.xml", FEED)
    output.write("big.xml", BIG)
    files = OutputFiles(root)
    served = Served(None)  # type: ignore[arg-type]
    fast = FastPath(files.answer_cached, lambda m, p, s, *_: served.answered.append((m, p, s)))
    app = web_app(root, Status(), Metrics().registry, files=files)
    with WebServer(app, "127.0.0.1", 0, limits=limits, fast=fast) as server:
        served.server = server
        yield served


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path / "public") as running:
        yield running


_LEFT: dict[int, bytes] = {}
"""Bytes read past one response, by socket: the start of the next."""


def _response(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """One whole response: status, head, body (by its Content-Length; none for 304)."""
    received = _LEFT.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length" and status != 304:
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, received
        body += chunk
    if len(body) > length:
        _LEFT[sock.fileno()] = body[length:]
    return status, head, body[:length]


def _cache(served: Served, path: bytes = b"/rss.xml") -> None:
    """Ask once, on a connection of its own: the first request of a file fills the cache."""
    with served.connect() as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(sock)[0] == 200


def _wait_for(check: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("not in time")


def test_kept_alive_requests_stay_on_the_fast_protocol(served: Served) -> None:
    _cache(served)
    with served.connect() as sock:
        sock.sendall(HEAD)
        status, head, body = _response(sock)
        assert (status, body) == (200, FEED)
        etag = next(line for line in head.split(b"\r\n") if line.startswith(b"etag: "))[6:]
        for _ in range(3):
            sock.sendall(HEAD[:-2] + b"If-None-Match: " + etag + b"\r\n\r\n")
            assert _response(sock)[0] == 304
        assert served.protocols() == ["_FastConnection"]
    assert [status for *_, status in served.answered] == [200, 304, 304, 304]


def test_a_miss_then_a_probe_then_a_file_on_one_connection(served: Served) -> None:
    """Handed over at the miss, the connection still gets every answer, in order."""
    _cache(served)
    with served.connect() as sock:
        sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(sock)[0] == 404
        assert served.protocols() == ["_BoundedHttp"]
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(sock)[0] == 200
        sock.sendall(HEAD)
        assert _response(sock)[::2] == (200, FEED)
    # The full protocol answers cached files itself too.
    assert served.answered == [("GET", "/rss.xml", 200)]


def test_a_file_not_yet_cached_is_handed_over_and_answered(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(HEAD)  # the first request of a file reads it: the app's work
        assert _response(sock)[::2] == (200, FEED)
        assert served.protocols() == ["_BoundedHttp"]
        assert served.answered == []
    with served.connect() as sock:
        sock.sendall(HEAD)
        assert _response(sock)[::2] == (200, FEED)
        assert served.protocols() == ["_FastConnection"]
    assert served.answered == [("GET", "/rss.xml", 200)]


@pytest.mark.parametrize(
    ("send", "answers", "then"),
    [
        pytest.param([HEAD + HEAD], 2, ["_BoundedHttp"], id="two requests in one read"),
        pytest.param([HEAD[:10], HEAD[10:]], 1, ["_BoundedHttp"], id="a head in two reads"),
        pytest.param([HEAD[:-2] + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"], 1,
                     ["_BoundedHttp"], id="an upgrade (no WebSocket here: answered as HTTP)"),
        pytest.param([b"GET /rss.xml HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"], 1, [],
                     id="HTTP/1.0 (uvicorn closes after it)"),
        pytest.param([b"GET /rss.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"], 1,
                     ["_BoundedHttp"], id="a body"),
        pytest.param([b"GET /rss.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", b"abc"],
                     1, ["_BoundedHttp"], id="a body in the next read"),
    ],
)  # fmt: skip
def test_what_the_fast_protocol_does_not_take_is_answered_after_hand_over(
    served: Served, send: list[bytes], answers: int, then: list[str]
) -> None:
    _cache(served)
    with served.connect() as sock:
        for part in send:
            sock.sendall(part)
            time.sleep(0.05)  # each part its own read
        for _ in range(answers):
            assert _response(sock)[::2] == (200, FEED)
        _wait_for(lambda: served.protocols() == then)


def test_connection_close_is_honoured(served: Served) -> None:
    _cache(served)
    with served.connect() as sock:
        sock.sendall(HEAD[:-2] + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert b"\r\nconnection: close\r\n" in answer
        assert answer.endswith(FEED)
    assert served.answered == [("GET", "/rss.xml", 200)]


def test_a_bad_head_gets_the_full_protocols_400(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(b"GET /rss.xml HTTP/1.1\r\nHost x\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_an_idle_fast_connection_is_closed_after_the_keep_alive_time(tmp_path: Path) -> None:
    limits = Limits(head_timeout_seconds=0.5, keep_alive_seconds=5)
    with serving(tmp_path / "public", limits) as served:
        _cache(served)
        with served.connect() as sock:
            for _ in range(2):
                time.sleep(0.3)  # within the deadline, which starts again after each answer
                sock.sendall(HEAD)
                assert _response(sock)[0] == 200
            assert served.protocols() == ["_FastConnection"]
            started = time.monotonic()
            sock.settimeout(10)
            assert sock.recv(1) == b""
            assert 0.3 < time.monotonic() - started < 5


def test_a_slow_client_handed_over_gets_no_more_time(tmp_path: Path) -> None:
    """The head deadline counts from the connection, not from the hand-over."""
    limits = Limits(head_timeout_seconds=1.0, keep_alive_seconds=5)
    with serving(tmp_path / "public", limits) as served, served.connect() as sock:
        time.sleep(0.7)
        started = time.monotonic()
        sock.sendall(b"GET /rss.xml HTTP/1.1\r\n")  # a head in pieces: handed over
        _wait_for(lambda: served.protocols() == ["_BoundedHttp"])
        sock.settimeout(10)
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 0.9


def test_a_client_that_asks_and_never_reads_is_dropped(tmp_path: Path) -> None:
    """It is not read once its answers fill the buffers, and is let go after the stall time."""
    limits = Limits(head_timeout_seconds=30, keep_alive_seconds=30, write_stall_seconds=2)
    with serving(tmp_path / "public", limits) as served:
        _cache(served, b"/big.xml")
        sock = served.connect()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = 0
        with sock, contextlib.suppress(OSError):
            sock.settimeout(3)
            while sent < 5000:
                sock.sendall(b"GET /big.xml HTTP/1.1\r\nHost: x\r\n\r\n")
                sent += 1
                time.sleep(0.001)
        # The server stopped reading: our sends filled its buffer and blocked, or it dropped us,
        # having answered no more than the buffers hold (~2.5 MB on loopback: ~40 answers).
        assert sent < 5000
        assert len(served.answered) < 200
        _wait_for(lambda: served.protocols() == [], 10)


def test_requests_pipelined_in_one_write_wait_for_the_client_to_read(tmp_path: Path) -> None:
    """2,000 requests for a 60 kB file in one write, from a client that reads nothing yet:
    past what the sockets hold, the server keeps a few answers, not 120 MB, and the client
    gets every one as it reads."""
    limits = Limits(head_timeout_seconds=30, keep_alive_seconds=30, write_stall_seconds=30)
    with serving(tmp_path / "public", limits) as served:
        _cache(served, b"/big.xml")
        with served.connect() as sock:
            sock.sendall(b"GET /big.xml HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
            _wait_for(lambda: served.protocols() == ["_BoundedHttp"])
            time.sleep(1)
            state = served.server._server.server_state
            buffered = [c.transport.get_write_buffer_size() for c in state.connections]
            assert max(buffered) < 1_000_000
            sock.settimeout(30)
            bodies = [_response(sock) for _ in range(2000)]
        assert {(status, body) for status, _, body in bodies} == {(200, BIG)}


def test_stop_closes_idle_fast_connections(tmp_path: Path) -> None:
    with serving(tmp_path / "public") as served:
        _cache(served)
        socks = [served.connect() for _ in range(3)]
        for sock in socks:
            sock.sendall(HEAD)
            assert _response(sock)[0] == 200
        assert served.protocols() == ["_FastConnection"] * 3
        started = time.monotonic()
        served.server.stop(10)
        assert time.monotonic() - started < 2
        for sock in socks:
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
            sock.close()
