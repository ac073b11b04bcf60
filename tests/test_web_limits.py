"""The web server against hostile clients: real app, real uvicorn, raw sockets on loopback.

Paths that try to leave the output folder (encoded, double encoded, overlong
UTF-8, NUL, backslash, symlinks pointing out), request heads over the size
limit, and clients that connect and then send nothing or trickle bytes: the
folder's secrets stay in, and other clients are served meanwhile.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsbot.build.output import Output
from newsbot.service.health import Status
from newsbot.service.metrics import Metrics
from newsbot.web.asgi import web_app
from newsbot.web.fast import FastPath
from newsbot.web.files import OutputFiles
from newsbot.web.server import Limits, WebServer

SECRET = b"outside the output folder: the state database's neighbour\n"
FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>\n"


@dataclass
class Served:
    """A running server on loopback and the folder it serves."""

    root: Path
    server: WebServer

    def connect(self) -> socket.socket:
        return socket.create_connection((self.server.host, self.server.port), timeout=10)

    def raw(self, head: bytes) -> tuple[int, bytes]:
        """Send ``head`` exactly as given; the status code and the whole answer."""
        with self.connect() as sock:
            with contextlib.suppress(ConnectionError):  # the server may close while we send
                sock.sendall(head)
            answer = _read_all(sock)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        return status, answer

    def get(self, target: bytes) -> tuple[int, bytes]:
        return self.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes; what came before a reset, if it resets."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _site(root: Path) -> None:
    output = Output(root)
    output.write("rss.xml", FEED)
    output.write("articles/one/index.html", b"<!doctype html><title>One</title>\n")
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root.parent / "secret.txt").write_bytes(SECRET)
    (root / "leak.txt").symlink_to(root.parent / "secret.txt")
    (root / "articles" / "leak").symlink_to("../../outside")
    (root / "alias.xml").symlink_to("rss.xml")


@contextlib.contextmanager
def serving(root: Path, limits: Limits | None = None) -> Iterator[Served]:
    _site(root)
    files = OutputFiles(root)  # as the service wires it: the server answers cached files itself
    app = web_app(root, Status(), Metrics().registry, files=files)
    fast = FastPath(files.answer_cached)
    with WebServer(app, "127.0.0.1", 0, limits=limits, fast=fast) as server:
        yield Served(root, server)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("limits") / "public") as running:
        yield running


# -- nothing outside the folder ----------------------------------------------------------------

TRAVERSALS = [
    b"/../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2e/secret.txt",
    b"/.%2e/secret.txt",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/articles/%2e%2e/%2e%2e/secret.txt",
    b"/articles/..%2f..%2fsecret.txt",
    b"/%252e%252e/secret.txt",  # double encoding: decoded once, it is a name, not '..'
    b"/%252e%252e%252fsecret.txt",
    b"/..%5csecret.txt",
    b"/%5c..%5csecret.txt",
    b"/..\\secret.txt",
    b"/articles\\..\\..\\secret.txt",
    b"/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for '.'
    b"/%c0%ae%c0%ae%c0%afsecret.txt",  # ... and for '/'
    b"/%e0%80%ae%e0%80%ae/secret.txt",
    b"/..%c0%afsecret.txt",
    b"/..%c1%9csecret.txt",  # overlong backslash
    b"/%uff0e%uff0e/secret.txt",
    b"/\xef\xbc\x8e\xef\xbc\x8e/secret.txt",  # fullwidth full stops, raw
    b"/%ef%bc%8e%ef%bc%8e/secret.txt",
    b"/..%00/secret.txt",
    b"/%00/../secret.txt",
    b"/rss.xml%00/../../secret.txt",
    b"//secret.txt",
    b"/%2fetc/passwd",
    b"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/leak.txt",  # a symlink inside the folder pointing out
    b"/articles/leak/secret.txt",  # a folder symlink pointing out
    b"/articles/leak/",
    b"http://x/../secret.txt",  # absolute form
    b"*",
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=lambda t: t.decode("latin-1"))
def test_no_request_path_reaches_a_file_outside_the_folder(served: Served, target: bytes) -> None:
    status, answer = served.get(target)
    assert status in (400, 404), answer[:200]
    assert SECRET not in answer
    assert b"root:" not in answer


@pytest.mark.parametrize("target", [b"/a\x00b", b"/\x00../secret.txt", b"/rss.xml\x00"])
def test_a_raw_nul_in_the_request_line_is_refused(served: Served, target: bytes) -> None:
    status, answer = served.get(target)
    assert status == 400
    assert SECRET not in answer


def test_files_and_links_inside_the_folder_are_still_served(served: Served) -> None:
    assert served.get(b"/rss.xml")[0] == 200
    assert served.get(b"/alias.xml")[1].endswith(FEED)
    assert served.get(b"/articles/one/")[0] == 200
    assert served.get(b"/articles/%6fne/")[0] == 200  # an ordinary escape still works


# -- bounded request heads ---------------------------------------------------------------------


TOO_LARGE = (0, 400, 414, 431)
"""h11 answers 400 to a head still incomplete past the limit; a whole one gets 414 or 431.
0: the server answered and closed while we were still sending, so our end saw a reset."""


@pytest.mark.parametrize("size", [17_000, 100_000, 1_000_000])
def test_a_request_line_over_the_limit_is_refused(served: Served, size: int) -> None:
    status, answer = served.get(b"/" + b"a" * size)
    assert status in TOO_LARGE, answer[:100]
    assert served.get(b"/rss.xml")[0] == 200


@pytest.mark.parametrize("size", [17_000, 100_000, 1_000_000])
def test_headers_over_the_limit_are_refused(served: Served, size: int) -> None:
    big = b"X-Big: " + b"b" * size + b"\r\n"
    status, answer = served.raw(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    assert status in TOO_LARGE, answer[:100]
    assert FEED not in answer
    many = b"".join(b"X-%d: 1\r\n" % n for n in range(size // 9))  # as many small headers
    status, answer = served.raw(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status in TOO_LARGE, answer[:100]
    assert FEED not in answer


def test_a_head_under_the_limit_is_served(served: Served) -> None:
    header = b"X-Fine: " + b"f" * 12_000 + b"\r\n"
    status, answer = served.raw(
        b"GET /rss.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n"
    )
    assert status == 200
    assert answer.endswith(FEED)


def test_an_endless_head_is_cut_off(served: Served) -> None:
    """A client streaming header bytes for ever is answered 400 and cut off, long before 64 MB.

    (More than the kernel's socket buffers on loopback can hold, so the client
    notices the close while it is still sending.)
    """
    endless = 64 * 1024 * 1024
    with served.connect() as sock:
        sock.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        with contextlib.suppress(ConnectionError):  # the server closes while we still send
            while sent < endless:
                sock.sendall(b"z" * 65536)
                sent += 65536
        answer = _read_all(sock)
    assert sent < endless
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")


# -- slow and silent clients -------------------------------------------------------------------

QUICK = Limits(head_timeout_seconds=0.5, keep_alive_seconds=5)


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path / "public", QUICK) as running:
        yield running


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (without us sending more)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_a_client_that_sends_nothing_is_disconnected(quick: Served) -> None:
    with quick.connect() as sock:
        assert _closed_by_server(sock, within=10)


def test_a_client_trickling_its_head_is_disconnected(quick: Served) -> None:
    """uvicorn's keep-alive timer restarts on every byte; the head deadline does not."""
    closed = threading.Event()
    with quick.connect() as sock:
        sock.sendall(b"GET /rss.xml HTTP/1.1\r\n")

        def trickle() -> None:
            for _ in range(100):  # 10 s of one byte every 0.1 s, far past the 0.5 s deadline
                if closed.is_set():
                    return
                try:
                    sock.sendall(b"X")
                except OSError:
                    return
                time.sleep(0.1)

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            assert _closed_by_server(sock, within=8)
        finally:
            closed.set()
            sender.join()


