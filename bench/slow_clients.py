"""Slow clients against the web server: its memory, and a normal client's latency meanwhile.

Everything runs on 127.0.0.1 and is bounded in time (about ``2 * (3 +
--seconds + 3)`` seconds with the defaults, under a minute):

1. An output folder is written to a temporary directory: a 100 KB feed, an
   article page, a 1 MiB media file.
2. For each server, a separate process serves that folder on a free loopback
   port: **newsbot** (``web_app`` on ``WebServer``, its production wiring,
   with its default :class:`~newsbot.web.server.Limits`), then the peer,
   **uvicorn with its defaults** (the same app on a plain ``uvicorn.Server``,
   as a Starlette app is usually run; h11 either way, since httptools is not
   installed here).
3. **Before**: a normal client fetches ``/rss.xml`` on a new connection every
   50 ms for 3 s; its latency is recorded.
4. **Attack** for ``--seconds``: ``--clients`` connections at once, of three
   kinds in the proportions 2:1:1. *Slowloris*: a request line and one header,
   then one more short header line every 2 s, never finishing the head.
   *Silent*: connects and sends nothing. *Slow reader*: sends a whole GET for
   the 1 MiB file with a 4 KB receive buffer and never reads. The attackers
   run in a process of their own, apart from the normal client. A client the
   server closes reconnects at once, so the attack stays at ``--clients``
   connections (a slow reader cannot see a close without reading, so it
   holds on to the end). The normal client goes on as before; the server's ``VmRSS``
   and open descriptors (``/proc/<pid>``) are sampled every 0.25 s.
5. **After**: the attackers close; 3 s later RSS and descriptors again.

Printed as a table and written as JSON to ``bench/out/slow-clients-<timestamp>.json``.

Usage (from the repository root)::

    .venv/bin/python bench/slow_clients.py [--clients 1000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
HOST = "127.0.0.1"
SERVERS = ("newsbot", "uvicorn-defaults")


# -- the server process -----------------------------------------------------------------------


def serve(folder: Path, kind: str) -> None:
    """Serve ``folder`` on a free loopback port; print the port; run until SIGTERM."""
    import uvicorn

    from newsbot.service.health import Status
    from newsbot.service.metrics import Metrics
    from newsbot.web.asgi import web_app
    from newsbot.web.server import WebServer, bind

    app = web_app(folder, Status(), Metrics().registry)
    if kind == "newsbot":
        server = WebServer(app, HOST, 0)
        print(json.dumps({"port": server.port}), flush=True)
        server.serve()
        return
    sock = bind(HOST, 0)
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(app, log_config=None, log_level="warning", http="h11")
    uvicorn.Server(config).run(sockets=[sock])


def write_folder(folder: Path) -> None:
    items = "".join(
        f"<item><title>Article {n}</title><link>http://{HOST}/a/{n}/</link>"
        f"<description>{'Lorem ipsum dolor sit amet. ' * 12}</description></item>"
        for n in range(250)
    )
    (folder / "rss.xml").write_text(
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    )
    (folder / "articles" / "one").mkdir(parents=True)
    (folder / "articles" / "one" / "index.html").write_text("<!doctype html><title>One</title>")
    (folder / "media").mkdir()
    (folder / "media" / "big.bin").write_bytes(os.urandom(1024 * 1024))


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Latencies:
    """A normal client's requests: seconds each, and failures."""

    seconds: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    """When each request started, in seconds since the phase began."""
    errors: int = 0
    origin: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, float | int]:
        ordered = sorted(self.seconds) or [float("nan")]
        return {
            "requests": len(self.seconds),
            "errors": self.errors,
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "max_at_s": round(self.started[self.seconds.index(ordered[-1])], 1)
            if self.seconds
            else None,
        }


def normal_client(port: int, stop: threading.Event, into: Latencies) -> None:
    """GET /rss.xml on a new connection every 50 ms until ``stop``."""
    while not stop.is_set():
        started = time.perf_counter()
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            connection.request("GET", "/rss.xml")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                into.seconds.append(time.perf_counter() - started)
                into.started.append(time.monotonic() - into.origin)
            else:
                into.errors += 1
        except OSError:
            into.errors += 1
        finally:
            connection.close()
        stop.wait(0.05)


