"""Publishing: each article posted once per target, whatever the server does.

Stores are folders of Markdown files (and the seed page) built by the real
`Builder`; the state is a real SQLite file (and a fresh PostgreSQL database
for the core tests, through the ``database_url`` fixture); targets are fake
Mastodon servers on loopback. Passes run through `publishing.publishers`,
the wiring the command line and the service use, with waits recorded
instead of slept; the command line itself runs where its output is what is
tested.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import select

from newsbot.app import PASS_LEASE_TTL, publishers
from newsbot.articles import revision_of
from newsbot.build.builder import BuildReport
from newsbot.cli import main
from newsbot.mastodon.client import MastodonClient, make_http_client
from newsbot.mastodon.documents import StatusRequest
from newsbot.publish.compose import RELATED_MARK, idempotency_key
from newsbot.publish.create import MAX_TRIES
from newsbot.publish.publisher import PassReport, Publisher, links_as_its_own
from newsbot.publish.report import StopReason
from newsbot.publish.targets import targets
from newsbot.service.health import Status
from newsbot.service.status import StatusPage
from newsbot.settings import Settings, TargetSettings
from newsbot.state.database import database_url, open_database
from newsbot.state.deliveries import Attempt, DeliveryStore
from newsbot.state.leases import Leases, is_alive, process_owner
from newsbot.state.pass_marks import SERVER_RECHECK, read_mark, write_mark
from newsbot.state.replies import RelatedStore
from newsbot.state.schema import deliveries
from support.fakemastodon import FakeMastodon, countable_length
from support.posting import (
    SEED,
    TOKEN,
    YEARS,
    environment,
    own_urls,
    posts_by_url,
    settings_for,
    target,
    url_of,
    write_article,
)
from support.processes import held_to_permissions
from support.stores import Interrupted, interrupted, opened

SEED_PATH = "2015/france-uk-calais-agreement.txt"
SEED_TITLE = "France and UK sign Calais cooperation agreement"
SEED_LEAD = (
    "French Interior Minister Bernard Cazeneuve and his British counterpart Theresa May "
    "signed a deal on Thursday to set up a joint crisis centre aimed at tackling people "
    "smugglers in Calais."
)
SEED_RELATED = (
    "France and Britain to sign Calais security agreement",
    "Migrant ‘almost' walks to England through Eurotunnel",
    "EU offers to help France, Britain tackle Calais migrant crisis",
)
# The same headlines as the store has them: other quotes, other case.
RELATED_FILES = {
    "2015/calais-security.md": "France and Britain to sign Calais Security Agreement",
    "2015/eurotunnel-walk.md": "Migrant 'almost' walks to England through Eurotunnel",
    "2015/eu-offers-help.md": "EU Offers to Help France, Britain Tackle Calais Migrant Crisis",
}
BAD_TOKEN = "tok-Bad-9d71-NEVER-SHOWN-EITHER"


# -- the newsroom --------------------------------------------------------------------------


class Newsroom:
    """A store, its settings and its state; passes run through `publishers` as the CLI runs them."""

    def __init__(self, tmp: Path, server: FakeMastodon, database_url: str | None = None) -> None:
        self.tmp = tmp
        self.content = tmp / "content"
        self.content.mkdir()
        self.server = server
        self.database_url = database_url
        self.targets: dict[str, TargetSettings] = {"main": target(server.base_url)}
        self.sleeps: list[float] = []

    @property
    def settings(self) -> Settings:
        return settings_for(self.tmp, self.content, self.targets, self.database_url)

    def configure(self, name: str = "main", **fields: Any) -> None:
        self.targets[name] = self.targets[name].model_copy(update=fields)

    def write(self, path: str, title: str, hours_ago: float = 1.0, **fields: Any) -> str:
        """Write an article published ``hours_ago``; its link."""
        published = datetime.now(UTC) - timedelta(hours=hours_ago)
        write_article(self.content, path, title, published, **fields)
        return url_of(path)

    def copy_seed(self) -> str:
        (self.content / "2015").mkdir(exist_ok=True)
        shutil.copy(SEED, self.content / SEED_PATH)
        self.configure(backlog_max_age_hours=YEARS)
        return url_of(SEED_PATH)

    def write_related(self) -> dict[str, str]:
        """The seed's three related articles, under slightly different headlines; title -> link."""
        for day, (path, title) in enumerate(RELATED_FILES.items(), start=17):
            write_article(
                self.content, path, title, datetime(2015, 8, day, tzinfo=UTC), summary="Earlier."
            )
        return {title: url_of(path) for path, title in RELATED_FILES.items()}

    def build(self) -> BuildReport:
        with opened(self.settings) as app:
            return app.builder.build(datetime.now(UTC))

    @contextmanager
    def runners(
        self, pacing: bool = False, clock: Callable[[], datetime] | None = None
    ) -> Iterator[dict[str, Publisher]]:
        settings = self.settings
        with (
            opened(settings) as app,
            publishers(settings, app.engine, targets(settings), pacing=pacing) as runners,
        ):
            for runner in runners:
                runner.sleep = self.sleeps.append
                if clock is not None:
                    runner.clock = clock
            yield {runner.name: runner for runner in runners}

    def publish(
        self,
        name: str = "main",
        *,
        build: bool = True,
        pacing: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> PassReport:
        if build:
            self.build()
        with self.runners(pacing, clock) as runners:
            return runners[name].run()

    def hourly(self, start: datetime, hours: range | tuple[int, ...]) -> list[PassReport]:
        """Passes without a build, each at ``start`` plus one of ``hours``: hours apart, every
        retry (its backoff capped at minutes) is due at each."""
        return [
            self.publish(build=False, clock=lambda at=start + timedelta(hours=hour): at)
            for hour in hours
        ]

    def rows(self, name: str = "main") -> dict[str, dict[str, Any]]:
        engine = open_database(database_url(self.settings.state))
        try:
            with engine.connect() as conn:
                query = select(deliveries).where(deliveries.c.target == name)
                return {row.article_id: dict(row._mapping) for row in conn.execute(query)}
        finally:
            engine.dispose()

    def cli(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(main, list(args), env=environment(self.settings))


def requests_of(server: FakeMastodon, kind: str) -> list[dict[str, Any]]:
    return [request for request in server.requests if request["kind"] == kind]


def status_of(server: FakeMastodon, url: str) -> dict[str, Any]:
    found = [s for s in server.live_statuses() if url in own_urls(s["text"])]
    assert len(found) == 1, f"{len(found)} statuses post {url}"
    return found[0]


def related_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(RELATED_MARK)]


@pytest.fixture
def server() -> Iterator[FakeMastodon]:
    with FakeMastodon(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def room(tmp_path: Path, server: FakeMastodon) -> Newsroom:
    return Newsroom(tmp_path, server)


# -- new articles ----------------------------------------------------------------------------


def test_an_article_is_posted_once_its_build_has_written_the_site(
    room: Newsroom, server: FakeMastodon
) -> None:
    """A build stores an article before it writes its page and feeds; a pass meanwhile (the
    service's run beside its builds) or after the build failed half-way must not post a
    link to a page that is not there yet."""
    room.write("a.md", "Council votes the budget", 2, tags=["Budget"])
    assert room.publish().posted == 1
    link = room.write("b.md", "Harbour reopens after the storm", 1)
    with opened(room.settings) as app, pytest.raises(Interrupted):
        app.builder.build(datetime.now(UTC), interrupted)  # stopped once b.md is stored
    with room.runners() as runners:  # one process's publisher, as the service keeps it
        assert runners["main"].run().posted == 0
        assert link not in posts_by_url(server.live_statuses())
        room.build()  # stores nothing new, yet tells the publisher to read the store again
        assert runners["main"].run().posted == 1
    assert posts_by_url(server.live_statuses())[link] == 1


def test_each_new_article_is_posted_once_with_headline_summary_link_language_visibility(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(visibility="unlisted")
    first = room.write("a.md", "Harbour reopens after the storm", 3, summary="Boats are back.",
                       tags=["Harbour", "Weather"])  # fmt: skip
    second = room.write("b.md", "Le port rouvre", 2, summary="Les bateaux reviennent.", lang="fr")
    body = "The council voted the budget on Monday. It takes effect in May."
    third = room.write("c.md", "Council votes the budget", 1, body=body)

    report = room.publish()

    assert (report.posted, report.failed, report.stopped) == (3, 0, None)
    statuses = server.live_statuses()
    assert [s["text"].splitlines()[0] for s in statuses] == [
        "Harbour reopens after the storm",
        "Le port rouvre",
        "Council votes the budget",
    ]
    assert statuses[0]["text"] == (
        f"Harbour reopens after the storm\n\nBoats are back.\n\n{first}\n\n#Harbour #Weather"
    )
    assert statuses[1]["text"] == f"Le port rouvre\n\nLes bateaux reviennent.\n\n{second}"
    assert statuses[2]["text"].startswith(
        "Council votes the budget\n\nThe council voted the budget on Monday."
    )
    assert own_urls(statuses[2]["text"]) == {third}
    assert [s["language"] for s in statuses] == ["en", "fr", "en"]  # the site's, or the article's
    assert {s["visibility"] for s in statuses} == {"unlisted"}
    rows = room.rows()
    for status, article_id in zip(statuses, ("a", "b", "c"), strict=True):
        assert rows[article_id]["state"] == "posted"
        assert rows[article_id]["status_id"] == status["id"]
        assert rows[article_id]["status_url"] == status["url"]
        assert status["idempotency_key"] == rows[article_id]["idempotency_key"]

    posts_before = len(requests_of(server, "post_status"))
    again = room.publish()
    assert (again.posted, again.stopped) == (0, None)
    assert len(requests_of(server, "post_status")) == posts_before == 3


def _stored_leads(room: Newsroom) -> dict[str, Any]:
    """Each article's stored leads (``articles.leads``, decoded), by id."""
    engine = open_database(database_url(room.settings.state))
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, leads FROM articles").all()
    finally:
        engine.dispose()
    return {row.id: row.leads and json.loads(row.leads) for row in rows}


def _store_leads(room: Newsroom, article_id: str, leads: dict[str, Any]) -> None:
    engine = open_database(database_url(room.settings.state))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE articles SET leads = ? WHERE id = ?", (json.dumps(leads), article_id)
            )
    finally:
        engine.dispose()


def test_a_post_takes_its_lead_as_the_build_split_it(room: Newsroom, server: FakeMastodon) -> None:
    """The build splits the lead of each article a target may post, and the post takes it
    from there instead of splitting the text again; a post by rules the build did not split
    for (another budget) splits the text itself."""
    room.configure(language="de")
    body = "The council voted the budget on Monday. It takes effect in May."
    room.write("a.md", "Council votes the budget", 2, body=body)
    room.write("b.md", "Harbour reopens", 1, body="Boats are back. The storm is over.")
    room.write("c.md", "Le port rouvre", 1, body="Les bateaux reviennent.", lang="fr")
    room.write("d.md", "Budget vote", 1, summary="Its own summary.")
    room.write("e.md", "Old news", 24 * 400, body="Long ago.")
    room.build()
    stored = _stored_leads(room)
    split = ["The council voted the budget on Monday.", "It takes effect in May."]
    assert stored["a"] == {"budget": 240, "sentences": {"de": split}}
    assert stored["c"] == {"budget": 240, "sentences": {"fr": ["Les bateaux reviennent."]}}
    assert stored["d"] is None and stored["e"] is None  # its own summary; never posted
    _store_leads(room, "a", {"budget": 240, "sentences": {"de": ["As the build split it."]}})
    _store_leads(room, "b", {"budget": 120, "sentences": {"de": ["Another budget's."]}})
    assert room.publish(build=False).posted == 4
    texts = {s["text"].split("\n\n")[0]: s["text"] for s in server.live_statuses()}
    assert texts["Council votes the budget"].split("\n\n")[1] == "As the build split it."
    assert texts["Harbour reopens"].split("\n\n")[1] == "Boats are back. The storm is over."


def test_the_target_language_serves_articles_without_one(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(language="de")
    room.write("a.md", "Hafen wieder offen", 2)
    room.write("b.md", "Le port rouvre", 1, lang="fr-CH")
    room.publish()
    assert [s["language"] for s in server.live_statuses()] == ["de", "fr"]


def test_languages_are_sent_as_iso_639_1_codes_or_not_at_all(
    room: Newsroom, server: FakeMastodon
) -> None:
    # Akkoma refuses anything but a two-letter code with 422 "Invalid language": the reply
    # of related links (target language "en-GB") and an article in Filipino ("fil") too.
    server.configure(software="pleroma", max_characters=5000)
    room.configure(language="en-GB", related_in="reply")
    seed_url = room.copy_seed()
    room.write_related()
    filipino = room.write("fil.md", "Bukas na muli ang daungan", 1, lang="fil")

    report = room.publish()

    assert (report.posted, report.failed, report.replies) == (5, 0, 3)
    post = status_of(server, seed_url)
    (reply,) = [s for s in server.live_statuses() if s["in_reply_to_id"] == post["id"]]
    assert (post["language"], reply["language"]) == ("en", "en")
    assert status_of(server, filipino)["language"] is None  # not the site's: the server guesses


def test_indic_conjuncts_count_as_mastodon_counts_them_no_length_error(
    room: Newsroom, server: FakeMastodon
) -> None:
    # Ruby 3.4 (Mastodon's) clusters follow Unicode 15.0: "क्ष" is "क्" and "ष", two where
    # Python's \X, with Unicode 15.1's rule GB9c, sees one.
    summary = " ".join(["क्षेत्र में स्वास्थ्य मंत्री ने अस्पताल का उद्घाटन किया।"] * 20)
    url = room.write("hindi.md", "स्वास्थ्य मंत्री", 1, summary=summary, lang="hi")

    report = room.publish()

    assert (report.posted, report.length_errors, report.recomposed) == (1, 0, 0)
    status = status_of(server, url)
    assert 450 < server.counted_length(status["text"], "") <= 500


# -- the seed article and its related headlines ----------------------------------------------


def test_the_seed_article_links_its_three_related_headlines_found_in_the_store(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(max_characters=1000)
    seed_url = room.copy_seed()
    related = room.write_related()

    report = room.publish()

    assert (report.posted, report.failed) == (4, 0)
    links = "\n".join(f"→ {title} {url}" for title, url in related.items())
    expected = f"{SEED_TITLE}\n\n{SEED_LEAD}\n\n{seed_url}\n\nRelated:\n{links}"
    assert status_of(server, seed_url)["text"] == expected


def test_at_mastodon_s_limit_related_links_stay_with_shorter_headlines(
    room: Newsroom, server: FakeMastodon
) -> None:
    seed_url = room.copy_seed()
    related = room.write_related()
    room.publish()
    text = status_of(server, seed_url)["text"]
    lines = related_lines(text)
    assert len(lines) == len(related) == 3  # every related link is kept
    for line, (title, url) in zip(lines, related.items(), strict=True):
        shown = line.removeprefix("→ ").removesuffix(" " + url)
        assert line.endswith(" " + url)
        assert shown == title or (
            shown.endswith("…") and title.startswith(shown[:-1]) and title[len(shown) - 1] == " "
        )
    assert countable_length(text, "", 23) <= 500


def test_the_seed_article_without_its_related_articles_links_none_and_check_reports_them(
    room: Newsroom, server: FakeMastodon
) -> None:
    seed_url = room.copy_seed()
    harbour = room.write("2015/harbour.md", "Harbour reopens", 0.5, summary="Boats are back.")

    room.publish()

    text = status_of(server, seed_url)["text"]
    assert text.startswith(f"{SEED_TITLE}\n\n{SEED_LEAD}\n\n{seed_url}")
    for headline in (*SEED_RELATED, *RELATED_FILES.values()):
        assert headline.casefold() not in text.casefold()
    for line in related_lines(text):  # computed ones, if any, are real articles
        assert line.split()[-1] in {harbour}
    checked = room.cli("check")
    assert checked.exit_code == 0  # unresolved related headlines are warnings
    assert room.cli("check", "--strict").exit_code == 1
    reported = [line for line in checked.stdout.splitlines() if SEED_PATH in line]
    assert len(reported) == 3
    for headline, line in zip(SEED_RELATED, reported, strict=True):
        assert headline in line
        assert "matches no article" in line


# -- length ------------------------------------------------------------------------------------


def test_a_shorter_limit_drops_related_links_before_the_summary_never_headline_or_link(
    room: Newsroom, server: FakeMastodon
) -> None:
    seed_url = room.copy_seed()
    room.write_related()
    room.build()
    seen: list[tuple[int, int, bool]] = []
    for limit in (1000, 500, 400, 300, 200, 120, 90):
        server.configure(max_characters=limit)
        with room.runners() as runners:
            report = runners["main"].run(dry_run=True)
        composed = next(c for a, c in report.dry_run if a.url == seed_url)
        lines = composed.text.split("\n\n")
        assert lines[0] == SEED_TITLE
        assert seed_url in lines
        assert composed.length == countable_length(composed.text, "", 23) <= limit
        related = len(related_lines(composed.text))
        summary = lines[1] if len(lines) > 2 and lines[1] != seed_url else ""
        shortened = summary != SEED_LEAD
        assert not (shortened and related), f"at {limit} the summary went before the links"
        if shortened and summary:
            assert summary.endswith("…")
            assert SEED_LEAD.startswith(summary[:-1].rstrip())
        seen.append((limit, related, shortened))
    assert [related for _, related, _ in seen] == sorted((r for _, r, _ in seen), reverse=True)
    assert seen[0][1] == 3 and not seen[0][2]
    assert seen[-1][1] == 0 and seen[-1][2]

    server.configure(max_characters=120)
    assert room.publish().posted == 4
    assert countable_length(status_of(server, seed_url)["text"], "", 23) <= 120


def test_on_takahe_related_links_reach_readers_without_a_length_error(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(software="takahe")
    seed_url = room.copy_seed()
    related = room.write_related()

    report = room.publish()

    assert (report.posted, report.failed, report.length_errors) == (4, 0, 0)
    assert all(request["status"] == 200 for request in requests_of(server, "post_status"))
    seed = status_of(server, seed_url)
    replies = [s for s in server.live_statuses() if s["in_reply_to_id"] == seed["id"]]
    shown = related_lines(seed["text"]) + [
        line for reply in replies for line in related_lines(reply["text"])
    ]
    assert len(shown) >= 2 and all(any(url in line for url in related.values()) for line in shown)
    for status in server.live_statuses():  # code points, URLs in full, as Takahē counts
        assert len(status["text"]) <= 500


def test_a_length_error_teaches_the_target_once_ever(room: Newsroom, server: FakeMastodon) -> None:
    # Says Mastodon, counts like Takahē: the profile is wrong, the server teaches it.
    server.configure(count_urls_in_full=True, count_units="code_points", max_characters=300)
    seed_url = room.copy_seed()
    room.write_related()

    report = room.publish()

    assert (report.posted, report.failed, report.length_errors, report.recomposed) == (4, 0, 1, 1)
    answers = [request["status"] for request in requests_of(server, "post_status")]
    assert answers.count(422) == 1 and len(status_of(server, seed_url)["text"]) <= 300
    # A later pass, in a new publisher (as after a restart), composes by what was learned.
    room.write("later.md", "A later article about the Calais agreement " * 3, 0.5)
    again = room.publish()
    assert (again.posted, again.length_errors) == (1, 0)
    assert "learned from a length error" in again.rules


# -- server trouble ----------------------------------------------------------------------------


@pytest.mark.parametrize("reset_format", ["iso", "unix"])
def test_a_short_rate_limit_is_waited_out_then_the_post_goes_once(
    room: Newsroom, server: FakeMastodon, reset_format: str
) -> None:
    server.configure(rate_reset_format=reset_format, rate_reset_after=5)
    server.inject("post_status", "429")
    room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.posted, report.stopped) == (1, None)
    assert [r["status"] for r in requests_of(server, "post_status")] == [429, 200]
    assert len(room.sleeps) == 1
    assert 3.5 <= room.sleeps[0] <= 6.5  # until the reset (a Unix one is whole seconds), jittered
    assert len(server.live_statuses()) == 1


@pytest.mark.parametrize("reset_format", ["iso", "unix"])
def test_a_long_rate_limit_ends_the_pass_and_posting_waits_for_the_reset(
    room: Newsroom, server: FakeMastodon, reset_format: str
) -> None:
    server.configure(rate_reset_format=reset_format, rate_reset_after=1800)
    server.inject("post_status", "429")
    room.write("a.md", "Harbour reopens", 1)
    room.write("b.md", "Council votes", 0.5)
    room.build()
    started = datetime.now(UTC)
    moment = started

    with room.runners(clock=lambda: moment) as runners:
        first = runners["main"].run()
        second = runners["main"].run()  # the service's next pass, before the reset

    assert first.posted == second.posted == 0
    assert first.stopped is not None and "rate limited until" in first.stopped
    assert first.stop is StopReason.RATE_LIMITED and not first.needs_a_person
    assert second.stopped == first.stopped
    row = room.rows()["a"]
    assert row["state"] == "retry" and "429" in row["last_error"]
    assert abs(row["next_try"] - (started.timestamp() + 1800)) < 10
    assert room.sleeps == []
    assert len(requests_of(server, "post_status")) == 1

    later = started + timedelta(minutes=31)
    after = room.publish(build=False, clock=lambda: later)

    assert after.posted == 2
    assert posts_by_url(server.live_statuses()) == {url_of("a.md"): 1, url_of("b.md"): 1}
    assert [r["status"] for r in requests_of(server, "post_status")] == [429, 200, 200]


def test_server_errors_are_retried_with_backoff(room: Newsroom, server: FakeMastodon) -> None:
    server.configure(ignore_idempotency_key=True)
    server.inject("post_status", "503", "502")
    room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.posted, report.stopped) == (1, None)
    assert [r["status"] for r in requests_of(server, "post_status")] == [503, 502, 200]
    assert len(room.sleeps) == 2
    assert 0 <= room.sleeps[0] <= 2 and 0 <= room.sleeps[1] <= 4  # full jitter, doubling
    assert requests_of(server, "account_statuses")  # a 5xx may hide a post: looked for first
    assert len(server.live_statuses()) == 1
    assert room.rows()["a"]["tries"] == 0


def test_a_server_down_for_a_whole_pass_leaves_the_post_for_a_later_one(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.inject("post_status", "503", "503", "503")
    room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.posted, report.retries) == (0, 1)
    row = room.rows()["a"]
    assert row["state"] == "retry" and "503" in row["last_error"]
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert room.publish(clock=lambda: later).posted == 1
    assert len(server.live_statuses()) == 1


@pytest.mark.parametrize("fault", ["drop", "timeout", "reset"])
def test_a_post_whose_answer_was_lost_is_found_not_posted_again(
    room: Newsroom, server: FakeMastodon, fault: str
) -> None:
    server.configure(ignore_idempotency_key=True, timeout_delay=1.0)
    room.configure(timeout=0.3)
    server.inject("post_status", fault)
    url = room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.posted, report.stopped) == (1, None)
    assert len(requests_of(server, "post_status")) == 1
    status = status_of(server, url)
    assert room.rows()["a"]["status_id"] == status["id"]


def test_a_related_link_in_another_post_is_not_taken_for_the_post(
    room: Newsroom, server: FakeMastodon
) -> None:
    # "a" is posted first and links to "b" as related; b's first request is lost before
    # reaching the server. Reconciling b must not take a's post for b's.
    server.configure(ignore_idempotency_key=True)
    url_b = url_of("b.md")
    room.write("a.md", "Harbour reopens", 2, related=["Harbour fees go up"])
    room.write("b.md", "Harbour fees go up", 1)
    server.inject("post_status", None, "drop_before")

    report = room.publish()

    assert report.posted == 2
    status_a = status_of(server, url_of("a.md"))
    assert f"→ Harbour fees go up {url_b}" in status_a["text"]
    assert room.rows()["b"]["status_id"] == status_of(server, url_b)["id"]


def test_a_permanent_refusal_is_recorded_with_its_reason_and_not_retried(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.inject("post_status", "422")
    room.write("a.md", "Harbour reopens", 2)
    room.write("b.md", "Council votes", 1)

    report = room.publish()

    assert (report.posted, report.failed) == (1, 1)
    row = room.rows()["a"]
    assert row["state"] == "failed"
    assert "422" in row["last_error"] and "Unprocessable" in row["last_error"]
    for _ in range(2):
        later = datetime.now(UTC) + timedelta(days=1)
        assert room.publish(clock=lambda: later).posted == 0  # noqa: B023
    assert len(requests_of(server, "post_status")) == 2


@pytest.mark.parametrize("refusal", ["401", "403"])
def test_a_refused_token_stops_its_target_with_one_message_while_another_carries_on(
    room: Newsroom, server: FakeMastodon, refusal: str
) -> None:
    room.write("a.md", "Harbour reopens", 2)
    room.write("b.md", "Council votes", 1)
    with FakeMastodon(token=TOKEN, scopes=["read"]) as read_only:
        if refusal == "401":
            room.targets["other"] = target(server.base_url, token=BAD_TOKEN)
        else:
            room.targets["other"] = target(read_only.base_url)

        result = room.cli("publish", "--no-pacing")

        assert result.exit_code == 1
        assert "main: 2 posted" in result.stdout
        messages = [line for line in result.stderr.splitlines() if line.startswith("other:")]
        assert len(messages) == 1, result.stderr
        assert "access token was refused" in messages[0]
        assert f"HTTP {refusal}" in messages[0]
        if refusal == "403":
            # Checked at the start, before anything is sent: the missing scope is named.
            assert "lacks the scope write:media" in messages[0]
            assert requests_of(read_only, "post_status") == []
        assert room.rows("other") == {}
        assert read_only.live_statuses() == []
    assert len(server.live_statuses()) == 2


# -- backlog and pacing ------------------------------------------------------------------------


def test_articles_older_than_the_backlog_age_are_marked_skipped_not_posted(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(backlog_max_age_hours=24)
    room.write("old.md", "Old news", 30)
    recent = room.write("new.md", "Fresh news", 2)

    report = room.publish()

    assert (report.posted, report.skipped) == (1, 1)
    assert posts_by_url(server.live_statuses()) == {recent: 1}
    row = room.rows()["old"]
    assert row["state"] == "skipped" and "backlog" in row["last_error"]
    assert room.publish().posted == 0


def test_catch_up_marks_everything_seen_and_only_later_articles_are_posted(
    room: Newsroom, server: FakeMastodon
) -> None:
    for number in range(3):
        room.write(f"a{number}.md", f"Story {number}", 3 - number)

    caught = room.cli("catch-up")

    assert caught.exit_code == 0, caught.output
    assert "main: 3 article(s) marked as seen" in caught.stdout
    assert room.publish().posted == 0
    later = room.write("b.md", "Later story", 0.1)
    assert room.publish().posted == 1
    assert posts_by_url(server.live_statuses()) == {later: 1}
    assert {row["state"] for row in room.rows().values()} == {"skipped", "posted"}


def test_pacing_spreads_posts_at_posts_per_hour(room: Newsroom, server: FakeMastodon) -> None:
    room.configure(posts_per_hour=4)  # one every 15 minutes
    for number in range(3):
        room.write(f"a{number}.md", f"Story {number}", 3 - number)
    room.build()
    start = datetime.now(UTC)
    posted = []
    for minutes in (0, 1, 14, 15, 20, 31):
        moment = start + timedelta(minutes=minutes)
        report = room.publish(build=False, pacing=True, clock=lambda moment=moment: moment)
        posted.append(report.posted)
    assert posted == [1, 0, 0, 1, 0, 1]
    assert len(server.live_statuses()) == 3


def test_the_cli_paces_unless_told_not_to(room: Newsroom, server: FakeMastodon) -> None:
    for number in range(3):
        room.write(f"a{number}.md", f"Story {number}", 3 - number)
    paced = room.cli("publish")
    assert paced.exit_code == 0, paced.output
    assert "main: 1 posted" in paced.stdout and "2 waiting for pacing" in paced.stdout
    unpaced = room.cli("publish", "--no-pacing")
    assert "main: 2 posted" in unpaced.stdout
    assert len(server.live_statuses()) == 3


def test_a_command_with_nothing_due_sends_no_request_until_there_is_work(
    room: Newsroom, server: FakeMastodon
) -> None:
    """After a pass that did everything, a command finds from the database alone that
    nothing is due; a new article, a retry come due or other settings make a real pass."""
    room.write("a.md", "Harbour reopens", 2)
    assert "main: 1 posted" in room.cli("publish", "--no-pacing").stdout
    asked = len(server.requests)

    quiet = room.cli("publish", "--no-pacing")

    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout.startswith("main: 0 posted, 0 edited, 0 deleted, 0 skipped, 0 failed")
    assert len(server.requests) == asked  # not even the token was checked

    room.write("b.md", "Council votes", 1)  # a new article: the build changes the store
    assert "main: 1 posted" in room.cli("publish", "--no-pacing").stdout
    room.configure(edit_on_update=False)
    room.write("a.md", "Harbour reopens after the storm", 2)
    assert "main: 0 posted, 0 edited" in room.cli("publish", "--no-pacing").stdout
    asked = len(server.requests)
    room.cli("publish", "--no-pacing")
    assert len(server.requests) == asked
    room.configure(edit_on_update=True)  # the revision is now an edit to make
    assert "main: 0 posted, 1 edited" in room.cli("publish", "--no-pacing").stdout

    asked = len(server.requests)
    with opened(room.settings) as app:  # a retry come due (the post was made after all)
        app.deliveries().resolve_not_posted("main", "b", datetime.now(UTC))
    assert "main: 1 posted" in room.cli("publish", "--no-pacing").stdout
    assert len(server.requests) > asked
    assert len(server.live_statuses()) == 2  # found on the server, not posted again


def test_nothing_due_sees_articles_come_due_and_replies_to_retry(
    core: Newsroom, server: FakeMastodon
) -> None:
    """On SQLite and PostgreSQL: the mark is kept with the pass's record."""
    room = core
    room.write("a.md", "Harbour reopens", 2)
    room.write("c.md", "Ferry resumes", -0.5)  # scheduled: due in half an hour
    moment = datetime.now(UTC)
    assert room.publish(clock=lambda: moment).posted == 1
    (main,) = targets(room.settings)
    with opened(room.settings) as app:
        assert app.nothing_due(main, moment)
        assert not app.nothing_due(main, moment + timedelta(minutes=45))  # c came due
        related = RelatedStore(app.engine)
        related.keep("main", "a", (), (), in_reply=True, reply_key="k")
        assert not app.nothing_due(main, moment)  # a reply waiting for a post that was made
        related.release_posted("main")
        assert not app.nothing_due(main, moment)  # and now due
    room.configure(template="{headline}\n\n{link}")
    with opened(room.settings) as app:
        assert not app.nothing_due(targets(room.settings)[0], moment)


def test_a_mark_is_trusted_for_an_hour_then_the_server_is_asked_again(
    core: Newsroom, server: FakeMastodon
) -> None:
    """On SQLite and PostgreSQL: a command with nothing due asks the server again (its token)
    once the pass that left the mark is an hour old, or the clock went back before it."""
    room = core
    room.write("a.md", "Harbour reopens", 2)
    moment = datetime.now(UTC)
    assert room.publish(clock=lambda: moment).posted == 1
    (main,) = targets(room.settings)
    with opened(room.settings) as app:
        assert app.nothing_due(main, moment + SERVER_RECHECK - timedelta(seconds=1))
        assert not app.nothing_due(main, moment + SERVER_RECHECK)
        assert not app.nothing_due(main, moment - timedelta(minutes=5))
    later = moment + SERVER_RECHECK
    assert room.publish(clock=lambda: later).posted == 0  # a real pass: a fresh mark
    with opened(room.settings) as app:
        assert app.nothing_due(main, later + timedelta(minutes=59))


def test_a_revoked_token_is_reported_within_the_hour_though_nothing_is_due(
    room: Newsroom, server: FakeMastodon
) -> None:
    """A cron-driven ``publish`` with a revoked token and nothing to post exits 0 for at
    most an hour; then it fails and says why, and goes on failing until the token works."""
    room.write("a.md", "Harbour reopens", 2)
    assert "main: 1 posted" in room.cli("publish", "--no-pacing").stdout
    server.token = "another"  # revoked: the bot's token is refused from now on
    asked, checks = len(server.requests), len(requests_of(server, "verify_credentials"))

    quiet = room.cli("publish", "--no-pacing")  # the mark is fresh: nothing is asked
    assert quiet.exit_code == 0 and len(server.requests) == asked

    with opened(room.settings) as app, app.engine.begin() as conn:  # an hour goes by
        mark = read_mark(conn, "main")
        assert mark is not None
        write_mark(conn, "main", replace(mark, started=mark.started - SERVER_RECHECK))
    for _ in range(2):
        stopped = room.cli("publish", "--no-pacing")
        assert stopped.exit_code != 0
        assert "main: stopped:" in stopped.stderr and "token" in stopped.stderr
    assert len(requests_of(server, "verify_credentials")) == checks + 2
    assert len(requests_of(server, "post_status")) == 1


def test_a_command_with_nothing_due_loads_no_posting_code(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 2)
    assert "main: 1 posted" in room.cli("publish", "--no-pacing").stdout
    script = (
        "import sys\n"
        "from newsbot.cli import main\n"
        "try:\n"
        "    main(['publish', '--no-build', '--no-pacing'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "loaded = ('httpx', 'newsbot.publish.publisher', 'newsbot.publish.compose')\n"
        "print(sorted(set(loaded) & set(sys.modules)))\n"
    )
    env = {**os.environ, **environment(room.settings)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["main: 0 posted, 0 edited, 0 deleted, 0 skipped, "
                                        "0 failed, 0 to retry, 0 waiting for pacing, 0 replies, "
                                        "0 length errors, 0 uncertain", "[]"]  # fmt: skip


# -- revisions and withdrawals -----------------------------------------------------------------


@pytest.mark.parametrize("edit_on_update", [True, False])
def test_a_revised_article_edits_its_post(
    room: Newsroom, server: FakeMastodon, edit_on_update: bool
) -> None:
    room.configure(edit_on_update=edit_on_update)
    url = room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.publish()
    room.write("a.md", "Harbour reopens", 1, summary="Boats and ferries are back.")

    report = room.publish()

    status = status_of(server, url)
    assert len(server.statuses) == 1
    if edit_on_update:
        assert report.edited == 1
        assert "Boats and ferries are back." in status["text"]
        assert status["edits"] == 1
        assert room.publish().edited == 0  # once
    else:
        assert report.edited == 0
        assert "Boats are back." in status["text"]
    assert len(requests_of(server, "edit_status")) == (1 if edit_on_update else 0)


def test_a_revision_date_that_comes_edits_no_post(room: Newsroom, server: FakeMastodon) -> None:
    """A post shows no date: once an ``updated`` still to come passes, feeds and the page
    show it, and the post stays as it is (a revised text is edited when the file changes)."""
    room.configure(edit_on_update=True)
    later = datetime.now(UTC) + timedelta(hours=2)
    url = room.write("a.md", "Harbour reopens", 1, updated=(later - timedelta(hours=1)).isoformat())
    room.publish()
    with opened(room.settings) as app:
        app.builder.build(later)
    report = room.publish(build=False, clock=lambda: later)

    assert report.edited == 0
    assert requests_of(server, "edit_status") == []
    assert status_of(server, url)["edits"] == 0
    atom = (room.settings.feeds.output_dir / "atom.xml").read_text(encoding="utf-8")
    assert f"<updated>{(later - timedelta(hours=1)).replace(microsecond=0).isoformat()}" in atom


@pytest.mark.parametrize("how", ["flag", "file removed"])
@pytest.mark.parametrize("delete_on_withdraw", [True, False])
def test_a_withdrawn_article_deletes_its_post(
    room: Newsroom, server: FakeMastodon, how: str, delete_on_withdraw: bool
) -> None:
    room.configure(delete_on_withdraw=delete_on_withdraw)
    room.write("a.md", "Harbour reopens", 1)
    room.write("b.md", "Council votes", 0.5)
    room.publish()
    if how == "flag":
        room.write("a.md", "Harbour reopens", 1, withdrawn=True)
    else:
        (room.content / "a.md").unlink()

    report = room.publish()

    gone = server.statuses[0]
    if delete_on_withdraw:
        assert report.deleted == 1
        assert gone["deleted"]
        assert room.rows()["a"]["state"] == "deleted"
        assert room.publish().deleted == 0
    else:
        assert report.deleted == 0
        assert not gone["deleted"]
    assert not server.statuses[1]["deleted"]


def test_a_withdrawal_deletes_the_reply_too_even_when_the_post_is_already_gone(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(related_in="reply")
    room.write("a.md", "Harbour reopens", 2, related=["Harbour fees go up"])
    room.write("b.md", "Harbour fees go up", 1)
    room.publish()
    post, reply = server.statuses[0], server.statuses[1]
    assert reply["in_reply_to_id"] == post["id"]
    post["deleted"] = True  # deleted by hand on the server
    (room.content / "a.md").unlink()

    report = room.publish()

    assert report.deleted == 1
    assert reply["deleted"]
    assert room.rows()["a"]["state"] == "deleted"


def test_a_refused_delete_is_recorded_as_failed_and_not_tried_every_pass(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 1)
    room.write("b.md", "Council votes", 0.5)  # the store is not empty: a removal, not a lost mount
    room.publish()
    server.inject("delete_status", "422")
    (room.content / "a.md").unlink()

    assert room.publish().failed == 1
    assert room.publish().failed == 0

    row = room.rows()["a"]
    assert row["state"] == "failed" and "delete failed" in row["last_error"]
    assert len(requests_of(server, "delete_status")) == 1


def test_a_delete_the_server_keeps_failing_is_given_up_and_the_post_shown_still_up(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    room.write("a.md", "Harbour reopens", 1)
    room.write("b.md", "Council votes", 0.5)  # the store is not empty: a removal, not a lost mount
    room.publish()
    posted = room.rows()["a"]
    server.set_fault_rates("delete_status", {"500": 1.0})
    (room.content / "a.md").unlink()
    room.build()
    moment = datetime.now(UTC)

    with caplog.at_level(logging.WARNING, logger="newsbot"):
        room.hourly(moment, range(1, MAX_TRIES + 9))

    assert len(requests_of(server, "delete_status")) == MAX_TRIES
    assert not server.statuses[0]["deleted"]
    row = room.rows()["a"]
    assert (row["state"], row["action"], row["status_url"]) == (
        "failed", "delete", posted["status_url"],
    )  # fmt: skip
    assert row["last_error"].startswith(f"delete failed: gave up after {MAX_TRIES} tries")
    assert "500" in row["last_error"]
    given_up = [r for r in caplog.records if "delete failed" in r.getMessage()]
    assert len(given_up) == 1 and getattr(given_up[0], "article", None) == "a"
    assert getattr(given_up[0], "status_url", None) == posted["status_url"]
    # Where an operator looks: `newsbot state` and the status page, with the post's link.
    state = room.cli("state")
    assert state.exit_code == 0, state.output
    line = next(line for line in state.stdout.splitlines() if line.startswith("  failed   a "))
    assert "gave up" in line and f"the post is still up: {posted['status_url']}" in line
    with opened(room.settings) as app:
        page = StatusPage(app.index, DeliveryStore(app.engine), Status(), targets(room.settings))
        status = page.compose()
        html = page.render(status)
    failed = status["targets"][0]["failed"]
    assert [(f["article"], f["action"], f["status_url"]) for f in failed] == [
        ("a", "delete", posted["status_url"])
    ]
    assert f'<a href="{posted["status_url"]}"' in html


def test_a_delete_gets_all_its_tries_after_an_edit_used_some(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.write("b.md", "Council votes", 0.5)
    room.publish()
    room.write("a.md", "Harbour reopens", 1, summary="Ferries too.")
    room.build()
    server.set_fault_rates("edit_status", {"500": 1.0})
    server.set_fault_rates("delete_status", {"500": 1.0})
    moment = datetime.now(UTC)
    room.hourly(moment, range(1, MAX_TRIES))  # one try short of giving the edit up
    assert room.rows()["a"]["state"] == "retry"
    (room.content / "a.md").unlink()
    room.build()

    room.hourly(moment, range(MAX_TRIES, 2 * MAX_TRIES + 3))

    assert len(requests_of(server, "edit_status")) == MAX_TRIES - 1
    assert len(requests_of(server, "delete_status")) == MAX_TRIES
    row = room.rows()["a"]
    assert row["state"] == "failed"
    assert row["last_error"].startswith(f"delete failed: gave up after {MAX_TRIES} tries")


def test_a_delete_retried_after_server_errors_is_done_when_the_status_is_gone(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 1)
    room.write("b.md", "Council votes", 0.5)
    room.publish()
    server.inject("delete_status", "500", "503")
    server.statuses[0]["deleted"] = True  # by hand on the server: the third try is answered 404
    (room.content / "a.md").unlink()
    room.build()
    moment = datetime.now(UTC)

    reports = room.hourly(moment, (1, 2, 3, 4))

    assert [r.retries for r in reports] == [1, 1, 0, 0]
    assert [r.deleted for r in reports] == [0, 0, 1, 0]
    assert room.rows()["a"]["state"] == "deleted"
    assert len(requests_of(server, "delete_status")) == 3


def test_an_edit_the_server_keeps_failing_is_given_up_and_the_post_kept(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    # A server error that lasts (a transient answer that never changes for that edit).
    url = room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.publish()
    posted = room.rows()["a"]
    room.write("a.md", "Harbour reopens", 1, summary="Ferries too.")
    room.build()
    server.set_fault_rates("edit_status", {"500": 1.0})
    moment = datetime.now(UTC)

    with caplog.at_level(logging.WARNING, logger="newsbot"):
        room.hourly(moment, range(1, MAX_TRIES + 9))

    assert len(requests_of(server, "edit_status")) == MAX_TRIES
    row = room.rows()["a"]
    assert (row["state"], row["status_id"], row["status_url"]) == (
        "posted", posted["status_id"], posted["status_url"],
    )  # fmt: skip
    assert row["last_error"].startswith(f"edit failed: gave up after {MAX_TRIES} tries")
    assert "500" in row["last_error"]
    given_up = [
        r for r in caplog.records if "edit" in r.getMessage() and "gave up" in r.getMessage()
    ]
    assert len(given_up) == 1 and getattr(given_up[0], "article", None) == "a"
    assert "Boats are back." in status_of(server, url)["text"]
    server.set_fault_rates("edit_status", {})
    room.write("a.md", "Harbour reopens", 1, summary="Ferries and buses too.")
    last = moment + timedelta(hours=MAX_TRIES + 9)
    assert room.publish(clock=lambda: last).edited == 1  # a later revision is edited again


@contextmanager
def revised_in_one_process(
    room: Newsroom, summary: str
) -> Iterator[tuple[str, datetime, Publisher]]:
    """An article posted by a publisher, then revised, with that publisher (which still holds
    what it read of the server) ready for the edit: the article's URL, the clock, the publisher."""
    url = room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.build()
    moment = datetime.now(UTC)
    with room.runners(clock=lambda: moment) as runners:
        assert runners["main"].run().posted == 1
        room.write("a.md", "Harbour reopens", 1, summary=summary)
        room.build()
        yield url, moment, runners["main"]


def test_an_edit_akkoma_refuses_is_given_up_at_once_and_the_post_kept(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    # Pleroma and Akkoma answer any failure of an edit (here: one that is not its length)
    # with 400 {"error": "internal_server_error"}: a refusal, not a fault.
    server.configure(software="akkoma")
    with revised_in_one_process(room, "Ferries are back too.") as (url, moment, runner):
        server.inject("edit_status", "422")
        asked = len(requests_of(server, "instance"))
        with caplog.at_level(logging.WARNING, logger="newsbot"):
            report = runner.run()
        assert len(requests_of(server, "instance")) == asked + 1  # the limit read again: as it was
    later = room.hourly(moment, (1, 2, 3))  # every retry long due: none is made
    assert [r.failed for r in later] == [0, 0, 0]

    edits = requests_of(server, "edit_status")
    assert [edit["status"] for edit in edits] == [400]
    assert (report.failed, report.retries, report.edited, report.length_errors) == (1, 0, 0, 0)
    row = room.rows()["a"]
    assert row["state"] == "posted"
    assert row["last_error"].startswith("edit failed: PUT /api/v1/statuses/")
    assert "HTTP 400" in row["last_error"] and "internal_server_error" in row["last_error"]
    failed = [r for r in caplog.records if "edit failed" in r.getMessage()]
    assert len(failed) == 1 and getattr(failed[0], "article", None) == "a"
    assert "Boats are back." in status_of(server, url)["text"]


def test_an_edit_over_a_limit_lowered_since_it_was_read_is_recomposed_once(
    room: Newsroom, server: FakeMastodon
) -> None:
    # A process trusts the limits it read for a while; Pleroma's 400 does not say "too long",
    # so the limit is read again, and only because the edit is over it is a shorter one sent.
    server.configure(software="pleroma")
    longer = "Ferries, buses and the night trains are all back in the harbour."
    with revised_in_one_process(room, longer) as (url, _, runner):
        server.configure(max_characters=len(url) + 30)
        report = runner.run()

    assert [edit["status"] for edit in requests_of(server, "edit_status")] == [400, 200]
    assert (report.edited, report.recomposed, report.failed, report.length_errors) == (1, 1, 0, 0)
    text = status_of(server, url)["text"]
    assert "Boats" not in text and server.counted_length(text, "") <= len(url) + 30
    assert room.rows()["a"]["last_error"] is None


@pytest.mark.parametrize("software", ["pleroma", "akkoma"])
def test_a_template_crediting_a_remote_account_fits_pleroma_at_once(
    room: Newsroom, server: FakeMastodon, software: str
) -> None:
    # Pleroma and Akkoma count the text as sent (ActivityDraft.full_payload): the remote
    # mention in full, where Mastodon counts "@desk". Creates and edits fit the first time.
    server.configure(software=software, max_characters=160)
    room.configure(template="{headline}\n\n{summary}\n\n{link}\n\nvia @desk@news.example.org")
    summary = "Boats are back in the harbour after the storm, and ferries will follow. " * 3
    url = room.write("a.md", "Harbour reopens", 1, summary=summary)
    assert room.publish().posted == 1
    room.write("a.md", "Harbour reopens today", 1, summary="Ferries too. " + summary)

    report = room.publish()

    assert (report.edited, report.failed, report.length_errors) == (1, 0, 0)
    assert [r["status"] for r in requests_of(server, "post_status")] == [200]
    assert [r["status"] for r in requests_of(server, "edit_status")] == [200]
    text = status_of(server, url)["text"]
    assert text.startswith("Harbour reopens today") and text.endswith("@desk@news.example.org")
    assert server.counted_length(text, "") <= 160


def test_an_edit_left_pending_when_the_article_is_withdrawn_becomes_a_delete(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.publish()
    room.write("a.md", "Harbour reopens", 1, summary="Ferries too.")
    server.inject("edit_status", "503")
    assert room.publish().retries == 1
    assert room.rows()["a"]["state"] == "retry"
    room.write("a.md", "Harbour reopens", 1, withdrawn=True)

    later = datetime.now(UTC) + timedelta(minutes=10)
    report = room.publish(clock=lambda: later)

    assert report.deleted == 1
    assert server.statuses[0]["deleted"]


# -- media -------------------------------------------------------------------------------------


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("processing", ["sync", "async"])
def test_the_lead_image_is_uploaded_with_its_alt_text(
    room: Newsroom, server: FakeMastodon, processing: str
) -> None:
    if processing == "async":
        server.configure(media_async=True, media_processing_polls=1)
    image = _png()
    (room.content / "photos").mkdir()
    (room.content / "photos" / "harbour.png").write_bytes(image)
    alt = "Fishing boats moored in the harbour at dawn"
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "photos/harbour.png", "alt": alt})

    assert room.publish().posted == 1

    status = status_of(server, url)
    assert len(status["media_ids"]) == 1
    media = server.media[status["media_ids"][0]]
    assert media["description"] == alt
    assert media["sha256"] == hashlib.sha256(image).hexdigest()
    assert media["mime_type"] == "image/png"
    if processing == "async":
        polls = [
            r["status"]
            for r in requests_of(server, "get_media")
            if r["path"] != "/api/v1/media/0"  # the scope check at the start
        ]
        assert polls == [206, 200]
        assert [r["status"] for r in requests_of(server, "upload_media")] == [202]

    # An edit keeps only the media it sends: the image must go with it.
    room.write("a.md", "Harbour reopens", 1, summary="Boats are back.",
               image={"url": "photos/harbour.png", "alt": alt})  # fmt: skip
    assert room.publish().edited == 1
    edited = status_of(server, url)
    assert "Boats are back." in edited["text"]
    assert len(edited["media_ids"]) == 1


def test_a_media_failure_still_posts_without_the_image(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(media_fail=True)
    (room.content / "harbour.png").write_bytes(_png())
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "harbour.png", "alt": "Boats"})

    report = room.publish()

    assert (report.posted, report.failed) == (1, 0)
    assert status_of(server, url)["media_ids"] == []
    assert [r["status"] for r in requests_of(server, "upload_media")] == [422]


def _media_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "posting without the image" in r.getMessage()]


def test_an_image_over_the_servers_size_limit_is_neither_read_nor_sent(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    server.configure(image_size_limit=1000)
    image = _png() + bytes(2000)  # trailing bytes after IEND: still a PNG, 2,000 bytes too big
    (room.content / "harbour.png").write_bytes(image)
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "harbour.png", "alt": "Boats"})

    with caplog.at_level(logging.WARNING, logger="newsbot"):
        report = room.publish()

    assert (report.posted, report.failed) == (1, 0)
    assert status_of(server, url)["media_ids"] == []
    assert requests_of(server, "upload_media") == []  # the server would refuse it (422)
    [warning] = _media_warnings(caplog)
    assert getattr(warning, "article", None) == "a"
    assert f"{len(image)} bytes" in warning.getMessage()
    assert "limit of 1000 bytes" in warning.getMessage()


def test_an_image_of_a_type_the_server_does_not_take_is_left_out_with_a_warning(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    """The post goes without it, and the operator is told why (it went silently)."""
    server.configure(supported_mime_types=["image/jpeg"])
    (room.content / "harbour.png").write_bytes(_png())
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "harbour.png", "alt": "Boats"})

    with caplog.at_level(logging.WARNING, logger="newsbot"):
        report = room.publish()

    assert (report.posted, report.failed) == (1, 0)
    assert status_of(server, url)["media_ids"] == []
    assert requests_of(server, "upload_media") == []
    [warning] = _media_warnings(caplog)
    assert getattr(warning, "article", None) == "a"
    assert "image/png, which the server does not take" in warning.getMessage()


@pytest.mark.parametrize("size", [16 * 1024 * 1024 + 1, 4 * 1024**3], ids=["16MiB+1", "4GiB"])
def test_a_huge_image_is_left_out_at_mastodons_limit_when_the_server_states_none(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    server.configure(instance_v2=False, instance_v1="legacy")  # no media_attachments at all
    image = room.content / "harbour.png"
    image.write_bytes(_png())
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "harbour.png", "alt": "Boats"})
    room.build()  # copied while small: what is left to read is the upload's
    os.truncate(image, size)  # sparse: no GBs written

    with caplog.at_level(logging.WARNING, logger="newsbot"):
        report = room.publish(build=False)

    assert (report.posted, report.failed) == (1, 0)
    assert status_of(server, url)["media_ids"] == []
    assert requests_of(server, "upload_media") == []
    [warning] = _media_warnings(caplog)
    assert f"{size} bytes" in warning.getMessage()
    assert f"limit of {16 * 1024 * 1024} bytes" in warning.getMessage()


def test_an_image_at_the_servers_size_limit_is_uploaded(
    room: Newsroom, server: FakeMastodon
) -> None:
    image = _png()
    server.configure(image_size_limit=len(image))
    (room.content / "harbour.png").write_bytes(image)
    url = room.write("a.md", "Harbour reopens", 1, image={"url": "harbour.png", "alt": "Boats"})

    assert room.publish().posted == 1

    [media_id] = status_of(server, url)["media_ids"]
    assert server.media[media_id]["sha256"] == hashlib.sha256(image).hexdigest()


# -- related links in a reply ------------------------------------------------------------------


def test_related_links_can_go_in_a_reply_under_the_post(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(related_in="reply")
    seed_url = room.copy_seed()
    related = room.write_related()

    room.publish()

    post = status_of(server, seed_url)
    assert post["text"] == f"{SEED_TITLE}\n\n{SEED_LEAD}\n\n{seed_url}"
    replies = [s for s in server.live_statuses() if s["in_reply_to_id"] == post["id"]]
    assert len(replies) == 1
    reply = replies[0]
    links = [f"→ {title} {url}" for title, url in related.items()]
    assert reply["text"] == "Related:\n" + "\n".join(links)
    assert reply["visibility"] == "unlisted"
    assert reply["language"] == "en"
    kept = RelatedStore(open_database(database_url(room.settings.state))).get(
        "main", "2015/france-uk-calais-agreement"
    )
    assert kept is not None and (kept.reply_state, kept.reply_id) == ("posted", reply["id"])
    assert sorted(posts_by_url(server.live_statuses()).values()) == [1, 1, 1, 1]


def test_a_reply_of_related_links_is_never_taken_for_a_post() -> None:
    url = "https://news.example.org/articles/b/"
    reply = (
        '<p>Related:<br />→ Harbour fees go up <a href="https://news.example.org/articles/b/">'
        '<span class="invisible">https://</span><span>news.example.org/articles/b/</span></a></p>'
    )
    post = '<p>Harbour fees go up</p><p>Dearer.</p><p><a href="https://news.example.org/articles/b/">x</a></p>'
    similar = '<p>Other</p><p><a href="https://news.example.org/articles/b/c/">x</a></p>'
    bare = "Harbour fees go up\n\nhttps://news.example.org/articles/b/"
    assert not links_as_its_own(reply, url)
    assert links_as_its_own(post, url)
    assert not links_as_its_own(similar, url)
    assert links_as_its_own(bare, url)
    assert links_as_its_own(post.replace("/b/", "/b/?a=1&amp;b=2"), url + "?a=1&b=2")


# -- the command line ------------------------------------------------------------------------


def test_dry_run_prints_each_status_with_its_length_and_the_limit_and_sends_nothing(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.write("a.md", "Harbour reopens", 2, summary="Boats are back.", tags=["Harbour"])
    room.write("b.md", "Council votes", 1, summary="The budget passed.")

    result = room.cli("publish", "--dry-run")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "--- main · a" in out and "--- main · b" in out
    for title in ("Harbour reopens", "Council votes"):
        block = out.split(title, 1)[1].split("---", 1)[0]
        text = (title + block).split("\n— ", 1)[0]
        counted = countable_length(text, "", 23)
        assert f"— {counted}/500 characters (graphemes, URLs counted as 23), language en" in block
    assert {r["method"] for r in server.requests} == {"GET"}
    assert server.statuses == []
    assert room.rows() == {}


def test_state_shows_posted_urls_failed_reasons_and_a_stopped_pass(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.inject("post_status", "422")
    room.write("a.md", "Harbour reopens", 2)
    room.write("b.md", "Council votes", 1)
    room.publish()

    shown = room.cli("state")

    assert shown.exit_code == 0, shown.output
    status = status_of(server, url_of("b.md"))
    lines = shown.stdout.splitlines()
    assert lines[0] == "store: healthy, 2 live articles"
    assert lines[1].startswith(f"main ({server.base_url}/): 1 failed, 1 posted")
    assert lines[2] == f"  account 1 on {server.base_url}/"
    assert f"  posted   b  {status['url']}" in lines
    failed = [line for line in lines if line.startswith("  failed   a  ")]
    assert len(failed) == 1 and "422" in failed[0]

    server.configure(scopes=["write"])  # verify_credentials now refused: the pass stops
    room.publish()
    assert "last pass stopped: the access token was refused" in room.cli("state").stdout


def test_tokens_never_appear_in_any_output_or_log(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.configure(error_body="html", timeout_delay=1.0)
    room.configure(timeout=0.3)
    room.targets["other"] = target(server.base_url, token=BAD_TOKEN)
    room.write("a.md", "Harbour reopens", 3)
    room.write("b.md", "Council votes", 2)
    room.write("c.md", "Storm warning", 1)
    server.inject("post_status", "503", "timeout", "drop", "429", "422")
    outputs = []
    for command in (
        ("publish", "--dry-run"),
        ("publish", "--no-pacing"),
        ("publish", "--no-pacing"),
        ("state",),
        ("catch-up",),
        ("config", "show"),
    ):
        result = room.cli(*command)
        outputs += [result.stdout, result.stderr, repr(result.exception)]
    report = room.publish("other")
    outputs += [repr(report), report.stopped or "", caplog.text, str(room.rows("other"))]
    everything = "\n".join(outputs)
    assert "Harbour reopens" in everything  # the outputs were captured
    for secret in (TOKEN, BAD_TOKEN, TOKEN[4:20], BAD_TOKEN[4:20]):
        assert secret not in everything
    assert all(r["authorization_valid"] for r in requests_of(server, "post_status"))


# -- the core, on SQLite and PostgreSQL --------------------------------------------------------


@pytest.fixture
def core(tmp_path: Path, server: FakeMastodon, database_url: str) -> Newsroom:
    return Newsroom(tmp_path, server, database_url)


def test_core_each_article_is_posted_once(core: Newsroom, server: FakeMastodon) -> None:
    urls = [core.write(f"a{n}.md", f"Story {n}", 3 - n) for n in range(3)]
    assert core.publish().posted == 3
    assert core.publish().posted == 0
    assert posts_by_url(server.live_statuses()) == dict.fromkeys(urls, 1)
    assert {row["state"] for row in core.rows().values()} == {"posted"}


def _build_held_to_permissions(room: Newsroom) -> subprocess.CompletedProcess[str]:
    """``newsbot build`` as a process the kernel holds to permission bits."""
    command = [*held_to_permissions(), sys.executable, "-m", "newsbot", "build"]
    env = {**os.environ, **environment(room.settings)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_core_an_article_whose_page_cannot_be_written_is_posted_once_it_is(
    core: Newsroom, server: FakeMastodon
) -> None:
    """Its feeds are written and the build ends, but a post would link to a page that is not
    there: no pass posts it, ``newsbot state`` says why, and the pass after the build that
    writes the page posts it (a pass that found nothing to do meanwhile does not hide it)."""
    core.write("a.md", "Council votes the budget", 3)
    assert core.publish().posted == 1
    link = core.write("b.md", "Harbour reopens after the storm", 2)
    pages = core.settings.feeds.output_dir / "articles"
    pages.chmod(0o555)  # no folder for a new page can be made
    try:
        failed = _build_held_to_permissions(core)
    finally:
        pages.chmod(0o755)
    assert failed.returncode == 3, failed.stderr
    assert "Harbour reopens" in (core.settings.feeds.output_dir / "rss.xml").read_text()
    assert not (pages / "b/index.html").exists()
    with core.runners() as runners:  # one process's publisher, as the service keeps it
        assert runners["main"].run().posted == 0
        assert runners["main"].run().posted == 0  # after a pass that left its mark
        assert link not in posts_by_url(server.live_statuses())
        shown = core.cli("state").output
        assert "b  its page is not written yet: cannot write" in shown, shown
        assert "Permission denied" in shown
        with opened(core.settings) as app:
            page = StatusPage(
                app.index, DeliveryStore(app.engine), Status(), targets(core.settings)
            )
            held = page.compose()["unwritten"]
        assert [u["article"] for u in held] == ["b"] and "Permission denied" in held[0]["why"]
        again = _build_held_to_permissions(core)
        assert again.returncode == 0, again.stderr
        assert runners["main"].run().posted == 1
    assert posts_by_url(server.live_statuses())[link] == 1
    assert "its page is not written" not in core.cli("state").output


def test_core_an_article_whose_tag_feed_cannot_be_written_is_posted_without_waiting(
    core: Newsroom, server: FakeMastodon
) -> None:
    """A post links to the article's page, which is written: a feed the build could not write
    holds nothing back. ``newsbot state`` and the status page list the feed's files until
    a build writes them."""
    core.write("a.md", "Council votes the budget", 3, tags=["Harbour"])
    assert core.publish().posted == 1
    link = core.write("b.md", "Harbour reopens after the storm", 2, tags=["Harbour"])
    tag = core.settings.feeds.output_dir / "tags/harbour"
    tag.chmod(0o555)  # the tag's feeds cannot be replaced
    try:
        failed = _build_held_to_permissions(core)
    finally:
        tag.chmod(0o755)
    assert failed.returncode == 3, failed.stderr
    assert f"cannot write {tag}/rss.xml: Permission denied" in failed.stderr
    assert "Harbour reopens" not in (tag / "rss.xml").read_text()
    assert "Harbour reopens" in (core.settings.feeds.output_dir / "rss.xml").read_text()
    with core.runners() as runners:
        assert runners["main"].run().posted == 1
    assert posts_by_url(server.live_statuses())[link] == 1
    shown = core.cli("state").output
    assert "unwritten  tags/harbour/rss.xml  cannot write" in shown, shown
    with opened(core.settings) as app:
        page = StatusPage(app.index, DeliveryStore(app.engine), Status(), targets(core.settings))
        listed = page.compose()["unwritten_files"]
    assert [u["file"] for u in listed] == [
        "tags/harbour/atom.xml", "tags/harbour/feed.json", "tags/harbour/index.html",
        "tags/harbour/rss.xml",
    ]  # fmt: skip
    again = _build_held_to_permissions(core)
    assert again.returncode == 0, again.stderr
    assert "Harbour reopens" in (tag / "rss.xml").read_text()
    assert "unwritten" not in core.cli("state").output


def test_a_posted_article_whose_page_then_cannot_be_written_keeps_its_post(
    room: Newsroom, server: FakeMastodon
) -> None:
    """Its link still holds the page written before: the post is neither deleted nor made
    again, whatever the build could not write."""
    link = room.write("a.md", "Council votes the budget", 2)
    assert room.publish().posted == 1
    room.write("a.md", "Council votes the budget at last", 2)
    page = room.settings.feeds.output_dir / "articles/a"
    page.chmod(0o555)  # the page's file cannot be replaced
    try:
        assert _build_held_to_permissions(room).returncode == 3
    finally:
        page.chmod(0o755)
    report = room.publish(build=False)
    assert (report.posted, report.deleted) == (0, 0)
    assert posts_by_url(server.live_statuses()) == {link: 1}


class _Crash(BaseException):
    """The process dies here (nothing catches it, as nothing catches SIGKILL)."""


@pytest.mark.parametrize("reached", [True, False], ids=["post-made", "post-not-made"])
def test_core_a_sending_row_left_by_a_crash_is_reconciled_not_posted_twice(
    core: Newsroom, server: FakeMastodon, reached: bool
) -> None:
    server.configure(ignore_idempotency_key=True)
    url = core.write("a.md", "Harbour reopens", 1)
    core.build()

    def die(*args: Any, **kwargs: Any) -> None:
        raise _Crash()

    with core.runners() as runners, pytest.raises(_Crash):
        runner = runners["main"]
        if reached:
            runner.store.succeeded = die  # type: ignore[method-assign]
        else:
            runner.client.post_status = die  # type: ignore[method-assign]
        runner.run()
    assert core.rows()["a"]["state"] == "sending"
    assert len(server.live_statuses()) == (1 if reached else 0)

    report = core.publish(build=False)

    assert report.posted == 1
    assert len(requests_of(server, "post_status")) == 1
    status = status_of(server, url)
    row = core.rows()["a"]
    assert (row["state"], row["status_id"]) == ("posted", status["id"])


def test_a_post_found_after_a_crash_is_edited_if_the_article_was_revised_meanwhile(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(ignore_idempotency_key=True)
    url = room.write("a.md", "Harbour reopens", 1, summary="Boats are back.")
    room.build()

    def die(*args: Any, **kwargs: Any) -> None:
        raise _Crash()

    with room.runners() as runners, pytest.raises(_Crash):
        runners["main"].store.succeeded = die  # type: ignore[method-assign]
        runners["main"].run()
    room.write("a.md", "Harbour reopens", 1, summary="Boats and ferries are back.")

    report = room.publish()

    assert (report.posted, report.edited) == (1, 1)
    assert len(server.statuses) == 1
    assert "Boats and ferries are back." in status_of(server, url)["text"]


def test_a_shutdown_sends_nothing_more(room: Newsroom, server: FakeMastodon) -> None:
    room.write("a.md", "Harbour reopens", 1)
    room.build()
    stop = threading.Event()
    stop.set()
    settings = room.settings
    with (
        opened(settings) as app,
        publishers(settings, app.engine, targets(settings), stop=stop) as runners,
    ):
        report = runners[0].run()
    assert report.interrupted and report.stopped is None
    assert requests_of(server, "post_status") == []
    assert room.rows() == {}


def test_core_a_sending_row_is_found_even_after_many_other_posts(
    core: Newsroom, server: FakeMastodon
) -> None:
    # The row's first attempt is known, so the search goes back past the first pages.
    server.configure(ignore_idempotency_key=True)
    url = core.write("a.md", "Harbour reopens", 1)
    core.build()
    settings = core.settings
    with opened(settings) as app:
        stored = DeliveryStore(app.engine).article("a")
        assert stored is not None
        key = idempotency_key("main", "a", revision_of(stored.article))
        DeliveryStore(app.engine).begin(
            Attempt("main", "a", "create", revision_of(stored.article), key, url),
            datetime.now(UTC),
        )
    with make_http_client(5) as http:
        client = MastodonClient(server.base_url, SecretStr(TOKEN), http)
        client.post_status(StatusRequest(f"Harbour reopens\n\n{url}"), key)
        for number in range(250):
            client.post_status(StatusRequest(f"Unrelated {number}"), f"k{number}")

    report = core.publish(build=False)

    assert report.posted == 1
    assert len(server.live_statuses()) == 251
    assert core.rows()["a"]["status_id"] == status_of(server, url)["id"]


def test_core_the_lease_lets_one_owner_at_a_time(core: Newsroom) -> None:
    engine = open_database(database_url(core.settings.state))
    try:
        now = datetime.now(UTC)
        ttl = timedelta(minutes=10)
        first, second = Leases(engine, "first"), Leases(engine, "second")
        assert first.acquire("publish:main", now, ttl)
        assert not second.acquire("publish:main", now, ttl)
        assert first.acquire("publish:main", now, ttl)  # ours: renewed
        assert second.acquire("publish:other", now, ttl)  # another name is another lease
        assert not second.renew("publish:main", now, ttl)
        assert first.renew("publish:main", now + timedelta(minutes=5), ttl)
        assert not second.acquire("publish:main", now + timedelta(minutes=12), ttl)
        assert second.acquire("publish:main", now + timedelta(minutes=16), ttl)  # expired
        assert not first.renew("publish:main", now + timedelta(minutes=16), ttl)
        first.release("publish:main")  # not first's any more: stays
        assert second.holder("publish:main") == "second"
        second.release("publish:main")
        assert second.holder("publish:main") is None
        assert first.acquire("publish:main", now + timedelta(minutes=16), ttl)
    finally:
        engine.dispose()


def test_core_a_lease_held_by_a_dead_process_is_taken_at_once(core: Newsroom) -> None:
    code = "from newsbot.state.leases import process_owner; print(process_owner(), flush=True)"
    dead = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    living = subprocess.Popen(
        [sys.executable, "-c", code + "; import time; time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    engine = open_database(database_url(core.settings.state))
    try:
        assert living.stdout is not None
        alive = living.stdout.readline().strip()
        assert not is_alive(dead) and is_alive(alive) and is_alive(process_owner())
        now, ttl = datetime.now(UTC), timedelta(minutes=10)
        assert Leases(engine, dead).acquire("publish:main", now, ttl)
        assert Leases(engine, alive).acquire("publish:other", now, ttl)
        ours = Leases(engine, process_owner())
        assert ours.acquire("publish:main", now, ttl)
        assert not ours.acquire("publish:other", now, ttl)
    finally:
        living.kill()
        living.wait()
        if living.stdout is not None:
            living.stdout.close()
        engine.dispose()


def test_core_a_pass_is_skipped_while_another_process_holds_the_lease(
    core: Newsroom, server: FakeMastodon
) -> None:
    core.write("a.md", "Harbour reopens", 1)
    core.build()
    engine = open_database(database_url(core.settings.state))
    try:
        other = Leases(engine, "elsewhere/1/1/x/y")
        assert other.acquire("publish:main", datetime.now(UTC), timedelta(minutes=10))
        report = core.publish(build=False)
        assert report.busy == "elsewhere/1/1/x/y"
        assert (report.posted, report.stopped) == (0, None)
        assert requests_of(server, "post_status") == []
        other.release("publish:main")
        assert core.publish(build=False).posted == 1
        assert Leases(engine, "x").holder("publish:main") is None  # released after the pass
    finally:
        engine.dispose()


def test_core_a_copy_that_died_in_another_container_holds_posting_back_a_minute_at_most(
    core: Newsroom, server: FakeMastodon
) -> None:
    """Copies in containers cannot see each other's processes (nor, each with a data volume
    of its own, their owner files): a copy killed while it held
    the lease is judged by the lease's expiry alone, and the live copy waits that long."""
    core.write("a.md", "Harbour reopens", 1)
    core.build()
    engine = open_database(database_url(core.settings.state))
    try:
        killed = datetime.now(UTC) - timedelta(seconds=61)
        gone = Leases(engine, "another-container/1/1/elsewhere/y")
        assert gone.acquire("publish:main", killed, PASS_LEASE_TTL)
        report = core.publish(build=False)
        assert (report.busy, report.posted) == (None, 1)
    finally:
        engine.dispose()


def test_core_a_pass_keeps_its_lease_while_a_post_waits_for_the_server(
    core: Newsroom, server: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short lease must not run out under a pass that waits on a slow server: another copy
    would take it and pass over the same articles meanwhile."""
    ttl = timedelta(seconds=2)
    monkeypatch.setattr("newsbot.app.PASS_LEASE_TTL", ttl)
    core.write("a.md", "Harbour reopens", 1)
    core.build()
    server.configure(slow_delay=4.0)
    server.inject("post_status", "slow")
    reports: list[PassReport] = []
    passing = threading.Thread(target=lambda: reports.append(core.publish(build=False)))
    engine = open_database(database_url(core.settings.state))
    try:
        passing.start()
        deadline = time.monotonic() + 30
        while not requests_of(server, "post_status") and time.monotonic() < deadline:
            time.sleep(0.02)
        arrived = datetime.now(UTC)
        # The lease as taken before the post has run out by now, unless it was renewed.
        time.sleep((ttl + timedelta(seconds=1.1)).total_seconds())
        assert passing.is_alive(), "the post was answered before the lease was put to the test"
        other = Leases(engine, "another-container/1/1/elsewhere/y")
        assert not other.acquire("publish:main", datetime.now(UTC), ttl), arrived
    finally:
        passing.join()
        engine.dispose()
    assert (reports[0].posted, reports[0].stopped) == (1, None)


# -- dry run, state, resolve, by profile ------------------------------------------------------


def test_dry_run_offline_counts_by_the_named_profile_and_lists_every_article(
    room: Newsroom, server: FakeMastodon
) -> None:
    hindi = "भारत में चुनाव आयोग ने नई मतदाता सूची जारी की " * 8
    room.write("hi.md", "चुनाव", 3, summary=hindi.strip(), lang="hi")
    room.write("old.md", "Harbour reopens", 24 * 365)  # older than the backlog horizon
    for n in range(3):
        room.write(f"n{n}.md", f"Council votes {n}", 2 - n * 0.1)
    server.stop()  # no server at all

    result = room.cli("publish", "--dry-run", "--profile", "takahe", "--json")

    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    posted = {o["article"]: o for o in objects if "status" in o}
    skipped = {o["article"]: o["skip"] for o in objects if "skip" in o}
    assert set(posted) == {"hi", "n0", "n1", "n2"}
    assert skipped == {"old": "backlog: older than the target's max age"}
    hi = posted["hi"]
    assert "code points" in hi["counting"]
    assert len(hi["status"]) == hi["length"] <= hi["limit"]  # code points, as Takahē counts
    text = room.cli("publish", "--dry-run", "--profile", "takahe")
    assert "skip old: backlog" in text.stdout and "counted as takahe" in text.stdout


def test_a_server_that_cannot_list_private_posts_makes_a_lost_answer_uncertain(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(software="takahe", home_timeline=False, timeout_delay=1.0)
    room.configure(visibility="private", profile="unknown", timeout=0.3)
    server.inject("post_status", "drop")
    url = room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert (report.posted, report.uncertain) == (0, 1)
    assert room.rows()["a"]["state"] == "uncertain"
    assert len(requests_of(server, "post_status")) == 1  # never sent again blindly
    again = room.publish()
    assert again.posted == 0 and len(requests_of(server, "post_status")) == 1
    shown = room.cli("state").stdout
    assert "  uncertain a  " in shown and "newsbot resolve main a" in shown
    status = status_of(server, url)
    assert room.cli("resolve", "main", "a", "--posted", status["url"]).exit_code == 0
    assert room.rows()["a"]["state"] == "posted"
    assert room.rows()["a"]["status_id"] == status["id"]
    assert room.cli("resolve", "main", "a", "--not-posted").exit_code == 1  # not uncertain now


def test_state_lists_waiting_posts_with_their_due_times(
    room: Newsroom, server: FakeMastodon
) -> None:
    room.configure(posts_per_hour=4)
    for n in range(3):
        room.write(f"w{n}.md", f"Council votes {n}", 2 - n * 0.1)
    room.publish(pacing=True)

    lines = room.cli("state").stdout.splitlines()

    waiting = [line for line in lines if line.startswith("  waiting  ")]
    assert [line.split()[1] for line in waiting] == ["w1", "w2"]
    dues = [datetime.fromisoformat(line.split("due ")[1]) for line in waiting]
    assert dues[1] - dues[0] == timedelta(minutes=15)
    assert any(line.startswith("  profile: mastodon") for line in lines)


@pytest.mark.parametrize("software", ["mastodon", "takahe"])
def test_an_edit_keeps_the_related_set_and_the_limit(
    room: Newsroom, server: FakeMastodon, software: str
) -> None:
    server.configure(software=software)
    room.configure(backlog_max_age_hours=YEARS)
    related = room.write_related()
    picks = list(related)[:2]  # editors' picks; the third slot is the ranking's
    url = room.write("a.md", "Calais security agreement signed", 2, summary="Short.", related=picks)
    room.publish()
    post = status_of(server, url)
    before = [
        line for s in server.live_statuses() if s["id"] == post["id"] or
        s["in_reply_to_id"] == post["id"] for line in related_lines(s["text"])
    ]  # fmt: skip
    # A new, closer article appears, and the summary grows long: the edit keeps its set.
    room.write("b.md", "Calais security agreement signed again", 1)
    room.write("a.md", "Calais security agreement signed", 2, summary="Long. " * 120, related=picks)

    report = room.publish()

    assert report.edited == 1
    after_post = server.status(post["id"])
    assert after_post is not None
    after = [
        line for s in server.live_statuses() if s["id"] == post["id"] or
        s["in_reply_to_id"] == post["id"] for line in related_lines(s["text"])
    ]  # fmt: skip
    assert [line.split()[-1] for line in after] == [line.split()[-1] for line in before]
    assert url_of("b.md") not in after_post["text"]
    assert len(before) >= 2 and all(line.split()[-1] in related.values() for line in before)
    # Within the limit by the server's own count, though Takahē does not check edits.
    assert server.counted_length(after_post["text"], after_post["spoiler_text"]) <= 500


def test_a_hindi_article_is_posted_on_takahe(room: Newsroom, server: FakeMastodon) -> None:
    server.configure(software="takahe")
    summary = "भारत में चुनाव आयोग ने नई मतदाता सूची जारी की और सभी दलों को सूचित किया " * 6
    url = room.write("hi.md", "चुनाव आयोग की नई सूची", 1, summary=summary.strip(), lang="hi")

    report = room.publish()

    assert (report.posted, report.failed, report.length_errors) == (1, 0, 0)
    assert len(status_of(server, url)["text"]) <= 500  # code points


def test_a_target_that_recovers_says_so_once(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="newsbot.publish.publisher")
    room.write("a.md", "Harbour reopens", 1)
    server.configure(software="takahe")
    good = server.token
    server.token = "another"  # the bot's token is refused: Takahē's 400 text/plain
    stopped = room.publish()
    assert stopped.stopped is not None and "refused" in stopped.stopped
    assert stopped.stop is StopReason.TOKEN_REFUSED and stopped.needs_a_person
    assert "HTTP 400" in stopped.stopped and "Invalid Bearer token" in stopped.stopped
    server.token = good

    assert room.publish().posted == 1
    assert room.publish().posted == 0
    recovered = [r for r in caplog.records if r.getMessage().startswith("target recovered")]
    assert len(recovered) == 1


def test_a_rate_limit_without_headers_is_waited_out(room: Newsroom, server: FakeMastodon) -> None:
    server.configure(software="takahe")  # no X-RateLimit-* headers at all
    server.inject("post_status", "429")
    room.write("a.md", "Harbour reopens", 1)

    first = room.publish()

    assert first.posted == 0 and first.stopped is not None and "rate limited" in first.stopped
    assert room.rows()["a"]["state"] == "retry"


def test_a_direct_target_on_friendica_stops_with_a_clear_reason(
    room: Newsroom, server: FakeMastodon
) -> None:
    server.configure(software="friendica")
    room.configure(visibility="direct")
    room.write("a.md", "Harbour reopens", 1)

    report = room.publish()

    assert report.posted == 0
    assert report.stopped == (
        "friendica cannot post direct statuses: choose one of public, unlisted, private"
    )
    assert requests_of(server, "post_status") == []


def test_one_process_between_passes_notices_revisions_withdrawals_and_articles_come_due(
    room: Newsroom, server: FakeMastodon
) -> None:
    """The service keeps its publishers: a pass after one that did everything reads only the
    articles come due since, until the store changes; a change is noticed at once."""
    room.write("a.md", "Harbour reopens", 2)
    room.write("b.md", "Council votes", 1)
    room.write("c.md", "Ferry resumes", -0.5)  # scheduled: due in half an hour
    room.build()
    moment = datetime.now(UTC)
    with room.runners(clock=lambda: moment) as runners:
        runner = runners["main"]
        assert runner.run().posted == 2
        assert (runner.run().posted, len(server.live_statuses())) == (0, 2)  # nothing new
        moment += timedelta(hours=1)
        assert runner.run().posted == 1  # come due, without a build
        room.write("a.md", "Harbour reopens after the storm", 2)
        room.build()
        assert runner.run().edited == 1
        (room.content / "b.md").unlink()
        room.build()
        assert runner.run().deleted == 1
        quiet = runner.run()
        assert (quiet.posted, quiet.edited, quiet.deleted) == (0, 0, 0)
    assert len(requests_of(server, "edit_status")) == 1
    assert len(server.live_statuses()) == 2


@pytest.mark.parametrize(
    ("server", "refused"),
    [
        ("https://mastodon.example/", False),
        ("https://mastodon.example", False),
        ("https://example.org/friendica/", False),  # installed in a subfolder: its API is there
        ("https://mastodon.example/api/v1/", True),
        ("https://mastodon.example/api/", True),
        ("https://mastodon.example/@news", True),
        ("https://example.org/friendica/api/v1", True),
    ],
)
def test_a_server_address_that_is_an_api_or_profile_address_is_refused(
    server: str, refused: bool
) -> None:
    settings = Settings(targets={"main": {"server": server, "token": "t"}})  # type: ignore[dict-item]
    [target] = targets(settings)
    assert (target.problem is not None) == refused
    if refused:
        assert target.problem is not None and "targets.main.server has a path" in target.problem


def test_a_pass_skipped_for_another_copy_is_said_once_when_it_lasts(
    room: Newsroom, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    """Copies sharing a database meet now and then, which is worth no line; a holder that
    keeps the lease for pass after pass (one that died in another container) is said once,
    at INFO, until a pass runs again."""
    room.write("a.md", "Harbour reopens", 1)
    room.build()
    engine = open_database(database_url(room.settings.state))
    other = Leases(engine, "another-container/1/1/elsewhere/y")
    caplog.set_level(logging.DEBUG, logger="newsbot.publish.publisher")

    def said() -> list[int]:
        levels = [r.levelno for r in caplog.records if r.message.startswith("pass skipped")]
        caplog.clear()
        return levels

    try:
        with room.runners() as runners:
            assert other.acquire("publish:main", datetime.now(UTC), PASS_LEASE_TTL)
            for _ in range(4):
                assert runners["main"].run().busy
            assert said() == [logging.DEBUG, logging.INFO, logging.DEBUG, logging.DEBUG]
            other.release("publish:main")
            assert runners["main"].run().posted == 1
            assert other.acquire("publish:main", datetime.now(UTC), PASS_LEASE_TTL)
            assert runners["main"].run().busy
            assert said() == [logging.DEBUG]  # a new streak, not yet worth a line
    finally:
        engine.dispose()
