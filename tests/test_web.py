"""The HTTP app on a real uvicorn server on loopback: files, validators, gzip, probes, metrics.

Every test talks HTTP to a server on 127.0.0.1 (a free port, its own thread),
serving a temporary output folder written the way the builder writes it
(``Output.write``: temporary file, then rename). Raw requests go through
``http.client``, which sends paths exactly as given (``/../``, ``%2e%2e``)
and leaves gzip bodies compressed; the rest use httpx.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsbot.build.builder import BuildReport
from newsbot.build.output import Output
from newsbot.errors import Problem
from newsbot.publish.report import PassReport, StopReason
from newsbot.service.health import Status
from newsbot.service.metrics import Metrics
from newsbot.web.asgi import web_app
from newsbot.web.fast import FastPath
from newsbot.web.files import OutputFiles
from newsbot.web.server import WebServer, serve
from support.readers import newsboat_items, newsboat_reload, newsboat_user_errors

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_FEED_TYPE = "application/feed+json; charset=utf-8"
SECRET = b"secret outside the output folder\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def rss(titles: list[str]) -> bytes:
    """A small valid RSS 2.0 feed, long enough to be worth gzip."""
    items = "".join(
        f"<item><title>{title}</title><link>http://127.0.0.1/articles/{n}/</link>"
        f'<guid isPermaLink="false">tag:example.org,2015:{n}</guid>'
        f"<pubDate>Sat, 01 Mar 2025 {n % 24:02d}:00:00 +0000</pubDate>"
        f"<description>Article number {n}, with enough words to compress well.</description>"
        "</item>"
        for n, title in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
        "<title>Newsroom</title><link>http://127.0.0.1/</link>"
        f"<description>The latest articles.</description>{items}</channel></rss>\n"
    ).encode()


ATOM = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    b"<id>tag:example.org,2015:feed</id><title>Newsroom</title>"
    b"<updated>2025-03-01T12:00:00Z</updated></feed>\n"
)
JSON_FEED = b'{"version": "https://jsonfeed.org/version/1.1", "title": "Newsroom", "items": []}\n'


def etag_of(body: bytes, coding: str | None = None) -> str:
    """The ETag the server should give ``body`` (128 bits of SHA-256, plus the coding)."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    return f'"{digest}"' if coding is None else f'"{digest}-{coding}"'


class Recorder:
    """ASGI middleware that remembers (method, path, status) of every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, record)

    def observe(
        self, method: str, path: str, status: int, sent: int, seconds: float, client: str | None
    ) -> None:
        """The server's fast path reports here what it answered from the cache."""
        self.seen.append((method, path, status))


@dataclass
class Site:
    """A running server, what it serves and what feeds its probes and metrics."""

    root: Path
    output: Output
    status: Status
    metrics: Metrics
    recorder: Recorder
    server: WebServer
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.server.url, trust_env=False, timeout=10)

    def raw(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """One request sent exactly as written; the body exactly as received."""
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            connection.close()


def write_site(root: Path) -> Output:
    """The output folder: feeds, pages, media, and things that must never be served."""
    output = Output(root)
    output.write("rss.xml", rss([f"Article {n}" for n in range(20)]))
    output.write("atom.xml", ATOM)
    output.write("feed.json", JSON_FEED)
    output.write("index.html", b"<!doctype html><title>Home</title>\n")
    output.write("tags/x/index.html", b"<!doctype html><title>Tag x</title>\n")
    output.write("tags/x/rss.xml", rss(["Tagged"]))
    output.write("articles/one", b"<!doctype html><title>One</title>\n")
    output.write("media/lead.png", PNG)
    (root / "tags" / "empty").mkdir(parents=True)
    (root / ".rss.xml.abc123").write_bytes(b"half a feed")
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "file.txt").write_bytes(SECRET)
    (root.parent / "secret.txt").write_bytes(SECRET)
    (root / "leak.txt").symlink_to(root.parent / "secret.txt")
    (root / "outside").symlink_to(outside)
    (root / "alias.xml").symlink_to(root / "atom.xml")
    (root / "loop").symlink_to(root / "loop")
    output.write("tags/café/index.html", b"<!doctype html><title>Caf\xc3\xa9</title>\n")
    return output