def test_each_request_on_a_kept_alive_connection_gets_its_own_deadline(quick: Served) -> None:
    with quick.connect() as sock:
        for _ in range(3):
            sock.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(FEED):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # within the deadline, which starts again after each response
        assert _closed_by_server(sock, within=10)  # and then idle: closed


def test_slow_clients_leave_other_clients_served(quick: Served) -> None:
    slow: list[socket.socket] = []
    try:
        for n in range(200):
            sock = quick.connect()
            sock.sendall(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\nX-Slow: %d" % n)
            slow.append(sock)
        answers = [quick.get(b"/rss.xml") for _ in range(20)]
        assert [status for status, _ in answers] == [200] * 20
        assert all(answer.endswith(FEED) for _, answer in answers)
        # Every slow client is let go once its deadline passes.
        assert all(_closed_by_server(sock, within=10) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


# -- clients that read slowly, or not at all ---------------------------------------------------

BIG = bytes(range(256)) * 4096  # 1 MiB: read whole by the server, sent chunk by chunk
HUGE = 16 * 1024 * 1024
"""More than loopback's socket buffers hold (the sender's grow to 4 MiB), so a reader that
takes nothing leaves the server with a full buffer."""
STALL = Limits(head_timeout_seconds=1, keep_alive_seconds=1, write_stall_seconds=2)


@pytest.fixture
def stalling(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path / "public", STALL) as running:
        Output(running.root).write("media/big.bin", BIG)
        Output(running.root).write("media/huge.bin", b"h" * HUGE)
        Output(running.root).write("big.xml", b"<x>" + b"y" * 300_000 + b"</x>")
        yield running


def _reader(served: Served) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((served.server.host, served.server.port))
    return sock


def test_a_client_that_reads_nothing_is_dropped(stalling: Served) -> None:
    with _reader(stalling) as sock:
        sock.sendall(b"GET /media/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(6)  # well past the 2 s stall time, reading nothing
        sock.settimeout(10)
        received = _read_all(sock)  # what the kernels held, then the end: no hang
    assert received.startswith(b"HTTP/1.1 200")
    assert len(received) < HUGE


def test_a_slow_but_steady_reader_gets_the_whole_file(stalling: Served) -> None:
    with _reader(stalling) as sock:
        sock.sendall(b"GET /media/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        sock.settimeout(10)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
            time.sleep(0.01)  # slower than the server writes: its buffer fills, then drains
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-length: 1048576" in head.lower()
    assert body == BIG


def test_a_body_over_one_chunk_arrives_whole_with_its_length(stalling: Served) -> None:
    for accept in (b"identity", b"gzip"):
        status, answer = stalling.raw(
            b"GET /big.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept-Encoding: "
            + accept + b"\r\n\r\n"
        )  # fmt: skip
        head, _, body = answer.partition(b"\r\n\r\n")
        assert status == 200
        assert b"content-length: %d" % len(body) in head.lower()
        assert b"transfer-encoding" not in head.lower()
        if accept == b"gzip":
            body = gzip.decompress(body)
        assert body == b"<x>" + b"y" * 300_000 + b"</x>"
