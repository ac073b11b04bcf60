"""Real feed readers run on real feed files, for tests to see what subscribers see.

The validator rules (``feedcheck``) are the pass/fail gate; these readers show
that the feeds also work in practice: feedparser (Python), sfeed (its own C
parser) and Newsboat (a terminal reader fetching over HTTP, run headless).
Each helper returns plain dicts with the same keys across readers where they
overlap: ``title``, ``link``, ``id`` and ``date`` (an aware UTC datetime).

Programs come from Debian packages installed by ``tests/setup/tools.sh``.
A missing program skips the test on a developer machine and fails it under CI
(``CI`` set), so that a CI machine without the tools cannot pass quietly.
"""

from __future__ import annotations

import calendar
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import pytest

READER_TIMEOUT = 60
"""Seconds a reader may take on a small feed before the test gives up."""


def require_program(name: str) -> str:
    """The path of program ``name``; fail under CI, skip elsewhere, when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed: run tests/setup/tools.sh (apt-get install -y {name})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _utc_from_timestamp(value: str | int | None) -> datetime | None:
    """A UNIX timestamp as an aware UTC datetime; None when the reader found no date."""
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


# -- feedparser -------------------------------------------------------------------


def feedparser_items(data: bytes) -> list[dict[str, Any]]:
    """Items as feedparser 6 reads them (RSS and Atom only).

    ``bozo`` only says the XML was well-formed, and feedparser drops dates it
    cannot read, so callers should assert on the fields.
    """
    parsed = feedparser.parse(data)
    if parsed.bozo:
        raise AssertionError(f"feedparser: {parsed.bozo_exception!r}")
    return [
        {
            "title": entry.get("title"),
            "link": entry.get("link"),
            "id": entry.get("id"),
            "date": _struct_time_to_utc(entry.get("published_parsed")),
            # Plain dict access: feedparser's own mapping falls back to published, noisily.
            "updated": _struct_time_to_utc(dict.get(entry, "updated_parsed")),
            "summary": entry.get("summary"),
            "content": [part.value for part in entry.get("content", [])],
            "enclosures": [dict(link) for link in entry.get("enclosures", [])],
            "tags": [tag.term for tag in entry.get("tags", [])],
            "authors": [author.get("name") for author in entry.get("authors", [])],
        }
        for entry in parsed.entries
    ]


def _struct_time_to_utc(value: Any) -> datetime | None:
    """feedparser's UTC ``struct_time`` as an aware datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


# -- sfeed ----------------------------------------------------------------------------

_SFEED_FIELDS = (
    "timestamp",
    "title",
    "link",
    "content",
    "content_type",
    "id",
    "author",
    "enclosure",
    "categories",
)


def _sfeed_unescape(value: str) -> str:
    """Undo sfeed's escaping of the content field (``\\n``, ``\\t``, ``\\\\``)."""
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def sfeed_items(data: bytes) -> list[dict[str, Any]]:
    """Items as ``sfeed`` prints them: one TAB-separated line per item (see sfeed(5))."""
    program = require_program("sfeed")
    result = subprocess.run(
        [program], input=data, capture_output=True, timeout=READER_TIMEOUT, check=True
    )
    items = []
    for line in result.stdout.decode("utf-8").split("\n")[:-1]:
        values = dict(zip(_SFEED_FIELDS, line.split("\t"), strict=True))
        items.append(
            {
                **values,
                "content": _sfeed_unescape(values["content"]),
                "categories": [c for c in values["categories"].split("|") if c],
                "date": _utc_from_timestamp(values["timestamp"]),
            }
        )
    return items


# -- a loopback HTTP server ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    """A body served at one path, with its media type."""

    body: bytes
    media_type: str


@dataclass
class LoopbackServer:
    """What a running loopback server serves and has been asked for."""

    base_url: str
    resources: dict[str, Resource]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    """A request handler answering GET from ``server.resources`` and recording requests."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers.items())))
            resource = server.resources.get(self.path)
            if resource is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", resource.media_type)
            self.send_header("Content-Length", str(len(resource.body)))
            self.end_headers()
            self.wfile.write(resource.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet; requests are recorded instead."""

    return Handler


@contextmanager
def loopback_server(resources: Mapping[str, Resource]) -> Iterator[LoopbackServer]:
    """Serve ``resources`` (path -> body) on 127.0.0.1 at a free port while the block runs."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    host, port = httpd.server_address[:2]
    server = LoopbackServer(base_url=f"http://{host!s}:{port}", resources=dict(resources))
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# -- Newsboat ---------------------------------------------------------------------------


def newsboat_reload(feed_url: str, workdir: Path) -> Path:
    """Run Newsboat headless once on ``feed_url``; return the log path.

    The cache lives in ``workdir``: call again with the same ``workdir`` to
    refetch (Newsboat 2.21 sends If-None-Match / If-Modified-Since only from
    its third fetch of a new feed). It keeps only audio and video enclosures,
    so image enclosures never reach its cache.
    """
    program = require_program("newsboat")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "urls").write_text(feed_url + "\n", encoding="utf-8")
    (workdir / "config").write_text("", encoding="utf-8")
    log = workdir / "newsboat.log"
    environment = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    command = [program, "-u", "urls", "-c", "cache.db", "-C", "config"]
    subprocess.run(
        [*command, "-l", "3", "-d", str(log), "-x", "reload"],
        cwd=workdir,
        env={**environment, "HOME": str(workdir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=READER_TIMEOUT,
        check=True,
    )
    return log


def newsboat_user_errors(log: Path) -> list[str]:
    """The USERERROR lines of a Newsboat log: a failed fetch or parse (it exits 0 anyway)."""
    if not log.exists():
        return []
    return [line for line in log.read_text("utf-8", "replace").splitlines() if "USERERROR" in line]


def newsboat_items(feed_url: str, workdir: Path) -> list[dict[str, Any]]:
    """Items as Newsboat stores them after fetching ``feed_url`` (RSS or Atom, not JSON).

    Use a fresh ``workdir`` per feed: Newsboat merges items that share a guid
    across all feeds in one cache. Raises AssertionError when the log has
    USERERROR lines, since Newsboat exits 0 even when the fetch failed.
    """
    log = newsboat_reload(feed_url, workdir)
    if errors := newsboat_user_errors(log):
        raise AssertionError("newsboat: " + "\n".join(errors))
    with sqlite3.connect(workdir / "cache.db") as database:
        rows = database.execute(
            "select guid, title, url, pubDate, enclosure_url, enclosure_type, author"
            " from rss_item where feedurl = ? order by pubDate desc, id",
            (feed_url,),
        ).fetchall()
    return [
        {
            "id": guid,
            "title": title,
            "link": url,
            "date": _utc_from_timestamp(pub_date),
            "enclosure_url": enclosure_url,
            "enclosure_type": enclosure_type,
            "author": author,
        }
        for guid, title, url, pub_date, enclosure_url, enclosure_type, author in rows
    ]