@contextmanager
def running_site(root: Path) -> Iterator[Site]:
    """A server on a free loopback port serving a fresh site written under ``root``."""
    output = write_site(root)
    status = Status(clock=lambda: NOW)
    metrics = Metrics(clock=lambda: NOW)
    files = OutputFiles(root)  # as the service wires it: the server answers cached files itself
    recorder = Recorder(web_app(root, status, metrics.registry, files=files))
    fast = FastPath(files.answer_cached, recorder.observe)
    with WebServer(recorder, "127.0.0.1", 0, fast=fast) as server:
        running = Site(root, output, status, metrics, recorder, server)
        yield running
        running.client.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A site of the test's own, for tests that change files, status or metrics."""
    with running_site(tmp_path / "public") as running:
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One site for the tests that only read (a server costs 0.2 s to stop)."""
    with running_site(tmp_path_factory.mktemp("served") / "public") as running:
        yield running


# -- files and media types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/rss.xml", RSS_TYPE),
        ("/atom.xml", ATOM_TYPE),
        ("/feed.json", JSON_FEED_TYPE),
        ("/tags/x/rss.xml", RSS_TYPE),
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/articles/one", "text/html; charset=utf-8"),
        ("/media/lead.png", "image/png"),
    ],
)
def test_media_types(served: Site, path: str, content_type: str) -> None:
    response = served.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"


def test_feed_headers(served: Site) -> None:
    response = served.client.get("/rss.xml", headers={"Accept-Encoding": "identity"})
    body = (served.root / "rss.xml").read_bytes()
    assert response.content == body
    assert response.headers["etag"] == etag_of(body)
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-length"] == str(len(body))
    mtime = (served.root / "rss.xml").stat().st_mtime
    assert response.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert response.headers["vary"] == "Accept-Encoding"


def test_media_is_neither_gzipped_nor_varied(served: Site) -> None:
    status, headers, body = served.raw("/media/lead.png", {"Accept-Encoding": "gzip"})
    assert (status, body) == (200, PNG)
    assert "content-encoding" not in headers
    assert "vary" not in headers
    assert headers["cache-control"] == "public, max-age=86400"


def test_head_has_the_get_headers_and_no_body(served: Site) -> None:
    for encoding in ("identity", "gzip"):
        request = {"Accept-Encoding": encoding}
        get_status, get_headers, get_body = served.raw("/rss.xml", request)
        head_status, head_headers, head_body = served.raw("/rss.xml", request, method="HEAD")
        assert (get_status, head_status, head_body) == (200, 200, b"")
        assert head_headers["content-length"] == str(len(get_body))
        for name in ("etag", "last-modified", "content-type", "cache-control", "vary"):
            assert head_headers[name] == get_headers[name]


def test_large_files_stream_with_validators(site: Site) -> None:
    big = os.urandom(5 * 1024 * 1024 + 17)
    site.output.write("media/talk.mp3", big)
    response = site.client.get("/media/talk.mp3")
    assert response.status_code == 200
    assert response.content == big
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(big))
    assert response.headers["etag"] == etag_of(big)
    again = site.client.get("/media/talk.mp3", headers={"If-None-Match": etag_of(big)})
    assert again.status_code == 304
    head = site.client.head("/media/talk.mp3")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(big))


def test_other_methods_are_not_allowed(served: Site) -> None:
    assert served.client.post("/rss.xml", content=b"x").status_code == 405


# -- conditional GET ------------------------------------------------------------------


def test_if_none_match_gives_304(served: Site) -> None:
    identity = {"Accept-Encoding": "identity"}
    first = served.client.get("/rss.xml", headers=identity)
    etag = first.headers["etag"]
    second = served.client.get("/rss.xml", headers={**identity, "If-None-Match": etag})
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["etag"] == etag
    assert second.headers["cache-control"] == "public, max-age=300"
    assert second.headers["vary"] == "Accept-Encoding"
    assert "content-length" not in second.headers or second.headers["content-length"] == "0"
    listed = served.client.get(
        "/rss.xml", headers={**identity, "If-None-Match": f'"other", W/{etag}'}
    )
    assert listed.status_code == 304
    star = served.client.get("/rss.xml", headers={**identity, "If-None-Match": "*"})
    assert star.status_code == 304
    other = served.client.get("/rss.xml", headers={**identity, "If-None-Match": '"other"'})
    assert other.status_code == 200


def test_if_modified_since_gives_304(served: Site) -> None:
    first = served.client.get("/atom.xml")
    modified = first.headers["last-modified"]
    assert (
        served.client.get("/atom.xml", headers={"If-Modified-Since": modified}).status_code == 304
    )
    later = formatdate(time.time() + 3600, usegmt=True)
    assert served.client.get("/atom.xml", headers={"If-Modified-Since": later}).status_code == 304
    older = formatdate((served.root / "atom.xml").stat().st_mtime - 60, usegmt=True)
    assert served.client.get("/atom.xml", headers={"If-Modified-Since": older}).status_code == 200
    bad = served.client.get("/atom.xml", headers={"If-Modified-Since": "yesterday"})
    assert bad.status_code == 200


def test_if_none_match_takes_precedence(served: Site) -> None:
    first = served.client.get("/atom.xml")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    old = formatdate(0, usegmt=True)
    stale_tag = {"If-None-Match": '"stale"', "If-Modified-Since": modified}
    assert served.client.get("/atom.xml", headers=stale_tag).status_code == 200
    old_date = {"If-None-Match": etag, "If-Modified-Since": old}
    assert served.client.get("/atom.xml", headers=old_date).status_code == 304


def test_etag_follows_content_not_time(site: Site) -> None:
    path = site.root / "atom.xml"
    first = site.client.get("/atom.xml")
    later = path.stat().st_mtime + 120
    os.utime(path, (later, later))
    touched = site.client.get("/atom.xml")
    assert touched.headers["etag"] == first.headers["etag"]
    assert touched.headers["last-modified"] != first.headers["last-modified"]
    both = {
        "If-None-Match": first.headers["etag"],
        "If-Modified-Since": first.headers["last-modified"],
    }
    assert site.client.get("/atom.xml", headers=both).status_code == 304
    changed = ATOM.replace(b"Newsroom", b"Changed newsroom")
    site.output.write("atom.xml", changed)
    after = site.client.get("/atom.xml", headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.content == changed
    assert after.headers["etag"] == etag_of(changed)


# -- gzip -----------------------------------------------------------------------------


def test_gzip_when_accepted(served: Site) -> None:
    body = (served.root / "rss.xml").read_bytes()
    status, headers, raw = served.raw("/rss.xml", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == RSS_TYPE
    assert headers["vary"] == "Accept-Encoding"
    assert int(headers["content-length"]) == len(raw) < len(body)
    assert gzip.decompress(raw) == body
    assert headers["etag"] == etag_of(body, "gzip") != etag_of(body)


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br", "deflate, gzip; q=0.0"])
def test_no_gzip_unless_accepted(served: Site, accept: str) -> None:
    status, headers, raw = served.raw("/rss.xml", {"Accept-Encoding": accept})
    assert status == 200
    assert "content-encoding" not in headers
    assert raw == (served.root / "rss.xml").read_bytes()
    assert headers["vary"] == "Accept-Encoding"


def test_conditional_gzip_request_gets_304(served: Site) -> None:
    _, headers, _ = served.raw("/rss.xml", {"Accept-Encoding": "gzip"})
    conditional = {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]}
    status, again, raw = served.raw("/rss.xml", conditional)
    assert (status, raw) == (304, b"")
    assert again["etag"] == headers["etag"]
    assert again["vary"] == "Accept-Encoding"
    assert "content-encoding" not in again
    by_date = {"Accept-Encoding": "gzip", "If-Modified-Since": headers["last-modified"]}
    assert served.raw("/rss.xml", by_date)[0] == 304
    # The identity ETag does not validate the gzip variant, nor the other way round.
    identity_tag = etag_of((served.root / "rss.xml").read_bytes())
    assert (
        served.raw("/rss.xml", {"Accept-Encoding": "gzip", "If-None-Match": identity_tag})[0] == 200
    )
    assert served.raw("/rss.xml", {"If-None-Match": headers["etag"]})[0] == 200


def test_small_files_are_not_gzipped(served: Site) -> None:
    status, headers, raw = served.raw("/feed.json", {"Accept-Encoding": "gzip"})
    assert (status, raw) == (200, JSON_FEED)
    assert "content-encoding" not in headers
    assert headers["etag"] == etag_of(JSON_FEED)


# -- where paths land -----------------------------------------------------------------


def test_folder_index_and_redirect(served: Site) -> None:
    page = served.client.get("/tags/x/")
    assert page.status_code == 200
    assert page.content == (served.root / "tags/x/index.html").read_bytes()
    redirect = served.client.get("/tags/x", follow_redirects=False)
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "/tags/x/"
    with_query = served.client.get("/tags/x?utm=1", follow_redirects=False)
    assert with_query.headers["location"] == "/tags/x/?utm=1"
    accented = served.client.get("/tags/caf%C3%A9", follow_redirects=False)
    assert accented.headers["location"] == "/tags/caf%C3%A9/"
    assert served.client.get("/tags/caf%C3%A9/").text.startswith("<!doctype html><title>Café")
    assert served.client.get("/").content == (served.root / "index.html").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/tags/empty/",  # a folder without an index is never listed
        "/tags/empty",
        "/tags/",
        "/media/",
        "/rss.xml/",  # a file asked for as a folder
        "/missing.xml",
        "/.rss.xml.abc123",  # the builder's temporary files are hidden
        "/tags/x/index.html/..",
        "/loop",  # a symlink loop
        "/loop/",
        "/" + "a" * 300,  # a name too long for the file system
        "/a%00b",
    ],
)
def test_not_found(served: Site, path: str) -> None:
    status, headers, body = served.raw(path)
    assert status == 404
    assert len(body) < 100
    assert headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/tags/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/tags/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/tags/x/..%2F..%2F..%2Fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/.%2e/secret.txt",
        "//etc/passwd",
        "/%2Fetc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/rss.xml%00.png",
        "/leak.txt",  # a symlink pointing out of the folder
        "/outside/file.txt",  # a folder symlink pointing out of it
        "/outside/",
    ],
)
def test_no_way_out_of_the_folder(served: Site, path: str) -> None:
    status, _, body = served.raw(path)
    assert status == 404
    assert SECRET not in body
    assert b"root:" not in body


def test_no_redirect_to_another_host(served: Site) -> None:
    for path in ("//example.org", "/%2F%2Fexample.org", "/%2Fexample.org"):
        status, headers, _ = served.raw(path)
        assert status == 404
        assert "location" not in headers


def test_symlinks_inside_the_folder_are_followed(served: Site) -> None:
    response = served.client.get("/alias.xml")
    assert response.status_code == 200
    assert response.content == ATOM


def test_atomic_replacement_is_never_seen_half_done(site: Site) -> None:
    """While the builder rewrites a feed, every answer is one whole version with its own ETag."""
    versions = [rss([f"Version {v} item {n}" for n in range(200)]) for v in range(2)]
    stop = threading.Event()

    def rewrite() -> None:
        for round_ in range(5_000):
            if stop.is_set():
                return
            site.output.write("rss.xml", versions[round_ % 2])
            time.sleep(0.001)

    writer = threading.Thread(target=rewrite)
    writer.start()
    seen = set()
    try:
        for _ in range(60):
            response = site.client.get("/rss.xml", headers={"Accept-Encoding": "identity"})
            assert response.headers["etag"] == etag_of(response.content)
            assert response.headers["content-length"] == str(len(response.content))
            seen.add(response.content)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert seen & set(versions)


# -- probes ---------------------------------------------------------------------------


def test_healthz(served: Site) -> None:
    response = served.client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")
    assert response.headers["cache-control"] == "no-store"


def test_readyz_before_and_after_builds(site: Site) -> None:
    before = site.client.get("/readyz")
    assert before.status_code == 503
    assert before.json()["reasons"] == ["no build yet"]
    assert before.json()["build"] is None
    site.status.record_build(BuildReport(files=3, seconds=1.25))
    after = site.client.get("/readyz")
    assert after.status_code == 200
    body = after.json()
    assert body["ready"] is True
    assert body["build"] == {
        "at": NOW.isoformat(),
        "seconds": 1.25,
        "error": None,
        "files": 3,
        "problems": 0,
        "suspect": None,
    }
    assert body["warnings"] == []
    assert body["started_at"] == NOW.isoformat()
    site.status.record_build(None, "disk full")
    failed = site.client.get("/readyz")
    assert failed.status_code == 503
    assert failed.json()["build"]["error"] == "disk full"


def test_readyz_with_stopped_targets(site: Site) -> None:
    site.status.record_build(BuildReport(seconds=0.5))
    site.status.record_pass(PassReport("social", posted=2, failed=1, waiting=4, retries=1))
    site.status.record_pass(PassReport("other", stopped="server unavailable: 503"))
    transient = site.client.get("/readyz")
    assert transient.status_code == 200
    targets = transient.json()["targets"]
    assert targets["social"] == {
        "at": NOW.isoformat(),
        "error": None,
        "fatal": False,
        "posted": 2,
        "edited": 0,
        "deleted": 0,
        "skipped": 0,
        "failed": 1,
        "retries": 1,
        "pending": 4,
        "busy": None,
        "held": 0,
        "uncertain": 0,
        "length_errors": 0,
        "recomposed": 0,
        "rules": "",
        "stopped_since": None,
    }
    assert targets["other"]["error"] == "server unavailable: 503"
    site.status.record_pass(PassReport("other", busy="host-b:4242"))
    busy = site.client.get("/readyz")
    assert busy.status_code == 200
    assert busy.json()["targets"]["other"]["busy"] == "host-b:4242"
    refused = "the access token was refused: 401 Unauthorized"
    # Readiness is decided from the stop's reason, not from its wording.
    site.status.record_pass(PassReport("social", stopped=refused, stop=StopReason.RATE_LIMITED))
    assert site.client.get("/readyz").json()["targets"]["social"]["fatal"] is False
    site.status.record_pass(PassReport("social", stopped=refused, stop=StopReason.TOKEN_REFUSED))
    stopped = site.client.get("/readyz")
    # The feeds stay online: a refused posting token is for the publishing monitor.
    assert stopped.status_code == 200
    assert stopped.json()["targets"]["social"]["fatal"] is True
    assert stopped.json()["reasons"] == []
    publishing = site.client.get("/healthz/publishing")
    assert publishing.status_code == 503
    assert publishing.json()["problems"] == [f"target social stopped: {refused}"]
    assert publishing.json()["targets"]["social"]["stopped_since"] == NOW.isoformat()
    site.status.record_pass(PassReport("social", posted=1))
    assert site.client.get("/healthz/publishing").status_code == 200
    site.status.record_pass(PassReport("social", uncertain=2))
    uncertain = site.client.get("/healthz/publishing")
    assert uncertain.status_code == 503
    assert uncertain.json()["targets"]["social"] == {
        "ok": False, "stopped_since": None, "why": None, "uncertain": 2,
    }  # fmt: skip


# -- metrics --------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_what_the_service_reported(site: Site) -> None:
    problem = Problem(path="bad.md", message="no title")
    report = BuildReport(
        files=12, feeds_written=3, pages_written=5, seconds=2.0, problems=[problem]
    )
    site.metrics.observe_build(report, articles=11)
    site.metrics.observe_build(None, "database locked")
    site.metrics.observe_pass(PassReport("social", posted=2, failed=1, waiting=3, retries=4))
    site.metrics.observe_pass(
        PassReport(
            "social", posted=1, stopped="rate limited until later", stop=StopReason.RATE_LIMITED
        )
    )
    site.metrics.observe_pass(PassReport("social", posted=9, busy="host-b:4242"))
    response = site.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    social = (("target", "social"),)
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("newsbot_store_articles", ()): 11,
        ("newsbot_store_files", ()): 12,
        ("newsbot_build_problems", ()): 1,
        ("newsbot_builds_total", ()): 2,
        ("newsbot_build_failures_total", ()): 1,
        ("newsbot_build_duration_seconds_count", ()): 1,
        ("newsbot_build_duration_seconds_sum", ()): 2.0,
        ("newsbot_feeds_written_total", ()): 3,
        ("newsbot_pages_written_total", ()): 5,
        ("newsbot_build_last_success_timestamp_seconds", ()): NOW.timestamp(),
        ("newsbot_posts_total", (("outcome", "sent"), *social)): 3,
        ("newsbot_posts_total", (("outcome", "failed"), *social)): 1,
        ("newsbot_posts_total", (("outcome", "edited"), *social)): 0,
        ("newsbot_posts_pending", social): 0,
        ("newsbot_publish_retries_total", social): 4,
        ("newsbot_publish_passes_total", social): 2,
        ("newsbot_publish_stopped", social): 1,
        ("newsbot_publish_busy_passes_total", social): 1,
        ("newsbot_publish_last_success_timestamp_seconds", social): NOW.timestamp(),
    }
    assert {key: values.get(key) for key in expected} == expected


def test_metrics_registries_are_separate() -> None:
    first, second = Metrics(), Metrics()
    first.observe_build(BuildReport(seconds=1.0))
    assert first.registry is not second.registry
    assert samples(generate_latest(first.registry).decode())[("newsbot_builds_total", ())] == 1
    assert samples(generate_latest(second.registry).decode())[("newsbot_builds_total", ())] == 0


# -- running the server ---------------------------------------------------------------


def test_serve_leaves_signals_to_the_caller(tmp_path: Path) -> None:
    """serve() on the main thread keeps the service's signal handlers and stops when told.

    (With Python's default SIGINT handler in place, asyncio itself would take
    SIGINT while the loop runs; a service that owns signals has its own.)
    """
    app = web_app(tmp_path, Status(), Metrics().registry)

    def service_handler(signum: int, frame: object) -> None:
        """Stands in for the service's own handler."""

    previous = {sig: signal.signal(sig, service_handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    seen: dict[str, Any] = {}

    def probe(server: WebServer) -> None:
        seen["during"] = [signal.getsignal(sig) for sig in previous]

        def fetch_then_stop() -> None:
            with httpx.Client(trust_env=False) as client:
                seen["health"] = client.get(server.url + "/healthz").status_code
            server.stop()

        threading.Thread(target=fetch_then_stop).start()

    try:
        serve(app, "127.0.0.1", 0, on_started=probe)
        seen["after"] = [signal.getsignal(sig) for sig in previous]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    handlers = [service_handler, service_handler]
    assert seen == {"during": handlers, "health": 200, "after": handlers}


def test_port_in_use_fails_in_the_caller(tmp_path: Path) -> None:
    app = web_app(tmp_path, Status(), Metrics().registry)
    with WebServer(app, "127.0.0.1", 0) as first:
        with pytest.raises(OSError):
            WebServer(app, "127.0.0.1", first.port)
        with httpx.Client(trust_env=False) as client:
            assert client.get(first.url + "/healthz").status_code == 200


def test_kept_alive_connections_answer_without_delay(served: Site) -> None:
    """Nagle's algorithm with delayed ACKs would add about 40 ms to each of these."""
    served.client.get("/healthz")
    started = time.perf_counter()
    for _ in range(25):
        assert served.client.get("/atom.xml").status_code == 200
    assert time.perf_counter() - started < 0.75


def test_stop_ends_the_thread(tmp_path: Path) -> None:
    server = WebServer(web_app(tmp_path, Status(), Metrics().registry), "127.0.0.1", 0)
    server.start()
    assert server.running
    server.stop(timeout=10)
    assert not server.running
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as client:
        client.get(server.url + "/healthz")


# -- a real reader --------------------------------------------------------------------


@pytest.mark.readers
def test_newsboat_revalidates_with_304(site: Site, tmp_path: Path) -> None:
    """Newsboat 2.21 sends conditional headers only from its third fetch of a new feed."""
    url = site.server.url + "/rss.xml"
    workdir = tmp_path / "newsboat"
    items = newsboat_items(url, workdir)
    assert len(items) == 20
    for _ in range(2):
        log = newsboat_reload(url, workdir)
        assert newsboat_user_errors(log) == []
    fetches = [status for method, path, status in site.recorder.seen if path == "/rss.xml"]
    assert fetches == [200, 200, 304]


# -- the server's fast path ------------------------------------------------------------

FAST_CASES = [
    ("GET", "/rss.xml", {}),
    ("GET", "/rss.xml", {"Accept-Encoding": "gzip"}),
    ("GET", "/rss.xml", {"Accept-Encoding": "gzip;q=0"}),
    ("HEAD", "/rss.xml", {"Accept-Encoding": "gzip"}),
    ("GET", "/rss.xml", {"If-None-Match": "IDENTITY"}),
    ("GET", "/rss.xml", {"If-None-Match": "GZIP", "Accept-Encoding": "gzip"}),
    ("GET", "/rss.xml", {"If-None-Match": "IDENTITY", "Accept-Encoding": "gzip"}),
    ("GET", "/rss.xml", {"If-Modified-Since": "Sun, 06 Nov 2044 08:49:37 GMT"}),
    ("GET", "/rss.xml", {"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"}),
    ("GET", "/", {}),
    ("GET", "/tags/x/", {"Connection": "close"}),
    ("GET", "/articles/one", {}),
    ("GET", "/media/lead.png", {"Accept-Encoding": "gzip"}),
    ("GET", "/tags/caf%C3%A9/", {}),
    ("GET", "/alias.xml?x=1", {}),
]


def test_the_fast_path_answers_exactly_as_the_app(tmp_path: Path) -> None:
    """Each request, once the file is cached, gets the same bytes from the protocol as from the app.

    The app's answers come from a server without the fast path; the fast
    path's are counted, so a request that fell through to the app is seen.
    """
    root = tmp_path / "public"
    write_site(root)
    files = OutputFiles(root)
    answered: list[tuple[str, str, int]] = []
    fast = FastPath(files.answer_cached, lambda m, p, s, *_: answered.append((m, p, s)))
    app = web_app(root, Status(), Metrics().registry, files=files)
    plain = web_app(root, Status(), Metrics().registry)
    with (
        WebServer(app, "127.0.0.1", 0, fast=fast) as quick,
        WebServer(plain, "127.0.0.1", 0) as slow,
    ):
        identity = etag_of(rss([f"Article {n}" for n in range(20)]))
        gzipped = etag_of(rss([f"Article {n}" for n in range(20)]), "gzip")
        statuses = []
        for method, path, headers in FAST_CASES:
            sent = {
                k: {"IDENTITY": identity, "GZIP": gzipped}.get(v, v) for k, v in headers.items()
            }
            _fetch(quick, method, path, sent)  # the first request fills the cache
            before = len(answered)
            assert _fetch(quick, method, path, sent) == _fetch(slow, method, path, sent), path
            assert len(answered) == before + 1, f"{method} {path} {headers} fell through"
            statuses.append(answered[-1][2])
        assert statuses.count(304) == 3  # If-None-Match twice, If-Modified-Since once


def test_the_fast_path_sees_a_replaced_file_at_once(tmp_path: Path) -> None:
    root = tmp_path / "public"
    output = write_site(root)
    files = OutputFiles(root)
    with WebServer(
        web_app(root, Status(), Metrics().registry, files=files),
        "127.0.0.1",
        0,
        fast=FastPath(files.answer_cached),
    ) as server:
        first = _fetch(server, "GET", "/atom.xml", {})
        assert _fetch(server, "GET", "/atom.xml", {}) == first
        output.write("atom.xml", ATOM.replace(b"Newsroom", b"Renamed newsroom"))
        status, headers, body = _fetch(server, "GET", "/atom.xml", {})
        assert b"Renamed newsroom" in body
        assert headers["etag"] != first[1]["etag"]
        (root / "atom.xml").unlink()
        assert _fetch(server, "GET", "/atom.xml", {})[0] == 404


def test_the_fast_path_leaves_declined_requests_to_the_app(tmp_path: Path) -> None:
    root = tmp_path / "public"
    write_site(root)
    files = OutputFiles(root)
    answered: list[str] = []
    fast = FastPath(
        files.answer_cached,
        lambda m, p, *_: answered.append(p),
        declines=lambda headers: (b"accept", b"application/activity+json") in headers,
    )
    with WebServer(
        web_app(root, Status(), Metrics().registry, files=files), "127.0.0.1", 0, fast=fast
    ) as server:
        for _ in range(2):
            _fetch(server, "GET", "/articles/one", {"Accept": "application/activity+json"})
            _fetch(server, "POST", "/articles/one", {})
        assert answered == []
        _fetch(server, "GET", "/articles/one", {})
        assert answered == ["/articles/one"]


def _fetch(
    server: WebServer, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection: status, headers (without Date) and body as received."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(method, path, headers={"Accept-Encoding": "identity", **headers})
        response = connection.getresponse()
        got = {k.lower(): v for k, v in response.getheaders() if k.lower() != "date"}
        return response.status, got, response.read()
    finally:
        connection.close()
