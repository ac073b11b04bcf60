"""The probes, answered from the moment the port is bound, while the service still loads.

``newsbot run`` binds its port first thing, before it loads the state
database, the builder, the posting code and the web framework (about a
second of CPU on a small machine), so an orchestrator sees a live process
from the start. Until the real server takes the socket over
(:meth:`EarlyProbes.handover`), one thread answers on it, with nothing but
the standard library: ``/healthz`` 200 (the process is alive),
``/readyz`` 503 (``"starting"``: no build yet), anything else 503 with
``Retry-After``. Each connection gets one answer and is closed; a client has
:data:`READ_SECONDS` to send its request head. Connections still waiting when
the socket is handed over are accepted by the real server.
"""

from __future__ import annotations

import json
import select
import socket
import threading

READ_SECONDS = 2.0
"""Time a client has to send its request head to the early responder."""
MAX_HEAD = 8 * 1024
NOT_READY = json.dumps({"ready": False, "reasons": ["starting"]}).encode()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one), IPv4 or IPv6.

    The protocol is named (``IPPROTO_TCP``, not 0) because asyncio sets
    ``TCP_NODELAY`` on accepted connections only when it sees it; without it,
    Nagle's algorithm and delayed ACKs add about 40 ms to every response on a
    kept-alive connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def answer(head: bytes) -> bytes:
    """The whole response to a request head (its first line is all that counts)."""
    fields = head.split(b"\r\n", 1)[0].split()
    method = fields[0] if fields else b""
    path = fields[1].split(b"?", 1)[0] if len(fields) > 1 else b""
    if method not in (b"GET", b"HEAD"):
        status, kind, body = b"405 Method Not Allowed", b"text/plain", b"starting\n"
    elif path == b"/healthz":
        status, kind, body = b"200 OK", b"text/plain; charset=utf-8", b"ok\n"
    elif path == b"/readyz":
        status, kind, body = b"503 Service Unavailable", b"application/json", NOT_READY
    else:
        status, kind, body = b"503 Service Unavailable", b"text/plain", b"starting\n"
    head_out = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + kind
        + b"\r\ncontent-length: " + str(len(body)).encode()
        + b"\r\ncache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
    )  # fmt: skip
    return head_out if method == b"HEAD" else head_out + body


class EarlyProbes:
    """Answers the probes on a bound socket until :meth:`handover`."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="newsbot-early", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def handover(self) -> socket.socket:
        """Stop answering (the answer in progress ends first); the socket, still listening."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.socket

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.socket], [], [], 0.05)
            if not ready or self._stop.is_set():
                continue
            try:
                conn, _ = self.socket.accept()
            except OSError:  # the client went away before it was accepted
                continue
            with conn:
                self._answer(conn)

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        conn.settimeout(READ_SECONDS)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            conn.sendall(answer(head))
        except OSError:  # too slow, or gone: the next probe asks again
            return
