"""``newsbot run`` as operators run it: a subprocess on loopback, stopped by signals.

Each test starts the real command (``.venv/bin/newsbot run``) with ``NEWSBOT_*``
settings on a temporary store, data and output folder, port 0 (the address is
read back from the log) and a fake Mastodon server in this process. The
service's stderr and stdout are files, not a terminal, so its log is JSON
lines; all it writes is searched for the target's token.

- start, probes, a dropped article in the feeds and on the server within
  seconds, a conditional GET answered 304, ``/readyz`` and ``/metrics``,
  ``newsbot healthcheck``; the probes answer while the first build runs;
- SIGTERM while a post is in flight (answered in time, answered too late for
  the shutdown time, or a rate limit being waited out): exit 0 within
  ``service.shutdown_timeout_seconds``, then a restart posts every article
  exactly once;
- startup checks: one line on stderr, a non-zero exit, no traceback;
- without a target: how to configure one, and the exact text a target gets;
- two services on one PostgreSQL database, publishing one store to one server;
- an unprivileged user with a read-only store (what the Dockerfile does);
- in this process: a build or pass asked for while one runs is not lost, and
  the watcher judges hidden files from the store's root.

Pacing cannot be switched off in the service: targets post at most
``posts_per_hour`` (600 at most, one post every 6 s), so each test keeps to a
few fresh articles.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from newsbot.service.jobs import Coalesced
from newsbot.service.watch import Watcher
from support.databases import fresh_postgres_database, postgres_server
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, environment, posts_by_url, settings_for, url_of, write_article
from support.posting import target as target_settings
from support.processes import children, comm, mapped, running
from support.readers import Resource, loopback_server

VENV_BIN = Path(sys.executable).parent
NEWSBOT = VENV_BIN / "newsbot"
POSTS_PER_HOUR = 600
"""The most a target allows: a post every 6 s, so fresh articles go out without waiting long."""
SPACING = 3600 / POSTS_PER_HOUR
SHUTDOWN_TIMEOUT = 4.0
EXIT_SLACK = 1.5
"""What the interpreter may take to exit once the service has stopped."""
FIRST_BUILD_ARTICLES = 1000
"""Enough for a first build of a second or so: long enough to ask the probes meanwhile."""

T = TypeVar("T")


# -- the service as a process ---------------------------------------------------------------


class Service:
    """One ``newsbot run`` process; its output goes to files in ``folder``."""

    def __init__(self, env: Mapping[str, str], folder: Path, command: list[str] | None = None):
        self.env = dict(env)
        self.folder = folder
        self.command = command or [str(NEWSBOT), "run"]
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = folder / "stderr.log"
        self.stdout_path = folder / "stdout.log"
        self.started_at = 0.0

    def start(self) -> Service:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.stderr_path.open("ab") as err, self.stdout_path.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def lines(self) -> list[dict[str, Any]]:
        """The log so far; every line must be one JSON object."""
        entries = []
        for line in self.stderr_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"a log line is not JSON: {line!r}\n{self.output()}")
            assert isinstance(entry, dict) and {"time", "level", "message"} <= set(entry), line
            entries.append(entry)
        return entries

    def messages(self) -> list[str]:
        return [entry["message"] for entry in self.lines()]

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def url(self, timeout: float = 20) -> str:
        """The web app's base URL, as the service logs it once it listens."""

        def logged() -> str | None:
            self.assert_alive()
            for entry in self.lines():
                if entry["message"] == "newsbot is running":
                    return str(entry["url"])
            return None

        return eventually(logged, timeout, "the service never said it was running")

    def ready(self, client: httpx.Client, timeout: float = 30) -> dict[str, Any]:
        """The ``/readyz`` answer once it says ready; the service's log if it never does."""
        base = self.url()

        def answer() -> dict[str, Any] | None:
            self.assert_alive()
            found = client.get(base + "/readyz")
            return found.json() if found.status_code == 200 else None

        deadline = time.monotonic() + timeout
        while (ready := answer()) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after {timeout} s:\n{self.output()}")
            time.sleep(0.05)
        return ready

    def assert_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        assert code is None, f"the service exited with {code}:\n{self.output()}"

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
        """Send ``sig``; the exit code and the seconds it took to exit."""
        assert self.process is not None
        self.assert_alive()
        sent = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(
                f"the service did not exit within {timeout} s of {sig.name}:\n{self.output()}"
            )
        return code, time.monotonic() - sent

    def kill(self) -> None:
        """Cleanup: kill this process (only this one) if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def services() -> Iterator[Callable[..., Service]]:
    """Starts services; whatever a failing test leaves running is killed after it."""
    started: list[Service] = []

    def start(env: Mapping[str, str], folder: Path, command: list[str] | None = None) -> Service:
        service = Service(env, folder, command).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.kill()


def eventually(
    check: Callable[[], T | None], timeout: float, message: str | Callable[[], str]
) -> T:
    """The first truthy result of ``check``, polled until ``timeout`` seconds have passed.

    ``message`` says what went wrong; a function is asked only then, for the state at the end.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            pytest.fail(f"{said} (after {timeout} s)")
        time.sleep(0.05)


