"""The operator's view of a running service: /status, the access log, the HTTP metrics.

One real ``newsbot run`` process on loopback, posting to two fake Mastodon
servers (one fine, one answering every post with 503), on a store with one
broken file; the checks read its page, its log and its metrics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.requests import Request

from newsbot.service.health import Status
from newsbot.service.status import StatusPage
from newsbot.web.access import route_class
from newsbot.web.status import StatusEndpoints
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, write_article
from test_service import Service, eventually, http, metric, service_env, services  # noqa: F401


def test_status_page_access_log_and_http_metrics(
    tmp_path: Path,
    services: Callable[..., Service],  # noqa: F811
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    write_article(content, "2026/fresh.md", "A fresh article", now - timedelta(minutes=1))
    (content / "2026" / "broken.md").write_text(
        "---\ntitle: Broken\ndate: not a date\n---\nBody.\n", encoding="utf-8"
    )
    with (
        FakeMastodon(token=TOKEN) as main,
        FakeMastodon(token=TOKEN) as flaky,
        FakeMastodon(token=TOKEN) as refusing,
    ):
        flaky.set_fault_rates("post_status", {"503": 1.0})
        refusing.set_fault_rates("post_status", {"422": 1.0})
        servers = {"main": main, "flaky": flaky, "refusing": refusing}
        service = services(service_env(tmp_path, content, servers), tmp_path / "run")
        client = http()
        service.ready(client)
        base = service.url()
        eventually(lambda: main.live_statuses(), 20, "nothing was posted to main")

        def settled() -> dict[str, object] | None:
            page = client.get(base + "/status.json").json()
            targets = {t["name"]: t for t in page["targets"]}
            main_done = targets["main"]["state"] != "no pass yet"  # posted before its pass ends
            waiting, refusing = targets["flaky"]["waiting"], targets["refusing"]["failed"]
            between_tries = bool(waiting) and waiting[0]["state"] == "retry"  # not "sending"
            return page if main_done and between_tries and refusing else None

        page = eventually(
            settled, 20, "main's pass did not end, no retry waits on flaky, or nothing failed"
        )

        # The last build and the broken file, with its line and field.
        assert page["build"]["error"] is None and page["build"]["files"] == 2
        assert page["problems"]["count"] == 1
        problem = page["problems"]["shown"][0]
        assert problem["path"] == "2026/broken.md"
        assert problem["field"] == "date" and problem["line"] == 3
        # Each target: server, state, last post, what waits and why.
        targets = {target["name"]: target for target in page["targets"]}
        ok = targets["main"]
        assert ok["server"] == main.base_url + "/"
        assert ok["state"] == "posting"
        assert ok["last_post"]["article"] == "2026/fresh"
        assert ok["last_post"]["status_url"] == main.live_statuses()[0]["url"]
        assert ok["profile"]["max_characters"] == 500 and ok["profile"]["account_id"]
        assert ok["profile"]["counting"].startswith("mastodon (")
        assert ok["next_pass_at"] is not None
        waiting = targets["flaky"]["waiting"][0]
        assert waiting["article"] == "2026/fresh" and waiting["state"] == "retry"
        assert datetime.fromisoformat(waiting["due_at"]) > now
        assert "503" in waiting["why"]
        assert targets["flaky"]["last_post"] is None
        failed = targets["refusing"]["failed"][0]
        assert failed["article"] == "2026/fresh" and failed["state"] == "failed"
        assert "422" in failed["why"] and failed["last_attempt_at"]

        html = client.get(base + "/status")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "2026/broken.md" in html.text and "retry" in html.text
        assert "Failed" in html.text and "HTTP 422: the server refused the request" in html.text
        assert html.headers["cache-control"] == "no-store"
        for body in (html.text, client.get(base + "/status.json").text):
            assert TOKEN not in body

        # One access-log line per request, without the query string.
        for _ in range(3):
            assert client.get(base + "/rss.xml?token=query-secret").status_code == 200
        assert client.get(base + "/no-such-file").status_code == 404
        scraped = client.get(base + "/metrics").text

        # The image's health check: the standard library alone, a proxy in the
        # environment ignored; with a config file it asks `newsbot healthcheck`.
        port = base.rsplit(":", 1)[1]
        config = tmp_path / "newsbot.toml"
        config.write_text(f"[service]\nport = {port}\n", encoding="utf-8")
        probe_env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HTTP_PROXY": "http://127.0.0.1:9/",
        }
        probes = [
            {**probe_env, "NEWSBOT_SERVICE__HOST": "0.0.0.0", "NEWSBOT_SERVICE__PORT": port},
            {**probe_env, "NEWSBOT_CONFIG": str(config)},
        ]
        for env in probes:
            assert _probe(env).returncode == 0
        code, _ = service.stop(signal.SIGTERM)
        assert code == 0
        for env in probes:
            stopped = _probe(env)
            assert stopped.returncode == 1 and b"Traceback" not in stopped.stderr

    access = [entry for entry in service.lines() if entry["logger"] == "newsbot.access"]
    feeds = [entry for entry in access if entry["path"] == "/rss.xml"]
    assert len(feeds) == 3
    assert {(e["method"], e["status"], e["route"]) for e in feeds} == {("GET", 200, "feed")}
    assert all(e["bytes"] > 0 and e["ms"] >= 0 and e["client"] == "127.0.0.1" for e in feeds)
    missing = [entry for entry in access if entry["path"] == "/no-such-file"]
    assert [(e["status"], e["route"]) for e in missing] == [(404, "other")]
    assert "query-secret" not in service.output()
    # The health checks answered 200 are counted, not logged (the image asks every second).
    assert not [e for e in access if e["route"] == "probe" and e["status"] == 200]
    assert TOKEN not in service.output()

    # HTTP metrics by route class and status, latency histogram, process metrics.
    assert metric(scraped, "newsbot_http_requests_total", route="feed", status="200") == 3
    assert metric(scraped, "newsbot_http_requests_total", route="other", status="404") == 1
    assert metric(scraped, "newsbot_http_request_duration_seconds_count", route="feed") == 3
    assert metric(scraped, "newsbot_http_request_duration_seconds_bucket", route="feed", le="+Inf")
    assert (metric(scraped, "process_resident_memory_bytes") or 0) > 10_000_000
    assert metric(scraped, "process_cpu_seconds_total") is not None
    assert "_created" not in scraped


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "newsbot.probe"], env=env, capture_output=True, timeout=30
    )


def _request(host: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/status", "client": (host, 5000)})


@pytest.mark.parametrize(
    ("access", "host", "allowed"),
    [
        ("loopback", "127.0.0.1", True),
        ("loopback", "127.0.0.53", True),
        ("loopback", "::1", True),
        ("loopback", "10.0.0.5", False),
        ("loopback", "172.17.0.1", False),
        ("loopback", "2001:db8::1", False),
        ("loopback", "testclient", False),
        ("on", "10.0.0.5", True),
    ],
)
def test_who_may_see_the_status_page(access: str, host: str, allowed: bool) -> None:
    endpoints = StatusEndpoints(_unused_page(), access)  # type: ignore[arg-type]
    assert endpoints.allowed(_request(host)) is allowed


def test_the_status_page_off_has_no_route() -> None:
    assert StatusEndpoints(_unused_page(), "off").routes() == []


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/rss.xml", "feed"),
        ("/tags/calais/atom.xml", "feed"),
        ("/feed.json", "feed"),
        ("/", "page"),
        ("/articles/2015/calais/", "page"),
        ("/index.html", "page"),
        ("/media/calais.jpg", "media"),
        ("/healthz", "probe"),
        ("/readyz", "probe"),
        ("/metrics", "metrics"),
        ("/status.json", "status"),
        ("/robots.txt", "other"),
    ],
)
def test_route_classes_bound_the_metrics_labels(path: str, route: str) -> None:
    assert route_class(path) == route


def _unused_page() -> StatusPage:
    return StatusPage(None, None, Status(), [])  # type: ignore[arg-type]