def proc_figures(pid: int) -> tuple[int, int]:
    """(VmRSS in KiB, open descriptors) of process ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def sampler(pid: int, stop: threading.Event, into: list[tuple[int, int]]) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            into.append(proc_figures(pid))
        stop.wait(0.25)


# -- the attack --------------------------------------------------------------------------------


@dataclass
class Attack:
    """What the slow clients saw."""

    opened: int = 0
    closed_by_server: int = 0
    lifetimes: list[float] = field(default_factory=list)
    connect_errors: int = 0


async def slow_client(kind: str, port: int, until: float, attack: Attack) -> None:
    """One slow client of ``kind``, reconnecting whenever the server lets it go."""
    while time.monotonic() < until:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if kind == "reader":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError:
            attack.connect_errors += 1
            await asyncio.sleep(0.5)
            continue
        attack.opened += 1
        started = time.monotonic()
        closed = await _hold(kind, reader, writer, until)
        if closed:
            attack.closed_by_server += 1
            attack.lifetimes.append(time.monotonic() - started)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _hold(
    kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, until: float
) -> bool:
    """Keep the connection slow until ``until``; whether the server closed it first."""
    try:
        if kind == "slowloris":
            writer.write(b"GET /rss.xml HTTP/1.1\r\nHost: x\r\n")
        elif kind == "reader":
            writer.write(b"GET /media/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        n = 0
        while time.monotonic() < until:
            if kind == "reader":  # reads nothing more (asyncio's buffer fills, then it stops)
                await asyncio.sleep(min(1.0, max(0.0, until - time.monotonic())))
                continue
            try:
                data = await asyncio.wait_for(reader.read(1), timeout=2)
            except TimeoutError:
                if kind == "slowloris":
                    n += 1
                    writer.write(b"X-%d: %d\r\n" % (n, n))
                    await writer.drain()
                continue
            if not data:
                return True
    except (ConnectionError, OSError):
        return True
    return False


async def attack_for(port: int, clients: int, seconds: float) -> Attack:
    attack = Attack()
    until = time.monotonic() + seconds
    kinds = ["slowloris", "slowloris", "silent", "reader"]
    await asyncio.gather(*(slow_client(kinds[n % 4], port, until, attack) for n in range(clients)))
    return attack


def run_attack(port: int, clients: int, seconds: float) -> Attack:
    """The attack in a process of its own, so its work never slows the normal client's."""
    done = subprocess.run(
        [sys.executable, __file__, "--attack", str(port), "--clients", str(clients),
         "--seconds", str(seconds)],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    return Attack(**json.loads(done.stdout))


# -- one server ---------------------------------------------------------------------------------


def measure(kind: str, folder: Path, clients: int, seconds: float) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(folder), "--server", kind],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(json.loads(process.stdout.readline())["port"])
        time.sleep(0.5)
        before = Latencies()
        stop = threading.Event()
        runner = threading.Thread(target=normal_client, args=(port, stop, before))
        runner.start()
        time.sleep(3)
        stop.set()
        runner.join()
        rss_before, fds_before = proc_figures(process.pid)

        during, samples = Latencies(), []
        stop = threading.Event()
        threads = [
            threading.Thread(target=normal_client, args=(port, stop, during)),
            threading.Thread(target=sampler, args=(process.pid, stop, samples)),
        ]
        for thread in threads:
            thread.start()
        attack = run_attack(port, clients, seconds)
        stop.set()
        for thread in threads:
            thread.join()
        time.sleep(3)
        rss_after, fds_after = proc_figures(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    lifetimes = sorted(attack.lifetimes)
    return {
        "server": kind,
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_peak_mb": round(max(r for r, _ in samples) / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "fds_before": fds_before,
        "fds_peak": max(f for _, f in samples),
        "fds_after": fds_after,
        "latency_before": before.summary(),
        "latency_during": during.summary(),
        "slow_connections_opened": attack.opened,
        "closed_by_server": attack.closed_by_server,
        "median_hold_s": round(statistics.median(lifetimes), 1) if lifetimes else None,
        "connect_errors": attack.connect_errors,
    }


def table(rows: list[dict[str, Any]], clients: int, seconds: float) -> str:
    lines = [
        f"{clients} slow clients for {seconds:.0f} s on loopback (2 slowloris : 1 silent : "
        "1 slow reader); a normal client GETs /rss.xml (100 KB) every 50 ms",
        "",
        "| server | RSS before / peak / after | fds peak / after | normal p50 / p95 / max "
        "before | during (errors) | slow conns opened / closed by server (median hold) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        b, d = row["latency_before"], row["latency_during"]
        lines.append(
            f"| {row['server']} | {row['rss_before_mb']} / {row['rss_peak_mb']} / "
            f"{row['rss_after_mb']} MB | {row['fds_peak']} / {row['fds_after']} | "
            f"{b['p50_ms']} / {b['p95_ms']} / {b['max_ms']} ms | "
            f"{d['p50_ms']} / {d['p95_ms']} / {d['max_ms']} ms at {d['max_at_s']} s "
            f"({d['errors']} of "
            f"{d['requests'] + d['errors']}) | {row['slow_connections_opened']} / "
            f"{row['closed_by_server']} ({row['median_hold_s']} s) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server", choices=SERVERS, action="append")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--attack", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.server[0])
        return
    if args.attack is not None:
        attack = asyncio.run(attack_for(args.attack, args.clients, args.seconds))
        print(json.dumps(asdict(attack)))
        return
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be between 1 and 120")
    with tempfile.TemporaryDirectory(prefix="newsbot-slow-") as tmp:
        folder = Path(tmp) / "public"
        folder.mkdir()
        write_folder(folder)
        rows = [
            measure(kind, folder, args.clients, args.seconds) for kind in args.server or SERVERS
        ]
    print(table(rows, args.clients, args.seconds))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = OUT_DIR / f"slow-clients-{stamp}.json"
    out.write_text(json.dumps({"clients": args.clients, "seconds": args.seconds, "rows": rows},
                              indent=2))  # fmt: skip
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
