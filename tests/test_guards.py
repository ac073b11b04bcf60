"""Guards on what newsbot destroys: posts, and files of the output folder.

Real folders, a real SQLite file (and a fresh PostgreSQL database where the
state decides), fake Mastodon servers on loopback, the real command line and,
for ``/readyz`` and ``/metrics``, the real service as a subprocess.

- a suspect store (empty, missing, unreadable, too many articles gone) keeps the
  last good output byte for byte, and publish passes delete and edit nothing,
  until the store is back or the removal is confirmed;
- withdrawing by flag in a healthy store still deletes, within the per-pass caps,
  each deletion and edit logged with its status URL;
- a target whose token now belongs to another account stops, touching nothing,
  until ``newsbot catch-up`` takes the new account on;
- after a build, the output holds exactly what the store produces, and files
  newsbot did not write stay.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from newsbot.publish.report import StopReason
from newsbot.service.health import Status
from newsbot.settings import StoreSettings
from newsbot.state.database import MIGRATIONS
from newsbot.state.suspect import allowed_removals, judge
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, write_article
from support.stores import snapshot
from test_publisher import Newsroom, requests_of
from test_service import (  # noqa: F401 - a fixture
    NEWSBOT,
    Service,
    _as_nobody,
    _newsbot_for_nobody,
    eventually,
    http,
    metric,
    service_env,
    world_readable_tmp,
)


@pytest.fixture
def server() -> FakeMastodon:
    with FakeMastodon(token=TOKEN) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def room(tmp_path: Path, server: FakeMastodon, database_url: str) -> Newsroom:
    return Newsroom(tmp_path, server, database_url)


def _stories(room: Newsroom, count: int, **fields: object) -> list[str]:
    return [
        room.write(f"s{n:02d}.md", f"Story {n} of the harbour", 5 - n * 0.01, **fields)
        for n in range(count)
    ]


def _writes(server: FakeMastodon) -> dict[str, int]:
    return {
        kind: len(requests_of(server, kind))
        for kind in ("post_status", "edit_status", "delete_status")
    }


# -- a suspect store ---------------------------------------------------------------------------


def test_an_empty_store_deletes_no_post_and_keeps_the_output_until_confirmed(
    room: Newsroom, server: FakeMastodon, tmp_path: Path
) -> None:
    _stories(room, 3)
    assert room.publish().posted == 3
    public = room.settings.feeds.output_dir
    before = snapshot(public)
    stored = room.content
    room.content = tmp_path / "empty"  # a mistyped bind mount: an empty folder
    room.content.mkdir()

    result = room.cli("publish", "--no-pacing")

    assert result.exit_code == 1
    assert "0 posted, 0 edited, 0 deleted" in result.stdout
    assert "error: the article store is suspect: it holds no article" in result.stderr
    assert "--confirm-removals" in result.stderr
    assert len(server.live_statuses()) == 3
    assert _writes(server)["delete_status"] == 0
    assert snapshot(public) == before  # not one byte, not one mtime
    state = room.cli("state")
    assert "store: SUSPECT since" in state.stdout and "holds no article" in state.stdout

    built = room.cli("build")
    assert built.exit_code == 3
    assert snapshot(public) == before

    # The mount comes back: nothing was lost, nothing is deleted.
    room.content = stored
    assert room.publish().deleted == 0
    assert len(server.live_statuses()) == 3
    assert "store: healthy, 3 live articles" in room.cli("state").stdout

    # Meant it: the confirmation removes the pages, then passes delete the posts.
    room.content = tmp_path / "empty"
    confirmed = room.cli("build", "--confirm-removals")
    assert confirmed.exit_code == 0, confirmed.output
    assert not (public / "articles").exists()
    assert room.publish(build=False).deleted == 3
    assert server.live_statuses() == []


def test_the_confirmed_removal_s_summary_counts_each_kind_of_file_it_removed(
    room: Newsroom, server: FakeMastodon
) -> None:
    for n in range(4):
        room.write(f"h{n}.md", f"Harbour story {n}", 5 - n * 0.01, tags=["Harbour"])
    for n in range(6):
        room.write(f"f{n}.md", f"Ferry story {n}", 4 - n * 0.01, tags=["Ferry"])
    assert room.cli("build").exit_code == 0
    public = room.settings.feeds.output_dir
    before = set(snapshot(public))
    for n in range(6):
        (room.content / f"f{n}.md").unlink()  # every article of the tag Ferry
    room.write("h3.md", "Harbour story 3", 5 - 3 * 0.01, tags=["Harbour"], withdrawn=True)
    assert room.cli("build").exit_code == 3  # 6 of 10 gone at once: suspect

    confirmed = room.cli("build", "--confirm-removals")

    assert confirmed.exit_code == 0, confirmed.output
    gone = before - set(snapshot(public))
    pages = {name for name in gone if name.startswith("articles/")}
    assert len(pages) == 7  # the six removed and the withdrawn one
    assert gone - pages == {f"tags/ferry/{name}" for name in
                            ("rss.xml", "atom.xml", "feed.json", "index.html")}  # fmt: skip
    assert "4 articles in the store, 1 read, 6 gone from it; " in confirmed.stdout
    assert "7 pages of removed or withdrawn articles and 4 stale files removed" in (
        confirmed.stdout
    )


def test_a_missing_store_cannot_be_confirmed(room: Newsroom, server: FakeMastodon) -> None:
    _stories(room, 2)
    room.publish()
    before = snapshot(room.settings.feeds.output_dir)
    shutil.rmtree(room.content)

    for args in (("build",), ("build", "--confirm-removals")):
        result = room.cli(*args)
        assert result.exit_code == 3
        assert "does not exist" in result.stderr and "suspect" in result.stderr
    assert room.publish(build=False).deleted == 0
    assert snapshot(room.settings.feeds.output_dir) == before
    assert len(server.live_statuses()) == 2


def test_losing_more_than_the_allowed_share_is_suspect_and_less_is_not(
    room: Newsroom, server: FakeMastodon
) -> None:
    _stories(room, 10)
    assert room.publish().posted == 10
    for n in range(3):  # 3 of 10 > 20 %
        (room.content / f"s{n:02d}.md").rename(room.tmp / f"away-{n}.md")

    report = room.publish()

    assert report.deleted == 0
    built = room.build()
    assert built.suspect is not None and built.suspect.kind == "lost"
    assert "3 of 10 live articles" in built.suspect.message()
    assert _writes(server)["delete_status"] == 0

    (room.tmp / "away-0.md").rename(room.content / "s00.md")  # 2 of 10: an editor's removal
    assert room.build().suspect is None
    assert room.publish(build=False).deleted == 2
    assert len(server.live_statuses()) == 8


def test_a_broken_file_is_not_a_lost_article(room: Newsroom, server: FakeMastodon) -> None:
    _stories(room, 3)
    room.publish()
    for n in range(3):  # a bad sync leaves every file unreadable: the last versions stay
        (room.content / f"s{n:02d}.md").write_text("---\ntitle: [\n---\n", encoding="utf-8")
    report = room.publish()
    assert (report.deleted, report.stopped) == (0, None)
    assert len(server.live_statuses()) == 3


@pytest.mark.parametrize(
    ("live", "gone", "unreadable", "kind"),
    [
        (0, 0, (), None),  # nothing published: nothing to protect
        (3, 1, (), None),  # the floor: a 3-article store can lose one
        (3, 2, (), "lost"),
        (10, 2, (), None),
        (10, 3, (), "lost"),
        (100, 20, (), None),
        (100, 21, (), "lost"),
        (5, 5, (), "empty"),
        (10, 1, ("a",), "unreadable"),  # a folder that could not be listed held one
        (10, 0, ("b",), None),  # an unreadable folder that held no live article
    ],
)
def test_the_suspect_rule(live: int, gone: int, unreadable: tuple[str, ...], kind: str) -> None:
    paths = [f"a/{n}.md" for n in range(live)]
    verdict = judge(
        live=live,
        gone=paths[:gone],
        present=live - gone,
        unreadable=unreadable,
        settings=StoreSettings(),
        since="now",
    )
    assert (verdict and verdict.kind) == kind or (verdict is None and kind is None)


def test_the_allowed_removals_follow_the_settings() -> None:
    strict = StoreSettings(removals_allowed_share=0.5, removals_allowed_min=0)
    assert [allowed_removals(n, strict) for n in (0, 1, 3, 10)] == [0, 0, 1, 5]
    assert [allowed_removals(n, StoreSettings()) for n in (0, 3, 10, 99)] == [1, 1, 2, 19]


# -- withdrawals, caps and the log -------------------------------------------------------------


@pytest.mark.parametrize("flag", ["withdrawn", "draft"])
def test_withdrawals_by_flag_delete_within_the_cap_each_logged_with_its_status(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture, flag: str
) -> None:
    room.configure(max_deletes_per_pass=2, max_edits_per_pass=1)
    _stories(room, 5)
    room.publish()
    urls = {s["id"]: s["url"] for s in server.live_statuses()}
    _stories(room, 5, **{flag: True})  # readable and withdrawn: meant, whatever the share

    caplog.set_level(logging.INFO, logger="newsbot")
    counts = [(r.deleted, r.held) for r in (room.publish(), room.publish(), room.publish())]

    assert counts == [(2, 3), (2, 1), (1, 0)]
    assert server.live_statuses() == []
    deleted = [r for r in caplog.records if r.getMessage() == "deleted"]
    assert sorted(r.status_url for r in deleted) == sorted(urls.values())  # type: ignore[attr-defined]
    assert {r.levelname for r in deleted} == {"INFO"}
    assert sorted(r.article for r in deleted) == [f"s{n:02d}" for n in range(5)]  # type: ignore[attr-defined]


def test_a_reply_goes_with_its_post_only_when_the_delete_cap_allows_it(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(related_in="reply", max_deletes_per_pass=1)
    room.write("a.md", "Harbour reopens", 3, related=["Harbour fees go up"])
    room.write("b.md", "Harbour fees go up", 2, related=["Harbour reopens"])
    room.publish()
    replies = {s["in_reply_to_id"] for s in server.live_statuses() if s["in_reply_to_id"]}
    assert len(server.live_statuses()) == 4 and len(replies) == 2
    room.write("a.md", "Harbour reopens", 3, related=["Harbour fees go up"], withdrawn=True)
    room.write("b.md", "Harbour fees go up", 2, related=["Harbour reopens"], withdrawn=True)

    first = room.publish()
    assert (first.deleted, first.held) == (1, 1)
    live = server.live_statuses()
    assert len(live) == 2  # one post and the reply under it, both still there
    [kept_post] = [s for s in live if not s["in_reply_to_id"]]
    assert [s["in_reply_to_id"] for s in live if s["in_reply_to_id"]] == [kept_post["id"]]

    second = room.publish()
    assert (second.deleted, second.held) == (1, 0)
    assert server.live_statuses() == []


def test_edits_are_capped_per_pass_and_logged(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    room.configure(max_edits_per_pass=2)
    _stories(room, 3)
    room.publish()
    _stories(room, 3, summary="Revised.")
    caplog.set_level(logging.INFO, logger="newsbot")

    first, second = room.publish(), room.publish()

    assert (first.edited, first.held, second.edited, second.held) == (2, 1, 1, 0)
    edited = [r for r in caplog.records if r.getMessage() == "edited"]
    assert len(edited) == 3
    assert all(r.status_url.startswith(server.base_url) for r in edited)  # type: ignore[attr-defined]
    assert all("Revised." in s["text"] for s in server.live_statuses())


def test_no_edit_goes_out_while_the_store_is_suspect(room: Newsroom, server: FakeMastodon) -> None:
    room.write("a.md", "Harbour reopens", 2)
    room.write("b.md", "Council votes", 1)
    room.publish()
    room.write("a.md", "Harbour reopens", 2, summary="Revised.")
    room.build()  # the revision is in the index
    (room.content / "b.md").unlink()
    (room.content / "a.md").rename(room.tmp / "a.md")  # then the store loses everything

    report = room.publish()

    assert (report.edited, report.deleted, report.held) == (0, 0, 1)
    assert _writes(server) == {"post_status": 2, "edit_status": 0, "delete_status": 0}


def test_while_the_store_is_suspect_only_articles_still_there_are_posted(
    room: Newsroom, server: FakeMastodon
) -> None:
    _stories(room, 5)
    room.build()  # read, not posted yet
    for n in range(3):
        (room.content / f"s{n:02d}.md").unlink()

    report = room.publish()

    assert (report.posted, report.waiting, report.deleted) == (2, 3, 0)
    posted = {line for s in server.live_statuses() for line in s["text"].splitlines()[:1]}
    assert posted == {"Story 3 of the harbour", "Story 4 of the harbour"}


# -- the account of a target -------------------------------------------------------------------


def test_another_account_under_the_same_target_stops_it_until_catch_up(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(related_in="reply")
    room.write("a.md", "Harbour reopens", 2, related=["Harbour fees go up"])
    room.write("f.md", "Harbour fees go up", 3, related=["Harbour reopens"])
    room.publish()
    replies = sorted(s["id"] for s in server.live_statuses() if s["in_reply_to_id"])
    assert len(replies) == 2
    room.write("a.md", "Harbour reopens", 2, withdrawn=True, related=["Harbour fees go up"])
    room.write("b.md", "Council votes", 1)
    server.configure(account_id="77")  # the token was replaced by another account's
    before = _writes(server)

    report = room.publish()

    assert report.stopped is not None and report.stop is StopReason.ACCOUNT_CHANGED
    assert report.stopped.startswith("the account changed: target main posted as account 1")
    assert "account 77" in report.stopped and "newsbot catch-up --target main" in report.stopped
    assert _writes(server) == before  # nothing posted, edited or deleted
    status = Status()
    status.record_pass(report)
    publishing = status.snapshot().publishing()  # the feeds stay ready; publishing is not ok
    assert not publishing["ok"] and "the account changed" in publishing["problems"][0]
    assert "the account changed" in room.cli("state").stdout

    caught = room.cli("catch-up")
    assert caught.exit_code == 0, caught.output
    assert "now posting as account 77" in caught.stdout
    assert "2 post(s) of the former account are left as they are" in caught.stdout
    room.write("c.md", "Museum opens", 0.5)

    after = room.publish()

    assert (after.stopped, after.posted, after.deleted) == (None, 1, 0)
    assert room.rows()["a"]["state"] == "former"
    assert "account 77 on" in room.cli("state").stdout
    assert "replies: 2 former" in room.cli("state").stdout  # never deleted from here
    assert sorted(s["id"] for s in server.live_statuses() if s["in_reply_to_id"]) == replies


def test_another_server_under_the_same_target_name_stops_it(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 2)
    room.publish()
    with FakeMastodon(token=TOKEN) as other:  # same account id "1", another server
        room.configure(server=other.base_url)
        room.write("a.md", "Harbour reopens", 2, summary="Revised.")
        report = room.publish()
        assert report.stopped is not None and report.stopped.startswith("the account changed")
        assert f"on {server.base_url}/" in report.stopped
        assert _writes(other) == {"post_status": 0, "edit_status": 0, "delete_status": 0}


# -- stale output ------------------------------------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_swapped_store_leaves_exactly_the_new_store_s_output(
    room: Newsroom, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    for n in range(6):
        write_article(room.content, f"old/{n}.md", f"Old story {n}", now - timedelta(hours=n + 1),
                      tags=[f"OldTag{n}"], section="Gone")  # fmt: skip
    room.build()
    public = room.settings.feeds.output_dir
    (public / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")  # the operator's
    (public / "tags" / "keep").mkdir()
    (public / "tags" / "keep" / "note.txt").write_text("mine", encoding="utf-8")
    fresh = tmp_path / "other-store"
    write_article(fresh, "new.md", "New story", now - timedelta(hours=1), tags=["Fresh"])
    room.content = fresh

    assert room.build().suspect is not None  # six of six gone: held
    assert "old/0/index.html" in {p.removeprefix("articles/") for p in _tree(public)}
    assert room.cli("build", "--confirm-removals").exit_code == 0

    (tmp_path / "reference").mkdir()
    expected_room = Newsroom(tmp_path / "reference", room.server)
    shutil.copytree(fresh, expected_room.content, dirs_exist_ok=True)
    expected_room.build()
    expected = _tree(expected_room.settings.feeds.output_dir)
    assert _tree(public) == expected | {"robots.txt", "tags/keep/note.txt"}
    assert not (public / "articles" / "old").exists()  # empty folders go too
    assert not (public / "sections").exists()


def test_turning_tag_feeds_off_removes_them(tmp_path: Path, server: FakeMastodon) -> None:
    room = Newsroom(tmp_path, server)
    room.write("a.md", "Harbour reopens", 2, tags=["Harbour"])
    room.build()
    public = room.settings.feeds.output_dir
    assert (public / "tags" / "harbour" / "rss.xml").is_file()
    settings = room.settings
    env_settings = settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"per_tag": False})}
    )
    from support.stores import opened

    with opened(env_settings) as app:
        report = app.builder.build(datetime.now(UTC))
    assert report.stale_removed == 4  # rss, atom, json and the page of the tag
    assert not (public / "tags").exists()


def test_in_another_output_folder_no_file_is_taken_for_newsbot_s(
    tmp_path: Path, server: FakeMastodon
) -> None:
    room = Newsroom(tmp_path, server)
    room.write("a.md", "Harbour reopens", 2, tags=["Harbour"])
    room.build()
    other = tmp_path / "other-public"
    (other / "tags" / "harbour").mkdir(parents=True)
    (other / "tags" / "harbour" / "rss.xml").write_text("the operator's own", encoding="utf-8")
    settings = room.settings
    moved = settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"output_dir": other, "per_tag": False})}
    )
    from support.stores import opened

    with opened(moved) as app:
        report = app.builder.build(datetime.now(UTC))
    assert report.stale_removed == 0
    assert (other / "tags" / "harbour" / "rss.xml").read_text() == "the operator's own"
    assert (room.settings.feeds.output_dir / "tags" / "harbour" / "rss.xml").is_file()


def test_an_image_goes_when_no_article_uses_it_any_more(
    tmp_path: Path, server: FakeMastodon
) -> None:
    room = Newsroom(tmp_path, server)
    (room.content / "harbour_1.jpg").write_bytes(b"\xff\xd8\xff\xe0 a harbour")
    (room.content / "shared.jpg").write_bytes(b"\xff\xd8\xff\xe0 a council")
    room.write("a.md", "Harbour reopens", 3, image="harbour_1.jpg")
    room.write("b.md", "Council votes", 2, image="shared.jpg")
    room.write("c.md", "Council votes again", 1, image="shared.jpg")
    room.build()
    media = room.settings.feeds.output_dir / "media"
    assert {p.name for p in media.iterdir()} == {"harbour_1.jpg", "shared.jpg"}
    (media / "logo.png").write_bytes(b"the operator's")

    room.write("a.md", "Harbour reopens", 3)  # the image is dropped from the article
    (room.content / "b.md").unlink()  # one of two users of the shared image goes
    report = room.build()

    assert report.stale_removed == 1
    assert {p.name for p in media.iterdir()} == {"shared.jpg", "logo.png"}
    (room.content / "c.md").unlink()
    assert room.build().stale_removed == 1
    assert {p.name for p in media.iterdir()} == {"logo.png"}


# -- the service ---------------------------------------------------------------------------------


def test_the_service_shows_a_suspect_store_in_readyz_and_metrics(tmp_path: Path) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    for n in range(4):
        write_article(content, f"{n}.md", f"Story {n}", now - timedelta(hours=n + 1))
    env = service_env(tmp_path, content, build_every_seconds=1)
    service = Service(env, tmp_path / "service").start()
    try:
        with http() as client:
            service.ready(client)
            base = service.url()
            public = tmp_path / "public"
            before = snapshot(public)
            for n in range(4):
                (content / f"{n}.md").unlink()

            def suspect() -> dict[str, object] | None:
                answer = client.get(base + "/readyz")
                body = answer.json()
                return body if body["warnings"] else None

            body = eventually(suspect, 20, lambda: service.output())
            assert client.get(base + "/readyz").status_code == 200  # still serving the last good
            assert "holds no article" in str(body["warnings"])
            assert body["build"]["suspect"]["kind"] == "empty"  # type: ignore[index]
            metrics = client.get(base + "/metrics").text
            assert metric(metrics, "newsbot_store_suspect") == 1
            assert metric(metrics, "newsbot_store_lost_articles") == 4
            assert any(
                e["level"] == "error" and "article store is suspect" in e["message"]
                for e in service.lines()
            )
            assert client.get(base + "/articles/0/").status_code == 200
            time.sleep(1.5)  # another build or two: still nothing touched
            assert snapshot(public) == before
        code, _ = service.stop()
        assert code == 0
    finally:
        service.kill()


def test_the_service_starts_on_a_missing_store_and_serves_the_last_good_output(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    for n in range(2):
        write_article(content, f"{n}.md", f"Story {n}", now - timedelta(hours=n + 1))
    env = service_env(tmp_path, content)
    built = subprocess.run(
        [str(NEWSBOT), "build", "-q"], env=env, capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    before = snapshot(tmp_path / "public")
    content.rename(tmp_path / "unmounted")

    service = Service(env, tmp_path / "service").start()
    try:
        with http() as client:
            body = service.ready(client)
            assert "does not exist" in body["warnings"][0]
            assert body["build"]["suspect"]["kind"] == "missing"
            assert client.get(service.url() + "/articles/0/").status_code == 200
            assert metric(client.get(service.url() + "/metrics").text, "newsbot_store_suspect") == 1
        assert service.stop()[0] == 0
    finally:
        service.kill()
    assert snapshot(tmp_path / "public") == before


@pytest.mark.parametrize(("known_id", "stops"), [("1", False), ("9", True)])
def test_an_account_id_recorded_before_servers_were_is_checked_and_completed(
    room: Newsroom, server: FakeMastodon, database_url: str, known_id: str, stops: bool
) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.execute(text(f"INSERT INTO targets (name, account_id) VALUES ('main', '{known_id}')"))
    engine.dispose()
    room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.stopped is not None) == stops
    assert report.posted == (0 if stops else 1)
    shown = room.cli("state").stdout
    if stops:
        assert "posted as account 9" in shown
    else:
        assert f"account 1 on {server.base_url}/" in shown


def test_a_folder_that_cannot_be_read_makes_the_store_suspect(
    world_readable_tmp: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """One article of ten in a folder that cannot be listed: within the share, still suspect."""
    root = world_readable_tmp
    content = root / "content"
    now = datetime.now(UTC)
    for n in range(9):
        write_article(content, f"open/{n}.md", f"Open story {n}", now - timedelta(hours=n + 1))
    write_article(content, "locked/0.md", "Locked story", now - timedelta(hours=1))
    env = service_env(root, content)
    command = [str(NEWSBOT)]
    if os.geteuid() == 0:  # root reads every folder: run as nobody, as the container does
        nobody = pwd.getpwnam("nobody")
        for path in [root, *root.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        command = _as_nobody(_newsbot_for_nobody())
    first = subprocess.run([*command, "build", "-q"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    before = snapshot(root / "public")
    (content / "locked").chmod(0)

    held = subprocess.run([*command, "build"], env=env, capture_output=True, text=True)
    confirmed = subprocess.run(
        [*command, "build", "--confirm-removals"], env=env, capture_output=True, text=True
    )

    for result in (held, confirmed):
        assert result.returncode == 3
        assert "suspect: cannot read locked, which held 1 live article(s)" in result.stderr
    assert snapshot(root / "public") == before
    (content / "locked").chmod(0o755)
    again = subprocess.run([*command, "build"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