def service_env(
    tmp: Path,
    content: Path,
    servers: Mapping[str, FakeMastodon] = {},  # read only
    *,
    database_url: str | None = None,
    output: Path | None = None,
    **service: object,
) -> dict[str, str]:
    """The environment of a service on ``content``, state and output under ``tmp``."""
    targets = {
        name: target_settings(server.base_url, posts_per_hour=POSTS_PER_HOUR)
        for name, server in servers.items()
    }
    settings = settings_for(tmp, content, targets, database_url)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("NEWSBOT_") and not name.lower().endswith("_proxy")
    }
    env.update(environment(settings))
    if output is not None:
        env["NEWSBOT_FEEDS__OUTPUT_DIR"] = str(output)
    settings_of_service: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "publish_every_seconds": 1,
        "build_every_seconds": 30,
        "jitter_seconds": 0,
        "shutdown_timeout_seconds": SHUTDOWN_TIMEOUT,
        **service,
    }
    for key, value in settings_of_service.items():
        env[f"NEWSBOT_SERVICE__{key.upper()}"] = str(value)
    return env


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def drop(content: Path, path: str, title: str, published: datetime, **fields: Any) -> Path:
    """Put an article into the store the way a copy tool does: written aside, then renamed."""
    aside = content.parent / "incoming"
    aside.mkdir(exist_ok=True)
    written = write_article(aside, Path(path).name, title, published, **fields)
    final = content / path
    final.parent.mkdir(parents=True, exist_ok=True)
    written.replace(final)
    return final


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus text exposition, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    return None


def posted(server: FakeMastodon) -> dict[str, int]:
    return dict(posts_by_url(server.live_statuses()))


def assert_no_token(service: Service, *folders: Path) -> None:
    assert TOKEN not in service.output(), "the token appears in the service's output"
    for folder in folders:
        for file in folder.rglob("*"):
            if file.is_file():
                assert TOKEN.encode() not in file.read_bytes(), f"the token is in {file}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- start, a dropped article, probes ---------------------------------------------------------


