"""A real follower built with Fedify (npm ``@fedify/fedify``, run with Node) follows newsbot.

newsbot runs in this process behind a TLS proxy on loopback (Fedify, like
Mastodon, resolves ``acct:`` handles over HTTPS only); the follower runs on
loopback as ``node tests/fedify/follower.mjs``, installed by
``tests/setup/tools.sh``. Fedify discovers ``acct:news@127.0.0.1:PORT`` by
WebFinger, follows, and reports only what its own inbox accepted after
verifying the signature: the Accept (with the Follow embedded), then the
Create, Update and Delete of an article as the store changes; its Undo then
removes the follower. Run with Fedify's first signature attempt in RFC 9421
(its default: newsbot must verify it, or Fedify would fall back) and in
draft-cavage.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsbot.activitypub.followers import Followers
from newsbot.settings import (
    ActivityPubSettings,
    FeedSettings,
    ServiceSettings,
    Settings,
    SiteSettings,
    StateSettings,
    StoreSettings,
)
from support.posting import write_article
from support.tlsproxy import TlsProxy, self_signed
from test_activitypub import Running, eventually, free_port

FEDIFY = Path(__file__).parent / "fedify"
INSTALLED = FEDIFY / "node_modules" / "@fedify" / "fedify" / "package.json"


class Follower:
    """The Node process and the events it printed."""

    def __init__(self, port: int, handle: str, first_knock: str, ca: Path) -> None:
        node = shutil.which("node")
        assert node is not None
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(ca)}
        self.process = subprocess.Popen(
            [node, str(FEDIFY / "follower.mjs"), str(port), handle, first_knock],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=FEDIFY,
        )  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        self.stderr.extend(self.process.stderr)

    def wait_for(self, event: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for seen in list(self.events):
                if seen["event"] == event and all(seen.get(k) == v for k, v in match.items()):
                    return seen
            return None

        deadline = time.monotonic() + timeout
        while (seen := found()) is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"Fedify reported no {event} {match}: {self.events[-5:]} "
                            f"{''.join(self.stderr)[-3000:]}")  # fmt: skip
            time.sleep(0.05)
        return seen

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        if self.process.poll() is None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


@pytest.fixture
def fedify_installed() -> None:
    if shutil.which("node") is None or not INSTALLED.is_file():
        if os.environ.get("CI"):
            pytest.fail("Fedify is not installed: run tests/setup/tools.sh")
        pytest.skip("Fedify is not installed (tests/setup/tools.sh installs it)")


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """(public HTTPS port, newsbot's own port, the CA file)."""
    cert, key = self_signed(tmp_path)
    public, backend = free_port(), free_port()
    with TlsProxy(public, backend, cert, key):
        yield public, backend, cert


@pytest.mark.slow
@pytest.mark.parametrize("first_knock", ["rfc9421", "draft-cavage-http-signatures-12"])
def test_a_fedify_follower_follows_receives_and_unfollows(
    tmp_path: Path,
    fedify_installed: None,
    https: tuple[int, int, Path],
    first_knock: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public, backend, ca = https
    content = tmp_path / "content"
    content.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings(
        site=SiteSettings(base_url=f"https://127.0.0.1:{public}/"),  # type: ignore[arg-type]
        store=StoreSettings(content_dir=content),
        feeds=FeedSettings(output_dir=tmp_path / "public"),
        state=StateSettings(data_dir=tmp_path / "data"),
        service=ServiceSettings(host="127.0.0.1", port=backend, build_every_seconds=3600,
                                jitter_seconds=0, watch=False, shutdown_timeout_seconds=5),
        activitypub=ActivityPubSettings(allow_private_addresses=True),
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="newsbot")
    with Running(settings) as running:
        actor_id = running.base + "ap/users/news"
        follower = Follower(free_port(), f"acct:news@127.0.0.1:{public}", first_knock, ca)
        try:
            discovered = follower.wait_for("discovered")
            assert discovered["id"] == actor_id and discovered["type"] == "Service"
            follower.wait_for("followed")
            accept = follower.wait_for("accept")
            assert accept["actor"] == actor_id
            assert accept["follow"].endswith("/users/alice#follows/1"), (accept, follower.events)
            followers = Followers(running.app.engine)
            assert followers.count() == 1

            write_article(content, "ferry.md", "Ferry strike ends", now - timedelta(minutes=2),
                          summary="Boats sail again.", tags=["Ferries"])  # fmt: skip
            running.rebuild()
            create = follower.wait_for("create")
            assert create["actor"] == actor_id and create["type"] == "Note"
            assert "Ferry strike ends" in create["content"]
            assert create["url"] == running.base + "articles/ferry/"

            write_article(content, "ferry.md", "Ferry strike ends after a week",
                          now - timedelta(minutes=2), summary="Boats sail again.")  # fmt: skip
            running.rebuild()
            update = follower.wait_for("update")
            assert update["object"] == create["object"] and update["updated"]
            assert "after a week" in update["content"]

            write_article(content, "ferry.md", "Ferry strike ends after a week",
                          now - timedelta(minutes=2), withdrawn=True)  # fmt: skip
            running.rebuild()
            delete = follower.wait_for("delete")
            assert delete["object"] == create["object"]

            follower.send("unfollow")
            follower.wait_for("unfollowed")
            eventually(lambda: followers.count() == 0, 20, "the Undo did not remove the follower")
            errors = [e for e in follower.events if e["event"] == "error"]
            assert errors == []
            statuses = {e["status"] for e in follower.events if e["event"] == "inbox"}
            assert statuses == {202}, follower.events
        finally:
            follower.send("quit")
            follower.stop()
    refused = [r.getMessage() for r in caplog.records if "inbox refused" in r.getMessage()]
    assert refused == [], "newsbot refused a request Fedify signed"
