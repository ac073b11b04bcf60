"""ActivityPub fan-out benchmark: one new article to 10,000 followers on 1,000 servers.

Everything runs on loopback. This script hosts the 1,000 remote servers as
1,000 listening ports of one uvicorn process-thread (each port is a distinct
host for newsbot: its own breaker, its own per-host limit, its own
connections); each follower has its own inbox (no shared inbox), so one
article is 10,000 deliveries. Every inbox verifies the request as Mastodon
does before answering 202: the signature (draft-cavage ``rsa-sha256``
against the actor's public key, fetched once from newsbot's actor document),
the ``Digest`` against the body and the ``Date`` window.

For each database (SQLite file, then a fresh PostgreSQL database when
``--postgres URL`` is given) and each scenario (all hosts healthy; then 10 %
of hosts failing or slow: half of them answer 503, half take 2 s per
request), the script

1. creates the state database and inserts the followers (10 per server);
2. starts ``newsbot run`` (every ActivityPub setting at its default except
   ``allow_private_addresses``) and waits for ``/readyz``;
3. drops one article into the store (the watcher sees it, the build queues a
   Create and its deliveries, the worker sends them) and starts the clock;
4. waits until every healthy and slow inbox has the activity; records the
   time of the last delivery, the rate over the whole fan-out (from the drop)
   and over the sending itself (first to last delivery), and newsbot's peak
   resident memory (``VmHWM``);
5. stops newsbot and checks that nothing was lost: every delivery row is
   ``done``, except those to failing hosts, which must be ``pending`` with a
   later retry; duplicates are counted.

At the end a table compares newsbot with Fedify: deliveries per second
against the goal (PASS at >= 400/s from the drop, MISS below), peak memory
against 250 MB, lost deliveries, and the load average of the machine (the
figures move with it: the machine is shared); the JSON goes to
``bench/out/activitypub_fanout.json``. The receivers' own CPU time is
reported too (``receivers_busy``: the share of one core they used), to show
that they are not what limits the rate.

With ``--fedify`` the same inboxes also receive the same fan-out from
Fedify 1.10.12 (``tests/fedify/fanout.mjs``: one ``sendActivity`` to the
10,000 recipients, no queue), as the peer.

    .venv/bin/python bench/activitypub_fanout.py [--postgres URL] [--fedify]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, insert, select, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from newsbot.activitypub.signatures import (  # noqa: E402
    Incoming,
    SignatureRejected,
    key_id_of,
    verify,
)
from newsbot.state.database import open_database  # noqa: E402
from newsbot.state.schema import ap_deliveries, ap_followers  # noqa: E402

NEWSBOT = Path(sys.executable).parent / "newsbot"
GOAL_PER_SECOND = 400.0
GOAL_MB = 250.0
SLOW_SECONDS = 2.0


@dataclass
class Inboxes:
    """The fake remote servers: one port each, verifying every POST."""

    servers: int
    modes: dict[int, str] = field(default_factory=dict)
    receipts: Counter[tuple[str, str]] = field(default_factory=Counter)
    first: float | None = None
    last: float | None = None
    rejected: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.sockets = []
        for _ in range(self.servers):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self.sockets.append(sock)
        self.ports = [s.getsockname()[1] for s in self.sockets]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=self.sockets)), daemon=True
        )
        self.http: httpx.AsyncClient | None = None

    def start(self) -> None:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def reset(self, modes: dict[int, str]) -> None:
        self.modes = modes
        self.receipts = Counter()
        self.first = self.last = None
        self.rejected = 0
        self.reasons = Counter()

    async def _key(self, key_id: str) -> str:
        if key_id in self.keys:
            return self.keys[key_id]
        lock = self.locks.setdefault(key_id, asyncio.Lock())
        async with lock:  # one fetch per key, however many requests arrive at once
            return await self._fetch_key(key_id)

    async def _fetch_key(self, key_id: str) -> str:
        if key_id not in self.keys:
            if self.http is None:
                self.http = httpx.AsyncClient(trust_env=False, timeout=10)
            doc = (
                await self.http.get(
                    key_id.split("#")[0], headers={"Accept": "application/activity+json"}
                )
            ).json()
            key = doc["publicKey"]
            self.keys[key_id] = (key[0] if isinstance(key, list) else key)["publicKeyPem"]
        return self.keys[key_id]

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        port = scope["server"][1]
        mode = self.modes.get(port, "ok")
        status = 202
        if mode == "fail":
            status = 503
        else:
            if mode == "slow":
                await asyncio.sleep(SLOW_SECONDS)
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            path = scope["path"]
            incoming = Incoming("POST", f"http://{headers.get('host')}{path}", headers, body)
            try:
                key_id, _ = key_id_of(incoming)
                verify(incoming, await self._key(key_id), datetime.now(UTC))
                activity = json.loads(body)["id"]
            except (SignatureRejected, KeyError, ValueError, httpx.HTTPError) as exc:
                self.rejected += 1
                self.reasons[f"{type(exc).__name__}: {exc}"[:80]] += 1
                status = 401
            else:
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self.receipts[(f"{port}{path}", activity)] += 1
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_postgres(server: str) -> Any:
    name = f"bench_ap_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (the machine may be shared)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_newsbot(
    inboxes: Inboxes, database_url: str, followers_each: int, failing: float, work: Path
) -> dict[str, Any]:
    rng = random.Random(7)
    broken = rng.sample(inboxes.ports, int(len(inboxes.ports) * failing))
    modes = {p: ("fail" if i % 2 == 0 else "slow") for i, p in enumerate(broken)}
    inboxes.reset(modes)
    engine = open_database(database_url)
    now = datetime.now(UTC)
    rows = [
        {"actor": f"http://127.0.0.1:{port}/users/u{j}",
         "inbox": f"http://127.0.0.1:{port}/users/u{j}/inbox", "shared_inbox": None,
         "follow_id": None, "host": f"127.0.0.1:{port}", "created": int(now.timestamp())}
        for port in inboxes.ports for j in range(followers_each)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(ap_followers), rows)
    content = work / "content"
    content.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update({
        "NEWSBOT_SITE__BASE_URL": f"http://127.0.0.1:{port}/",
        "NEWSBOT_SERVICE__PORT": str(port),
        "NEWSBOT_STORE__CONTENT_DIR": str(content),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(work / "public"),
        "NEWSBOT_STATE__DATABASE_URL": database_url,
        "NEWSBOT_LOG__FORMAT": "json",
        "NEWSBOT_LOG__LEVEL": "WARNING",
        "NEWSBOT_ACTIVITYPUB__ALLOW_PRIVATE_ADDRESSES": "true",
    })  # fmt: skip
    log = (work / "newsbot.log").open("wb")
    process = subprocess.Popen([str(NEWSBOT), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(trust_env=False, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"newsbot did not become ready; see {work / 'newsbot.log'}")
                time.sleep(0.1)
        healthy = [p for p in inboxes.ports if modes.get(p) != "fail"]
        expected = len(healthy) * followers_each
        article = content / "ferry.md"
        aside = work / "ferry.md"
        aside.write_text(
            f"---\ntitle: Ferry strike ends\ndate: {now.isoformat()}\nsummary: Boats sail again.\n"
            "tags: [Ferries]\n---\n\nThe ferry strike ended this morning.\n",
            encoding="utf-8",
        )
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(process.pid)
        receivers_before = cpu_seconds(os.getpid())
        started = time.monotonic()
        aside.replace(article)
        deadline = started + 300
        while len(inboxes.receipts) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(inboxes.receipts)} of {expected} arrived in 300 s")
            time.sleep(0.05)
        assert inboxes.first is not None and inboxes.last is not None
        last = inboxes.last - started
        sending = inboxes.last - inboxes.first
        cpu = cpu_seconds(process.pid) - cpu_before
        receivers_cpu = cpu_seconds(os.getpid()) - receivers_before
        time.sleep(1.0)
        memory = peak_memory_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    with engine.connect() as conn:
        states = Counter(
            (row.state, row.host.rsplit(":", 1)[1] in {str(p) for p in modes if modes[p] == "fail"})
            for row in conn.execute(select(ap_deliveries.c.state, ap_deliveries.c.host))
        )
    engine.dispose()
    done = states.get(("done", False), 0)
    waiting_failing = states.get(("pending", True), 0)
    lost = len(rows) - done - waiting_failing
    duplicates = sum(n - 1 for n in inboxes.receipts.values())
    return {
        "deliveries": expected,
        "rows": len(rows),
        "seconds_to_last": round(last, 2),
        "per_second_from_drop": round(expected / last, 1),
        "per_second_sending": round(expected / sending, 1) if sending else None,
        "newsbot_cpu_seconds": round(cpu, 2),
        "per_cpu_second": round(expected / cpu, 1) if cpu else None,
        "load_average_at_start": round(load, 2),
        "receivers_cpu_seconds": round(receivers_cpu, 2),
        "receivers_busy": round(receivers_cpu / last, 2),
        "peak_mb": round(memory, 1),
        "lost": lost,
        "failing_hosts_pending": waiting_failing,
        "duplicates": duplicates,
        "rejected_signatures": inboxes.rejected,
    }


def run_fedify(inboxes: Inboxes, followers_each: int, work: Path) -> dict[str, Any]:
    node = shutil.which("node")
    script = REPO / "tests" / "fedify" / "fanout.mjs"
    if node is None or not (REPO / "tests/fedify/node_modules/@fedify/fedify").is_dir():
        return {"skipped": "Fedify is not installed (tests/setup/tools.sh)"}
    inboxes.reset({})
    recipients = [
        {"id": f"http://127.0.0.1:{port}/users/u{j}",
         "inbox": f"http://127.0.0.1:{port}/users/u{j}/inbox"}
        for port in inboxes.ports for j in range(followers_each)
    ]  # fmt: skip
    listing = work / "recipients.json"
    listing.write_text(json.dumps(recipients))
    process = subprocess.Popen([node, str(script), str(free_port()), str(listing)],
                               cwd=script.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    key_url = json.loads(process.stdout.readline())["key"]
    with httpx.Client(trust_env=False, timeout=30) as http:
        doc = http.get(key_url, headers={"Accept": "application/activity+json"}).json()
    inboxes.keys[doc["publicKey"]["id"]] = doc["publicKey"]["publicKeyPem"]
    load = os.getloadavg()[0]
    started = time.monotonic()
    process.stdin.write("go\n")
    process.stdin.flush()
    stdout, stderr = process.communicate(timeout=900)
    elapsed = time.monotonic() - started
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    report = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    expected = len(recipients)
    arrived = len(inboxes.receipts)
    sending = (inboxes.last - inboxes.first) if inboxes.first and inboxes.last else None
    return {
        "deliveries": expected,
        "arrived": arrived,
        "seconds_to_last": round(inboxes.last - started, 2) if inboxes.last else None,
        "per_second_from_go": round(arrived / (inboxes.last - started), 1)
        if inboxes.last
        else None,
        "per_second_sending": round(arrived / sending, 1) if sending else None,
        "process_seconds": round(elapsed, 2),
        "send_activity_seconds": round(report["seconds"], 2) if "seconds" in report else None,
        "peak_mb": report.get("peak_mb"),
        "rejected_signatures": inboxes.rejected,
        "load_average_at_start": round(load, 2),
        "rejected_why": dict(inboxes.reasons.most_common(3)),
        "errors": report.get("errors"),
        "stderr": done.stderr[-500:] if done.returncode else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--servers", type=int, default=1_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--fedify", action="store_true", help="also run Fedify's own fan-out")
    parser.add_argument("--skip-failing", action="store_true")
    parser.add_argument("--only-failing", action="store_true")
    args = parser.parse_args()
    followers_each = args.followers // args.servers
    inboxes = Inboxes(args.servers)
    inboxes.start()
    results: dict[str, Any] = {}
    try:
        databases = ["sqlite"] + (["postgresql"] if args.postgres else [])
        scenarios = [("healthy", 0.0)] + ([] if args.skip_failing else [("10% failing/slow", 0.1)])
        if args.only_failing:
            scenarios = scenarios[1:]
        for database in databases:
            for name, failing in scenarios:
                with tempfile.TemporaryDirectory(prefix="ap-bench-") as folder:
                    work = Path(folder)
                    if database == "sqlite":
                        url = f"sqlite:///{work / 'state.db'}"
                        result = run_newsbot(inboxes, url, followers_each, failing, work)
                    else:
                        with fresh_postgres(args.postgres) as url:
                            result = run_newsbot(inboxes, url, followers_each, failing, work)
                key = f"newsbot {database}, {name}"
                results[key] = result
                print(key, json.dumps(result), flush=True)
        if args.fedify:
            with tempfile.TemporaryDirectory(prefix="ap-bench-") as folder:
                result = run_fedify(inboxes, followers_each, Path(folder))
            results["fedify 1.10.12, healthy"] = result
            print("fedify 1.10.12, healthy", json.dumps(result), flush=True)
    finally:
        inboxes.stop()
    results["load_average"] = list(os.getloadavg())
    out = REPO / "bench" / "out" / "activitypub_fanout.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    print(f"JSON: {out}")


def summary(results: dict[str, Any]) -> str:
    """One line per run: rate against the goal, memory, lost deliveries."""
    lines = [f"{'run':42} {'per s':>7} {'goal':>5} {'peak MB':>8} {'lost':>5}"]
    for key, result in results.items():
        if not isinstance(result, dict) or "deliveries" not in result:
            continue
        rate = result.get("per_second_from_drop", result.get("per_second_from_go")) or 0.0
        verdict = "PASS" if rate >= GOAL_PER_SECOND else "MISS"
        memory = result.get("peak_mb")
        memory_text = f"{memory:8.1f}" if isinstance(memory, int | float) else f"{'?':>8}"
        if isinstance(memory, int | float) and memory > GOAL_MB:
            verdict += " (memory)"
        lost = result.get("lost", result["deliveries"] - result.get("arrived", 0))
        lines.append(f"{key:42} {rate:7.1f} {verdict:>5} {memory_text} {lost:5}")
    load = results.get("load_average")
    if load:
        lines.append("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in load))
    lines.append(f"goal: >= {GOAL_PER_SECOND:.0f} deliveries/s, <= {GOAL_MB:.0f} MB, 0 lost")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