def test_serves_at_once_and_posts_a_dropped_article_within_seconds(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    write_article(content, "2020/old-news.md", "Old news from the archive", now - timedelta(days=3))
    with FakeMastodon(token=TOKEN) as server:
        env = service_env(tmp_path, content, {"main": server})
        service = services(env, tmp_path / "run")
        base = service.url()
        with http() as client:
            eventually(lambda: client.get(base + "/healthz").status_code == 200, 5, "/healthz")
            assert time.monotonic() - service.started_at < 10, "/healthz took too long"
            ready = service.ready(client, 15)
            assert ready["ready"] is True and ready["build"]["error"] is None
            assert ready["build"]["files"] == 1

            # The old article is backlog: marked as seen, never posted.
            eventually(
                lambda: "main" in client.get(base + "/readyz").json()["targets"], 10, "no pass"
            )
            assert server.live_statuses() == []

            dropped_at = time.monotonic()
            drop(content, "2026/harbour-reopens.md", "Harbour reopens after storm", now,
                 summary="The harbour reopened on Monday.", tags=["Harbour"])  # fmt: skip
            url = url_of("2026/harbour-reopens.md")
            eventually(lambda: posted(server).get(url) == 1, 10, "the article was not posted")
            latency = time.monotonic() - dropped_at
            rss = client.get(base + "/rss.xml")
            assert rss.status_code == 200 and "Harbour reopens after storm" in rss.text
            assert latency < 5, f"the post came {latency:.1f} s after the file"

            # A conditional GET of an unchanged feed is answered 304, without a body.
            etag = rss.headers["etag"]
            again = client.get(base + "/rss.xml", headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
            zipped = client.get(base + "/atom.xml", headers={"Accept-Encoding": "gzip"})
            assert zipped.headers.get("content-encoding") == "gzip"

            # /readyz and /metrics say what happened. A pass may post the article the build
            # stored before the build's own report reaches the service: wait for that report.
            def reported() -> bool:
                metrics = client.get(base + "/metrics").text
                return metric(metrics, "newsbot_store_articles") == 2

            eventually(reported, 10, "the build's report did not reach /metrics")
            ready = client.get(base + "/readyz").json()
            assert ready["ready"] is True and ready["build"]["files"] == 2
            assert ready["targets"]["main"]["error"] is None
            metrics = client.get(base + "/metrics").text
            assert metric(metrics, "newsbot_posts_total", target="main", outcome="sent") == 1
            assert metric(metrics, "newsbot_posts_total", target="main", outcome="skipped") == 1
            assert metric(metrics, "newsbot_posts_total", target="main", outcome="failed") == 0
            assert metric(metrics, "newsbot_store_articles") == 2
            assert (metric(metrics, "newsbot_builds_total") or 0) >= 2
            assert metric(metrics, "newsbot_build_failures_total") == 0
            assert metric(metrics, "newsbot_publish_stopped", target="main") == 0

        # The container's health check reaches the service even with a proxy in the
        # environment (there is none on this port).
        port = base.rsplit(":", 1)[1]
        check_env = {**env, "NEWSBOT_SERVICE__PORT": port, "HTTP_PROXY": "http://127.0.0.1:9/"}
        check = subprocess.run([str(NEWSBOT), "healthcheck"], env=check_env, capture_output=True)
        assert check.returncode == 0, check.stderr

        code, seconds = service.stop(signal.SIGTERM)
        assert code == 0, service.output()
        assert seconds < SHUTDOWN_TIMEOUT + EXIT_SLACK
        check = subprocess.run([str(NEWSBOT), "healthcheck"], env=check_env, capture_output=True)
        assert check.returncode == 1 and b"Traceback" not in check.stderr

    messages = service.messages()
    assert "received SIGTERM" in messages and messages[-1] == "stopped"
    assert not [e for e in service.lines() if e["level"] in ("error", "critical")]
    assert_no_token(service, tmp_path / "public")


IDLE_PASSES = 6


def test_idle_passes_log_nothing_and_a_stopped_target_is_said_once(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """At rest the log stays quiet: passes with nothing to post log nothing, and a
    target that stops at every pass (a refused token) is said once, not at each pass."""
    content = tmp_path / "content"
    write_article(content, "news.md", "Fresh news for the quiet test", datetime.now(UTC))
    refused_token = "tok-refused-Qx81-NEVER-SHOWN"
    with FakeMastodon(token=TOKEN) as server:
        env = service_env(tmp_path, content, {"main": server})
        env |= {
            "NEWSBOT_TARGETS__REFUSED__SERVER": server.base_url,
            "NEWSBOT_TARGETS__REFUSED__TOKEN": refused_token,
        }
        service = services(env, tmp_path / "run")
        base = service.url()

        def passes() -> tuple[float, float]:
            with http() as client:
                text = client.get(base + "/metrics").text
            return tuple(  # type: ignore[return-value]
                metric(text, "newsbot_publish_passes_total", target=name) or 0
                for name in ("main", "refused")
            )

        def service_lines() -> list[dict[str, Any]]:
            return [e for e in service.lines() if e.get("logger") != "newsbot.access"]

        eventually(lambda: posted(server), 20, "the article was not posted")
        eventually(lambda: min(passes()) >= 2, 20, "no second pass")
        settled = len(service_lines())
        start = passes()
        eventually(
            lambda: min(now - then for now, then in zip(passes(), start, strict=True))
            >= IDLE_PASSES,
            IDLE_PASSES * 5,
            "the passes did not run",
        )
        idle = service_lines()[settled:]
        assert idle == [], f"{IDLE_PASSES} idle passes logged {len(idle)} lines: {idle}"
        service.stop()

    lines = service_lines()
    stops = [e for e in lines if e["message"].startswith("target stopped")]
    assert len(stops) == 1 and stops[0]["target"] == "refused", stops
    assert "access token was refused" in stops[0]["message"]
    assert refused_token not in service.output()
    assert_no_token(service)


def test_probes_answer_while_the_first_build_runs(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    content = tmp_path / "content"
    archive(content)
    service = services(service_env(tmp_path, content), tmp_path / "run")
    base = service.url()
    with http() as client:
        # Listening comes first: alive at once, not ready until the store is built.
        assert client.get(base + "/healthz").status_code == 200
        unready = client.get(base + "/readyz")
        assert unready.status_code == 503, "the first build was over too soon to tell"
        assert unready.json()["reasons"] == ["no build yet"]
        ready = service.ready(client, 60)
    assert ready["build"]["files"] == FIRST_BUILD_ARTICLES
    code, seconds = service.stop()
    assert code == 0 and seconds < SHUTDOWN_TIMEOUT + EXIT_SLACK, service.output()


# -- SIGTERM in the middle of a pass ----------------------------------------------------------


def stopped_during_a_post(
    services: Callable[..., Service],
    env: dict[str, str],
    folder: Path,
    server: FakeMastodon,
    timeout: float = 30,
) -> tuple[Service, int, float]:
    """A service started, then sent SIGTERM while its first post is with ``server``: the
    service, its exit code and the seconds it took to exit."""
    service = services(env, folder)
    service.url()
    eventually(
        lambda: any(r["kind"] == "post_status" for r in server.requests) or None,
        15,
        "no post was sent",
    )
    time.sleep(0.2)  # the request is with the server, which takes its time
    code, seconds = service.stop(signal.SIGTERM, timeout)
    return service, code, seconds


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "delay", "unanswered"),
    [("slow", 2.0, False), ("timeout", 3 * SHUTDOWN_TIMEOUT, True), ("429", 10.0, False)],
    ids=["answered-in-time", "answered-too-late", "waiting-out-a-rate-limit"],
)
def test_sigterm_during_a_post_then_restart_posts_each_article_once(
    tmp_path: Path, services: Callable[..., Service], fault: str, delay: float, unanswered: bool
) -> None:
    """The first post takes its time; SIGTERM arrives meanwhile.

    - "slow": the server answers (and posts) within the grace a request in
      flight gets: the pass records the post, and the process exits;
    - "timeout": the server posts at once but answers long after the shutdown
      time: the pass stops waiting after the grace and the process exits on
      time without the answer (the request stays recorded, nothing is left
      running), and the restart finds the post on the account;
    - "429": the server asks to wait ``delay`` s before trying again: the wait
      ends at once, nothing is abandoned, and the restart posts when allowed.

    The server ignores Idempotency-Key, so only the state keeps a post single.
    """
    content = tmp_path / "content"
    now = datetime.now(UTC)
    paths = [f"2026/story-{n}.md" for n in range(2)]
    for n, path in enumerate(paths):
        write_article(content, path, f"Story {n} of the day", now - timedelta(minutes=10 - n))
    with FakeMastodon(token=TOKEN, ignore_idempotency_key=True) as server:
        server.configure(slow_delay=delay, timeout_delay=delay, retry_after=delay)
        server.inject("post_status", fault)
        env = service_env(tmp_path, content, {"main": server})
        first, code, seconds = stopped_during_a_post(services, env, tmp_path / "first", server)
        assert code == 0, first.output()
        assert seconds < SHUTDOWN_TIMEOUT + EXIT_SLACK, f"exit took {seconds:.1f} s"
        messages = first.messages()
        assert not any("did not finish within" in m for m in messages), first.output()
        assert any("stopped waiting for an answer" in m for m in messages) == unanswered
        # Between the two runs the operator sees what became of the post in flight.
        state = subprocess.run(
            [str(NEWSBOT), "state"], env=env, capture_output=True, text=True, timeout=60
        )
        assert state.returncode == 0, state.stderr
        in_flight = [line for line in state.stdout.splitlines() if "pending" in line]
        if unanswered:
            assert len(in_flight) == 1 and "no answer recorded" in in_flight[0], state.stdout
            assert "the next pass looks for it on the account" in in_flight[0]
        assert all(line.split()[-1] != "pending" for line in in_flight), state.stdout

        second = services(env, tmp_path / "second")
        second.url()
        urls = {url_of(path) for path in paths}
        eventually(
            lambda: set(posted(server)) == urls,
            len(paths) * SPACING + delay + 15,
            lambda: f"not every article was posted: {posted(server)}",
        )
        time.sleep(2)  # a few more passes: nothing more may go out
        code, _ = second.stop(signal.SIGTERM)
        assert code == 0, second.output()
    counts = posted(server)
    assert counts == dict.fromkeys(urls, 1), counts
    assert len(server.statuses) == len(paths), "a status was posted (and deleted) twice"
    assert_no_token(first)
    assert_no_token(second)


@pytest.mark.slow
def test_sigterm_does_not_wait_for_an_answer_that_never_comes(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """A server takes a post and never answers; SIGTERM arrives meanwhile.

    With the default shutdown time (20 s, less than a target's 30 s timeout) the
    service waited it out whole, past ``docker stop``'s 10 s before it kills.
    Now the wait for the answer ends after a short grace and the service exits
    well within 10 s; the restart finds the post on the account (the server
    ignores Idempotency-Key: only the state keeps the post single).
    """
    content = tmp_path / "content"
    path = "2026/story.md"
    write_article(content, path, "Story of the day", datetime.now(UTC) - timedelta(minutes=5))
    with FakeMastodon(token=TOKEN, ignore_idempotency_key=True) as server:
        server.configure(timeout_delay=600)
        server.inject("post_status", "timeout")
        env = service_env(tmp_path, content, {"main": server}, shutdown_timeout_seconds=20)
        first, code, seconds = stopped_during_a_post(
            services, env, tmp_path / "first", server, timeout=40
        )
        assert code == 0, first.output()
        assert seconds < 10, f"exit took {seconds:.1f} s"
        second = services(env, tmp_path / "second")
        second.url()
        eventually(
            lambda: posted(server) == {url_of(path): 1} and server.statuses,
            30,
            lambda: f"the post was not found: {posted(server)}",
        )
        time.sleep(2)  # a few more passes: nothing more may go out
        code, _ = second.stop(signal.SIGTERM)
        assert code == 0, second.output()
        assert any("an earlier attempt had been posted" in m for m in second.messages())
    assert posted(server) == {url_of(path): 1}
    assert len(server.statuses) == 1
    assert_no_token(first)
    assert_no_token(second)


# -- startup checks -----------------------------------------------------------------------------


def _missing_store(tmp: Path) -> dict[str, str]:
    return {"NEWSBOT_STORE__CONTENT_DIR": str(tmp / "nowhere")}


def _store_is_a_file(tmp: Path) -> dict[str, str]:
    (tmp / "store.md").write_text("not a folder")
    return {"NEWSBOT_STORE__CONTENT_DIR": str(tmp / "store.md")}


def _output_under_a_file(tmp: Path) -> dict[str, str]:
    (tmp / "plain-file").write_text("")
    return {"NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp / "plain-file" / "public")}


def _data_under_a_file(tmp: Path) -> dict[str, str]:
    (tmp / "plain-file").write_text("")
    return {"NEWSBOT_STATE__DATA_DIR": str(tmp / "plain-file" / "data")}


def _database_down(tmp: Path) -> dict[str, str]:
    url = f"postgresql://newsbot:pw-Secret-77@127.0.0.1:{closed_port()}/newsbot"
    return {"NEWSBOT_STATE__DATABASE_URL": url}


def _port_out_of_range(tmp: Path) -> dict[str, str]:
    return {"NEWSBOT_SERVICE__PORT": "99999"}


def _interval_not_a_number(tmp: Path) -> dict[str, str]:
    return {"NEWSBOT_SERVICE__PUBLISH_EVERY_SECONDS": "often"}


def _target_without_scheme(tmp: Path) -> dict[str, str]:
    return {
        "NEWSBOT_TARGETS__MAIN__SERVER": "mastodon.example",
        "NEWSBOT_TARGETS__MAIN__TOKEN": TOKEN,
    }


@pytest.mark.parametrize(
    ("breakage", "code", "expected"),
    [
        pytest.param(
            _missing_store,
            3,
            "the article store .*nowhere does not exist or is not a folder: "
            "set store.content_dir",
            id="missing-store",
        ),
        pytest.param(
            _store_is_a_file, 3, "store.md does not exist or is not a folder", id="store-is-a-file"
        ),
        pytest.param(
            _output_under_a_file,
            3,
            "the output folder .*public is not writable: Not a directory "
            r"\(set feeds\.output_dir",
            id="output-under-a-file",
        ),
        pytest.param(
            _data_under_a_file,
            3,
            r"plain-file/data: Not a directory \(set state\.data_dir",
            id="data-under-a-file",
        ),
        pytest.param(
            _database_down,
            3,
            "cannot open the state database postgresql.*Connection refused",
            id="database-down",
        ),
        pytest.param(
            _port_out_of_range,
            2,
            r"service\.port: Input should be less than or equal to 65535",
            id="port-out-of-range",
        ),
        pytest.param(
            _interval_not_a_number,
            2,
            r"service\.publish_every_seconds: Input should be a valid",
            id="interval-not-a-number",
        ),
        pytest.param(
            _target_without_scheme,
            2,
            r"targets\.main\.server: Input should be a valid URL",
            id="target-without-scheme",
        ),
    ],
)
def test_startup_check_fails_with_one_clear_line(
    tmp_path: Path, breakage: Callable[[Path], dict[str, str]], code: int, expected: str
) -> None:
    content = tmp_path / "content"
    write_article(content, "a.md", "An article", datetime.now(UTC))
    env = {**service_env(tmp_path, content), **breakage(tmp_path)}
    started = time.monotonic()
    result = subprocess.run(
        [str(NEWSBOT), "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == code, result.stderr
    assert time.monotonic() - started < 20
    assert "Traceback" not in result.stderr and result.stdout == ""
    # Settings errors name each bad key on a line of its own under one heading.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    message = " ".join(line.strip() for line in lines)
    assert len(lines) == (2 if code == 2 else 1), result.stderr
    assert lines[0].startswith("newsbot: "), result.stderr
    assert re.search(expected, message), message
    assert "pw-Secret-77" not in result.stderr and TOKEN not in result.stderr


def test_a_state_folder_the_service_cannot_write_is_named_with_its_setting(
    tmp_path: Path,
) -> None:
    """SQLite says only "unable to open database file"; the operator is told which folder
    and which setting (the usual cause: a volume owned by another user)."""
    content = tmp_path / "content"
    write_article(content, "a.md", "An article", datetime.now(UTC))
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    command = [str(NEWSBOT), "run"]
    if os.geteuid() == 0:  # root writes past permission bits unless it drops these
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: permissions cannot be held to")
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    env = service_env(tmp_path, content)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsbot: cannot open the state database")
    assert f"the folder {data} is not writable" in lines[0]
    assert "set state.data_dir" in lines[0]


def test_unusable_targets_are_each_named_once_and_the_others_go_on(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """A refused token, a closed port, a web page and an address with a path: one line each,
    naming the setting to change, no traceback; the working target posts, the feeds are served."""
    content = tmp_path / "content"
    write_article(content, "news.md", "News despite broken targets", datetime.now(UTC))
    pages = dict.fromkeys((*ASKED_FIRST, "/api/v1/accounts/verify_credentials"), WEB_PAGE)
    with FakeMastodon(token=TOKEN) as server, loopback_server(pages) as site:
        env = service_env(tmp_path, content, {"main": server})
        broken = {
            "refused": (server.base_url, "tok-refused-NEVER-SHOWN-1"),
            "closed": (f"http://127.0.0.1:{closed_port()}", TOKEN),
            "webpage": (site.base_url, TOKEN),
            "withpath": (server.base_url + "/api/v1/", TOKEN),
        }
        for name, (address, token) in broken.items():
            env[f"NEWSBOT_TARGETS__{name.upper()}__SERVER"] = address
            env[f"NEWSBOT_TARGETS__{name.upper()}__TOKEN"] = token
        service = services(env, tmp_path / "run")
        base = service.url()
        eventually(lambda: posted(server), 20, "the working target did not post")

        def said() -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for entry in service.lines():
                if entry["level"] == "error" and "target" in entry:
                    found.setdefault(entry["target"], []).append(entry["message"])
            return found

        eventually(lambda: set(said()) == set(broken), 20, lambda: f"said: {said()}")
        with http() as client:
            assert client.get(base + "/rss.xml").status_code == 200
        service.stop()
    errors = said()
    assert {name: len(lines) for name, lines in errors.items()} == dict.fromkeys(broken, 1)
    assert "set a new token in targets.refused.token" in errors["refused"][0]
    assert "Connection refused" in errors["closed"][0]
    assert "check targets.closed.server" in errors["closed"][0]
    assert "a web page, not a Mastodon-compatible API" in errors["webpage"][0]
    assert "check targets.webpage.server" in errors["webpage"][0]
    assert errors["withpath"][0].startswith("target not usable: targets.withpath.server has a path")
    assert f"set it to {server.base_url}/" in errors["withpath"][0]
    start = next(e for e in service.lines() if e["message"] == "newsbot is running")
    assert start["store"] == str(content) and start["state"] == str(tmp_path / "data/newsbot.db")
    assert f"main={server.base_url}/" in start["targets"]
    assert "Traceback" not in service.output() and "NEVER-SHOWN-1" not in service.output()
    assert_no_token(service)


def test_a_target_whose_server_comes_back_is_said_once_down_and_once_back(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """The server is down at start (nothing listens on its port), then comes up there."""
    content = tmp_path / "content"
    write_article(content, "news.md", "News while the server was down", datetime.now(UTC))
    port = closed_port()
    env = service_env(tmp_path, content)
    env["NEWSBOT_TARGETS__MAIN__SERVER"] = f"http://127.0.0.1:{port}"
    env["NEWSBOT_TARGETS__MAIN__TOKEN"] = TOKEN
    service = services(env, tmp_path / "run")
    service.url()

    def said(text: str) -> list[str]:
        return [m for m in service.messages() if m.startswith(text)]

    eventually(lambda: said("target stopped"), 20, "the stop was not logged")
    time.sleep(3)  # a few more passes, each stopped the same way
    with FakeMastodon(token=TOKEN, port=port) as server:
        eventually(lambda: posted(server), 20, "nothing was posted once the server was up")
        service.stop()
    assert len(said("target stopped")) == 1, service.messages()
    assert "check targets.main.server" in said("target stopped")[0]
    assert said("target publishing again") == ["target publishing again"]


WEB_PAGE = Resource(b"<!doctype html><title>A blog</title><p>Welcome", "text/html; charset=utf-8")
"""What a blog or a landing page answers: a target's server set to such an address."""
ASKED_FIRST = ("/", "/.well-known/nodeinfo", "/api/v2/instance", "/api/v1/instance")


# -- without a target ---------------------------------------------------------------------------


def test_without_target_logs_how_to_configure_one_and_what_it_would_post(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    write_article(content, "2020/archive.md", "From the archive", now - timedelta(days=5))
    preview = services(service_env(tmp_path, content), tmp_path / "preview")
    preview.url()
    messages = eventually(
        lambda: [m for m in preview.messages() if "would be marked as seen" in m],
        15,
        "no word on the backlog",
    )
    assert messages == ["1 article(s) older than 48 h would be marked as seen, not posted"]
    assert any(
        m.startswith("no target configured")
        and "NEWSBOT_TARGETS__MAIN__SERVER" in m
        and "NEWSBOT_TARGETS__MAIN__TOKEN" in m
        for m in preview.messages()
    )

    summary = "Cars crossed the river on the new bridge this morning."
    drop(content, "2026/bridge.md", "New bridge opens to traffic", now, summary=summary)

    def would_post() -> list[dict[str, Any]]:
        return [e for e in preview.lines() if e["message"].startswith("would post")]

    eventually(would_post, 10, "no 'would post' line for the new article")
    time.sleep(3)  # three more passes: the article is shown once, not at every pass
    shown = would_post()
    assert [e["article"] for e in shown] == ["2026/bridge"], shown
    code, _ = preview.stop(signal.SIGINT)
    assert code == 0, preview.output()

    # A target configured now receives exactly the text the preview showed.
    with FakeMastodon(token=TOKEN) as server:
        env = service_env(tmp_path, content, {"main": server})
        posting = services(env, tmp_path / "posting")
        posting.url()
        eventually(lambda: server.live_statuses(), 15, "nothing posted once configured")
        code, _ = posting.stop()
        assert code == 0
        [status] = server.live_statuses()
    header, text_and_tally = shown[0]["message"].split("\n", 1)
    assert header == "would post (no target configured):"
    assert text_and_tally.startswith(status["text"] + "\n"), (text_and_tally, status["text"])
    assert "New bridge opens to traffic" in status["text"]
    assert url_of("2026/bridge.md") in status["text"]


# -- two services, one PostgreSQL database --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_two_services_on_one_postgresql_database_post_each_article_once(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    paths = [f"2026/report-{n}.md" for n in range(3)]
    for n, path in enumerate(paths[:2]):
        write_article(content, path, f"Report number {n}", now - timedelta(minutes=5 - n))
    with (
        fresh_postgres_database(postgres_server()) as database_url,
        FakeMastodon(token=TOKEN, ignore_idempotency_key=True) as server,
    ):
        # Posts take a while, so that the two services' passes overlap.
        server.configure(slow_delay=0.3)
        server.set_fault_rates("post_status", {"slow": 1.0})
        # Sharing the database means sharing its store index, hence the output folder.
        both = [
            services(
                service_env(
                    tmp_path / name,
                    content,
                    {"main": server},
                    database_url=database_url,
                    output=tmp_path / "public",
                ),
                tmp_path / name,
            )
            for name in ("one", "two")
        ]
        bases = [service.url() for service in both]
        with http() as client:
            for service in both:
                service.ready(client, 20)
        drop(content, paths[2], "Report number 2", now)
        urls = {url_of(path) for path in paths}
        with http() as client:
            for base in bases:
                eventually(
                    lambda base=base: "Report number 2" in client.get(base + "/rss.xml").text,
                    10,
                    "the dropped article is not in the feed",
                )
        eventually(
            lambda: set(posted(server)) == urls,
            len(paths) * SPACING + 20,
            lambda: f"not every article was posted: {posted(server)}",
        )
        time.sleep(2)
        for service in both:
            code, _ = service.stop()
            assert code == 0, service.output()
    assert posted(server) == dict.fromkeys(urls, 1)
    assert len(server.statuses) == len(paths)
    for service in both:
        assert not [
            e for e in service.lines() if e["level"] in ("error", "critical")
        ], service.output()
        assert database_url not in service.output()
        assert_no_token(service)


# -- an unprivileged user, a read-only store -------------------------------------------------


def _as_nobody(command: list[str]) -> list[str]:
    nobody = pwd.getpwnam("nobody")
    return [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
        "--",
        *command,
    ]


def _newsbot_for_nobody() -> list[str]:
    """How ``nobody`` can run this checkout's newsbot, or a skip saying why it cannot.

    The venv's interpreter may be a link into a home folder that only root can
    enter (pyenv under /root): then the system's interpreter of the same
    version runs the venv's packages and this checkout, which nobody can read.
    """
    # The service starts its builds in new interpreters (`sys.executable`): nobody
    # must be able to start that one again, not only the first.
    again = "import subprocess as s, sys; sys.exit(s.run([sys.executable, '-c', '']).returncode)"
    direct = subprocess.run(
        _as_nobody([str(VENV_BIN / "python"), "-c", again]), capture_output=True, text=True
    )
    if direct.returncode == 0:
        return [str(NEWSBOT)]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    site_packages = next(VENV_BIN.parent.glob(f"lib/python{version}/site-packages"), None)
    if python is None or site_packages is None:
        pytest.skip(
            f"nobody cannot run the venv ({direct.stderr.strip()}), no system python{version}"
        )
    command = [
        python,
        "-c",
        "import site, sys; site.addsitedir(sys.argv.pop(1)); "
        "from newsbot.cli import main; sys.argv[0] = 'newsbot'; main()",
        str(site_packages),
    ]
    probe = subprocess.run(_as_nobody([*command, "--version"]), capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run newsbot: {direct.stderr.strip()} / {probe.stderr.strip()}")
    return command


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A folder nobody can enter (pytest's own are root's alone); removed after."""
    folder = Path(tempfile.mkdtemp(prefix="newsbot-service-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch")
def test_runs_as_an_unprivileged_user_with_a_read_only_store(
    world_readable_tmp: Path, services: Callable[..., Service]
) -> None:
    root = world_readable_tmp
    content, data, public = root / "content", root / "data", root / "public"
    write_article(content, "2026/first.md", "First article served", datetime.now(UTC))
    nobody = pwd.getpwnam("nobody")
    for folder in (data, public):
        folder.mkdir()
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    for path in [content, *content.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # root's: read-only for nobody
    before = sorted(p.relative_to(content) for p in content.rglob("*"))
    command = _as_nobody([*_newsbot_for_nobody(), "run"])
    env = service_env(root, content, output=public)
    env["NEWSBOT_STATE__DATA_DIR"] = str(data)
    env["HOME"] = "/nonexistent"
    service = services(env, root / "logs", command)
    base = service.url()
    status = Path(f"/proc/{service.pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    assert uid is not None and {int(uid[1]), int(uid[2])} == {nobody.pw_uid}
    with http() as client:
        service.ready(client, 20)
        assert "First article served" in client.get(base + "/rss.xml").text
        drop(content, "2026/second.md", "Second article served", datetime.now(UTC))
        (content / "2026" / "second.md").chmod(0o644)
        eventually(
            lambda: "Second article served" in client.get(base + "/rss.xml").text,
            10,
            "the dropped article was not built",
        )
    code, _ = service.stop()
    assert code == 0, service.output()
    assert sorted(p.relative_to(content) for p in content.rglob("*")) == [
        *before,
        Path("2026/second.md"),
    ]
    assert (data / "newsbot.db").stat().st_uid == nobody.pw_uid
    assert (public / "rss.xml").stat().st_uid == nobody.pw_uid
    probe = subprocess.run(
        _as_nobody(["sh", "-c", f"echo x > {content}/probe.md"]), capture_output=True, text=True
    )
    assert probe.returncode != 0 and "Permission denied" in probe.stderr
    assert not (content / "probe.md").exists()


# -- builds in a child process ------------------------------------------------------------------


def archive(content: Path, count: int = FIRST_BUILD_ARTICLES) -> None:
    """``count`` old articles: a first build of a second or more, on every core."""
    start = datetime(2019, 1, 1, tzinfo=UTC)
    body = "The council met about the river bridge and the school budget. " * 20
    for n in range(count):
        when = start + timedelta(hours=n)
        write_article(
            content, f"2019/{n:05d}.md", f"Story {n}", when, body=body, tags=[f"T{n % 25}"]
        )


def build_child(service: Service) -> int:
    """The process of the build under way, as soon as there is one (it names itself)."""

    def found() -> list[int]:
        service.assert_alive()
        return [pid for pid in children(service.pid) if comm(pid) == "newsbot-build"]

    return eventually(found, 30, "no build process")[0]


def test_a_service_at_rest_keeps_only_what_it_uses(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """Builds run in a process of their own; the ActivityPub actor (on by default) loads its
    HTTP client and its cryptography only once there is something to deliver or verify.

    The markers are extension modules, mapped into a process once loaded:
    libyaml's (``yaml/_yaml``), which the front matter parser always loads (it
    requires the C loader) and nothing else in the service does; aiohttp's and
    cryptography's, which only deliveries and signatures load; rapidfuzz's,
    which only resolving editors' references loads.
    """
    import yaml

    assert yaml.__with_libyaml__, "the marker needs PyYAML's C extension"
    content = tmp_path / "content"
    archive(content)
    with FakeMastodon(token=TOKEN) as server:
        service = services(service_env(tmp_path, content, {"main": server}), tmp_path / "run")
        child = build_child(service)
        with http() as client:
            ready = service.ready(client, 60)
            assert ready["build"]["files"] == FIRST_BUILD_ARTICLES
            assert not running(child), "the build's process outlived its build"
            assert children(service.pid) == []
            eventually(
                lambda: "main" in client.get(service.url() + "/readyz").json()["targets"],
                10,
                "no pass",
            )
            drop(content, "2026/fresh.md", "Fresh news", datetime.now(UTC))
            url = url_of("2026/fresh.md")
            eventually(lambda: posted(server).get(url) == 1, 15, "the new article was not posted")
            assert client.get(service.url() + "/readyz").json()["build"]["files"] == 1001
        assert not mapped(service.pid, "yaml/_yaml"), "the service parsed articles itself"
        assert not mapped(service.pid, "/aiohttp/"), "aiohttp loaded with nothing to deliver"
        assert not mapped(service.pid, "/cryptography/"), "cryptography loaded with nothing signed"
        assert not mapped(service.pid, "/rapidfuzz/"), "the references' matcher loaded"
        assert children(service.pid) == []
        code, seconds = service.stop()
    assert code == 0 and seconds < SHUTDOWN_TIMEOUT + EXIT_SLACK, service.output()
    assert not [e for e in service.lines() if e["level"] in ("error", "critical")]


def test_a_build_process_killed_is_a_failed_build_and_the_next_one_builds_everything(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """What the kernel's out-of-memory killer does to a large build: the service lives on,
    says the build failed and how, and the next build starts over; the build's own
    workers die with it."""
    content = tmp_path / "content"
    archive(content)
    service = services(service_env(tmp_path, content), tmp_path / "run")
    child = build_child(service)
    workers = eventually(lambda: children(child) or not running(child), 30, "no workers")
    assert workers is not True, "the build was over before it could be killed"
    os.kill(child, signal.SIGKILL)
    with http() as client:
        base = service.url()

        def failed() -> dict[str, Any] | None:
            build = client.get(base + "/readyz").json().get("build")
            return build if build and build.get("error") else None

        build = eventually(failed, 30, "the killed build was not reported")
        assert "SIGKILL" in build["error"], build
        for worker in workers:
            eventually(lambda w=worker: not running(w), 10, "a build worker outlived the build")
        service.assert_alive()
        metrics = client.get(base + "/metrics").text
        assert metric(metrics, "newsbot_build_failures_total") == 1

        drop(content, "2026/fresh.md", "Fresh news", datetime.now(UTC))
        ready = service.ready(client, 60)
        assert ready["build"]["files"] == FIRST_BUILD_ARTICLES + 1
        assert ready["build"]["error"] is None
    assert (tmp_path / "public" / "rss.xml").is_file()
    assert "waiting for another process to finish its build" not in service.messages()
    errors = [e["message"] for e in service.lines() if e["level"] in ("error", "critical")]
    assert errors == [
        "build failed: the build's process was killed by SIGKILL (out of memory, or stopped)"
    ]
    code, _ = service.stop()
    assert code == 0, service.output()


def test_sigterm_during_a_long_build_ends_it_within_the_shutdown_time(
    tmp_path: Path, services: Callable[..., Service]
) -> None:
    """A build still running when the shutdown time is up ends with the service, as a crash
    would end it (the next start builds again), and leaves no process behind."""
    content = tmp_path / "content"
    archive(content)
    budget = 1.0
    env = service_env(tmp_path, content, shutdown_timeout_seconds=budget)
    service = services(env, tmp_path / "run")
    child = build_child(service)
    eventually(lambda: children(child) or not running(child), 30, "no workers")
    assert running(child), "the build was over before the stop"
    family = [child, *children(child)]
    code, seconds = service.stop(signal.SIGTERM)
    assert code == 0, service.output()
    assert seconds < budget + EXIT_SLACK + 1.0, f"{seconds:.1f} s to stop"
    for pid in family:
        eventually(lambda p=pid: not running(p), 10, f"process {pid} outlived the service")
    assert "a job did not finish within 1 s; its request stays recorded" in service.messages()

    again = services(service_env(tmp_path, content), tmp_path / "again")
    with http() as client:
        ready = again.ready(client, 120)
    assert ready["build"]["files"] == FIRST_BUILD_ARTICLES
    code, _ = again.stop()
    assert code == 0, again.output()


# -- parts of the service, in this process ---------------------------------------------------------


def test_a_run_asked_for_while_the_job_runs_comes_once_right_after_it() -> None:
    """APScheduler drops a due run while the job runs; `Coalesced` keeps exactly one."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start()
    runs: list[float] = []
    running, release = threading.Event(), threading.Event()

    def job() -> None:
        runs.append(time.monotonic())
        running.set()
        release.wait(10)

    try:
        coalesced = Coalesced(scheduler, job, "job")
        scheduler.add_job(coalesced.run, next_run_time=datetime.now(UTC))
        assert running.wait(10)
        for _ in range(3):
            coalesced.request()
        time.sleep(0.3)
        assert len(runs) == 1, "two runs at once"
        release.set()
        eventually(lambda: len(runs) == 2, 5, "the run asked for never came")
        time.sleep(0.3)
        assert len(runs) == 2, "three requests made more than one run"
        coalesced.request()
        eventually(lambda: len(runs) == 3, 5, "a request when idle did not run")
    finally:
        release.set()
        scheduler.shutdown()


def test_a_one_off_run_handed_out_as_the_scheduler_stops_is_no_error() -> None:
    """``shutdown`` marks the scheduler stopped before it takes the job stores' lock; the
    scheduler's thread, handing out a one-off run in that window, then removes a job the
    stopped scheduler looks for among its pending jobs only (agronholm/apscheduler#104)."""
    from apscheduler.jobstores.base import JobLookupError
    from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED

    from newsbot.service import jobs

    scheduler = jobs.scheduler()
    scheduler.start(paused=True)
    one_off = scheduler.add_job(lambda: None)
    with pytest.raises(JobLookupError):
        scheduler.remove_job("no such job")  # while running, still an error
    scheduler.state = STATE_STOPPED  # the window: shutdown's first step
    scheduler.remove_job(one_off.id)  # what the scheduler's thread does in it
    scheduler.state = STATE_RUNNING
    scheduler.shutdown()


def test_a_job_changing_the_schedule_as_the_service_stops_does_not_hang_the_stop(
    tmp_path: Path,
) -> None:
    """APScheduler's shutdown holds its job stores' lock while it waits for running jobs, and
    a job that adds a run (a build asking for passes) takes that lock: each waited for the
    other until the shutdown budget ran out. The stop now waits for a change under way, and
    changes asked for after it are dropped."""
    from newsbot.app import create_app
    from newsbot.service.runner import Service
    from support.stores import make_settings

    (tmp_path / "content").mkdir()
    app = create_app(make_settings(tmp_path, tmp_path / "content"))
    service = Service(app)
    changing, added = threading.Event(), threading.Event()

    def change() -> None:  # a change under way when the stop begins
        changing.set()
        time.sleep(0.5)  # the stop has started meanwhile
        service.scheduler.add_job(lambda: None, name="one-off")
        added.set()

    def job() -> None:
        service._while_running(change)
        service._while_running(lambda: pytest.fail("a change after the stop was made"))

    try:
        service.scheduler.start()
        service.scheduler.add_job(job)
        assert changing.wait(10)
        started = time.monotonic()
        service._stop_scheduler()
        assert added.is_set()
        assert not service.abandoned, "the stop waited out its budget"
        assert time.monotonic() - started < 10
    finally:
        service.http.close()
        app.close()


def test_watcher_sees_a_store_in_a_hidden_folder_and_ignores_hidden_files(
    tmp_path: Path,
) -> None:
    store = tmp_path / ".newsroom" / "content"
    (store / "2026").mkdir(parents=True)
    changes: list[float] = []
    watcher = Watcher(store, lambda: changes.append(time.monotonic()), debounce_ms=50)
    watcher.start()
    try:
        time.sleep(0.5)  # watching has begun
        deep = store / ".git" / "objects" / "ab"
        deep.mkdir(parents=True)
        (deep / "cdef").write_text("a git object")
        (store / "2026" / ".article.md.swp").write_text("an editor's swap file")
        time.sleep(1.0)
        assert changes == [], "a hidden file or folder set off a build"
        (store / "article.md").write_text("---\ntitle: T\ndate: 2026-01-01\n---\nBody\n")
        eventually(lambda: changes, 5, "a new article at the top of the store went unseen")
    finally:
        watcher.stop(timeout=5)
    assert not watcher._thread.is_alive()
