"""Commands on the targets: ``publish``, ``catch-up``, ``state``, ``resolve``."""

from __future__ import annotations

import sys
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsbot.cli.common import (
    EXIT_PROBLEMS,
    EXIT_SETTINGS,
    NO_TARGET,
    Context,
    configure_logging,
    fail,
    open_app,
)
from newsbot.quiet import Watched
from newsbot.state.delivery_states import DeliveryState
from newsbot.times import epoch_seconds, from_epoch, utc_now

if TYPE_CHECKING:
    from newsbot.publish.publisher import PassReport, Publisher
    from newsbot.publish.targets import Target
    from newsbot.settings import Settings
    from newsbot.state.database import Engine
    from newsbot.state.deliveries import Delivery, DeliveryStore


@click.command()
@click.option("--target", "-t", "only", multiple=True, help="Only this target (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Print every status as it would be sent; send nothing."
)
@click.option("--no-build", is_flag=True, help="Do not read the store first.")
@click.option(
    "--no-pacing",
    is_flag=True,
    help="Post everything due now, ignoring posts_per_hour (for a first run or tests).",
)
@click.option(
    "--profile",
    "profile",
    type=click.Choice(
        [
            "mastodon",
            "takahe",
            "pleroma",
            "gotosocial",
            "misskey",
            "friendica",
            "unknown",
            "learned",
        ]
    ),  # fmt: skip
    help="Dry run without the server: count as this server software (or as last learned).",
)
@click.option("--json", "as_json", is_flag=True, help="Dry run: one JSON object per article.")
@click.pass_obj
def publish(
    obj: Context,
    only: tuple[str, ...],
    dry_run: bool,
    no_build: bool,
    no_pacing: bool,
    profile: str | None,
    as_json: bool,
) -> None:
    """Post new articles to the configured targets, until done or pacing says wait.

    Each article goes to each target once; revised articles edit their post and
    withdrawn ones delete it, where the target wants that. A target that
    another newsbot process is publishing to right now is skipped.

    With --dry-run nothing is sent: every article a pass would post is shown
    with the exact text, its length by the target's server profile, its image
    and its reply, and every article it would not post with why. Without a
    reachable server it counts by the last profile detected (or --profile).
    """
    from newsbot.publish.report import PassReport
    from newsbot.publish.targets import targets

    if (profile or as_json) and not dry_run:
        fail("--profile and --json go with --dry-run", EXIT_SETTINGS)
    settings = obj.settings
    recorder = obj.quiet if no_build and not dry_run else None
    if recorder is not None and settings.state.database_url is None:
        recorder.watch(_watched(settings))  # before anything of the state is read
    chosen = targets(settings, only)
    if not chosen:
        fail(NO_TARGET, EXIT_SETTINGS)
    configure_logging(settings)
    failed = False
    with open_app(settings) as app:
        if not no_build:
            built = app.builder.build(utc_now())
            if built.suspect is not None:
                click.echo(f"newsbot: error: {built.suspect.message()}", err=True)
                failed = True
        for target in chosen:
            if target.problem and profile is None:
                click.echo(f"{target.name}: {target.problem}", err=True)
                failed = True
        if not dry_run:
            now = utc_now()
            quiet = [t for t in chosen if not t.problem and app.nothing_due(t, now)]
            lines = [_done(PassReport(target.name)) for target in quiet]
            for line in lines:
                click.echo(line)
            chosen = [t for t in chosen if t not in quiet]
            if recorder is not None and quiet and not chosen and not failed:
                until = epoch_seconds(app.quiet_until(quiet, now))
                recorder.answer(lines, now.timestamp(), until)
        with app.publishers(chosen, pacing=not no_pacing, offline_profile=profile) as runners:
            for runner in runners:
                report = _passes(runner, dry_run)
                if dry_run:
                    from newsbot.publish.dryrun import dry_run_json, dry_run_text

                    if as_json:
                        for line in dry_run_json(runner, report):
                            click.echo(line)
                    else:
                        click.echo(dry_run_text(runner, report))
                    if report.note:
                        click.echo(f"{runner.name}: {report.note}", err=True)
                    continue
                if report.busy:
                    click.echo(f"{runner.name}: skipped, another process is publishing to it")
                elif not dry_run:
                    click.echo(_done(report))
                if report.stopped:
                    click.echo(f"{runner.name}: stopped: {report.stopped}", err=True)
                    failed = True
    if failed:
        sys.exit(EXIT_PROBLEMS)


SYSTEM_ZONE = ("/etc/localtime", "/etc/timezone")
"""Where a crontab setting's validation (apscheduler, through tzlocal) finds the local zone."""


def _watched(settings: Settings) -> Watched:
    """What a publish command's answer depends on besides the settings' sources
    (`newsbot.quiet`): the SQLite file, and what the settings' validation looks at on
    disk (the paths it resolves, the token and key files, the time zone files)."""
    tokens = [str(t.token_file) for t in settings.targets.values() if t.token_file is not None]
    key = settings.activitypub.key_file
    keys = [] if key is None else [str(key)]
    zones = [str(Path(folder) / settings.site.timezone) for folder in zoneinfo.TZPATH]
    folders = (settings.feeds.output_dir, settings.store.content_dir, settings.state.data_dir)
    return Watched(
        str(settings.state.sqlite_file),
        paths=[*(str(folder) for folder in folders), *tokens, *keys, *SYSTEM_ZONE],
        contents=[*tokens, *SYSTEM_ZONE],
        files=[*keys, *zones],
    )


def _done(report: PassReport) -> str:
    """The line a command prints for what a target's passes did."""
    return (
        f"{report.target}: {report.posted} posted, {report.edited} edited, "
        f"{report.deleted} deleted, {report.skipped} skipped, "
        f"{report.failed} failed, {report.retries} to retry, "
        f"{report.waiting} waiting for pacing, {report.replies} replies, "
        f"{report.length_errors} length errors, {report.uncertain} uncertain"
        + (f", {report.held} edits or deletions held" if report.held else "")
    )


def _passes(runner: Publisher, dry_run: bool) -> PassReport:
    """Passes until the work runs out or pacing holds the rest back; their totals."""
    total = runner.run(dry_run=dry_run)
    while not dry_run and total.posted and not (total.stopped or total.busy or total.waiting):
        more = runner.run()
        if not (more.posted or more.edited or more.deleted or more.skipped):
            break
        for name in ("posted", "edited", "deleted", "skipped", "failed", "retries", "replies",
                     "length_errors", "recomposed", "uncertain"):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(more, name))
        total.waiting, total.busy = more.waiting, more.busy
        total.stopped, total.stop = more.stopped, more.stop
    return total


@click.command(name="catch-up")
@click.option("--target", "-t", "only", multiple=True, help="Only this target (repeatable).")
@click.pass_obj
def catch_up(obj: Context, only: tuple[str, ...]) -> None:
    """Mark every article not yet posted as seen, without posting it.

    For a new account, or after a long pause: followers get what comes next,
    not a flood of old news. When a target's token was found to belong to
    another account, that account is taken on: the posts of the former one stay
    as they are, never edited or deleted from here.
    """
    from newsbot.app import pass_lease
    from newsbot.publish.targets import targets

    settings = obj.settings
    chosen = targets(settings, only)
    if not chosen:
        fail(NO_TARGET, EXIT_SETTINGS)
    busy = False
    with open_app(settings) as app:
        now = utc_now()
        app.builder.build(now)
        store = app.deliveries()
        leases = app.leases()
        for target in chosen:
            lease = pass_lease(leases, target.name)
            if not lease.acquire():
                click.echo(f"{target.name}: skipped, another process is publishing to it", err=True)
                busy = True
                continue
            try:
                adopted = store.adopt_moved(target.name)
                if adopted is not None:
                    account, retired = adopted
                    click.echo(
                        f"{target.name}: now posting as account {account.account_id} on "
                        f"{account.server}; {retired} post(s) of the former account are left "
                        "as they are"
                    )
                total = 0
                while batch := store.new_articles(target.name, now, 1000):
                    total += store.skip(target.name, batch, "catch-up", now)
            finally:
                lease.release()
            click.echo(f"{target.name}: {total} article(s) marked as seen")
    if busy:
        sys.exit(EXIT_PROBLEMS)


@click.command()
@click.option("--target", "-t", "only", multiple=True, help="Only this target (repeatable).")
@click.option("--limit", default=20, show_default=True, help="Rows shown per list.")
@click.pass_obj
def state(obj: Context, only: tuple[str, ...], limit: int) -> None:
    """Show per target what was posted, waiting, pending, uncertain or failed, and why.

    Also the articles no target posts until a build writes their page, the
    other output files the last build could not write or remove (which hold nothing), the
    server profile and counting rule in force (and whether a length error
    taught it), the replies holding related links, and the posts that pacing
    holds back, with when each is due. With the ActivityPub actor on, its
    deliveries and received activities by state, and those waiting for a
    retry or given up (`newsbot requeue` tries these again).
    """
    from newsbot.publish.targets import targets
    from newsbot.state import suspect, unwritten
    from newsbot.state.deliveries import ACTIVE, DeliveryState, DeliveryStore, ReplyState
    from newsbot.state.learning import TargetKnowledge
    from newsbot.state.replies import RelatedStore

    settings = obj.settings
    now = utc_now()
    with open_app(settings) as app:
        store = DeliveryStore(app.engine)
        verdict = suspect.load(app.engine)
        if verdict is not None:
            click.echo(f"store: SUSPECT since {verdict.since}: {verdict.message()}")
        else:
            click.echo(f"store: healthy, {app.index.live_count()} live articles")
        for article_id, error in unwritten.listing(app.engine)[:limit]:
            click.echo(
                f"  held     {article_id}  its page is not written yet: {error}; "
                "posted once a build writes it"
            )
        for name, removal, error in unwritten.file_listing(app.engine)[:limit]:
            label = "unremoved" if removal else "unwritten"
            click.echo(f"  {label}  {name}  {error}; each build tries again")
        knowledge = TargetKnowledge(app.engine)
        related = RelatedStore(app.engine)
        for target in targets(settings, only):
            counts = store.report(target.name)
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing yet"
            click.echo(f"{target.name} ({target.settings.server}): {summary}")
            account = store.account_of(target.name)
            if account is not None and account.account_id is not None:
                click.echo(f"  account {account.account_id} on {account.server or '?'}")
            known = knowledge.get(target.name)
            learned = " (counting learned from a length error)" if known.learned else ""
            click.echo(
                f"  profile: {known.software or 'not detected yet'}{learned}; "
                f"length errors: {known.length_errors}"
            )
            if known.stopped_since is not None:
                click.echo(f"  stopped since {known.stopped_since.isoformat(timespec='seconds')}")
            last_error = store.last_pass_error(target.name)
            if last_error:
                click.echo(f"  last pass stopped: {last_error}")
            replies = related.counts(target.name)
            if replies:
                click.echo(
                    "  replies: " + ", ".join(f"{n} {s}" for s, n in sorted(replies.items()))
                )
            unsettled = (ReplyState.UNCERTAIN, ReplyState.FAILED, *ACTIVE)
            for reply in related.listing(target.name, unsettled):
                click.echo(
                    f"  reply {reply.reply_state:9} {reply.article_id}  {reply.last_error or ''}"
                )
            for article_id, due in _waiting(store, target, now, limit):
                click.echo(f"  waiting  {article_id}  due {due.isoformat(timespec='minutes')}")
            for title, states in (
                ("uncertain", (DeliveryState.UNCERTAIN,)),
                ("pending", ACTIVE),
                ("failed", (DeliveryState.FAILED,)),
                ("posted", (DeliveryState.POSTED,)),
            ):
                for row in store.listing(target.name, states, limit):
                    shown = row.status_url if states == (DeliveryState.POSTED,) else row.last_error
                    detail = shown or _in_flight(row) or ""
                    if row.state == DeliveryState.FAILED and row.status_url:
                        detail += f"; the post is still up: {row.status_url}"  # to delete by hand
                    click.echo(f"  {title:8} {row.article_id}  {detail}")
        if settings.activitypub.enabled and not only:
            _activitypub_state(app.engine, limit)


def _activitypub_state(engine: Engine, limit: int) -> None:
    """The actor's work by state; what waits for a retry, and what was given up and why."""
    from newsbot.state.ap_deliveries import DeliveryRows
    from newsbot.state.inbox import GIVEN_UP, WAITING, InboxRows

    deliveries, inbox = DeliveryRows(engine), InboxRows(engine)
    sent = ", ".join(f"{n} {s}" for s, n in sorted(deliveries.counts().items())) or "none yet"
    received = ", ".join(f"{n} {s}" for s, n in sorted(inbox.counts().items())) or "none yet"
    click.echo(f"activitypub: deliveries: {sent}; received: {received}")
    for entry in inbox.listing(WAITING, limit):
        due = from_epoch(entry.next_try).isoformat(timespec="minutes")
        click.echo(f"  waiting  {entry.type} from {entry.actor}  try {entry.tries + 1} due {due}: "
                   f"{entry.last_error}")  # fmt: skip
    given_up = inbox.listing(GIVEN_UP, limit)
    for entry in given_up:
        click.echo(f"  given up {entry.type} from {entry.actor}  after {entry.tries} tries: "
                   f"{entry.last_error}")  # fmt: skip
    rows = deliveries.given_up(limit)
    for row in rows:
        click.echo(f"  given up {row.type} to {row.inbox}  ({row.state}, {row.tries} tries): "
                   f"{row.last_error}")  # fmt: skip
    if given_up or rows:
        click.echo("  (once the cause is fixed, `newsbot requeue` tries what was given up again)")


def _in_flight(row: Delivery) -> str | None:
    """Why a delivery is "sending" with no error: its request got no answer recorded.

    A stop that did not wait for the server, or a crash, leaves it so; the
    operator is told that nothing needs doing, since the next pass looks for
    the post on the account before it sends again.
    """
    if row.state != DeliveryState.SENDING or row.last_attempt is None:
        return None
    sent = from_epoch(row.last_attempt).isoformat(timespec="seconds")
    return (
        f"sent {sent}, no answer recorded (stopped or crashed meanwhile): "
        "the next pass looks for it on the account before sending again"
    )


def _waiting(
    store: DeliveryStore, target: Target, now: datetime, limit: int
) -> list[tuple[str, datetime]]:
    """Posts pacing holds back, with when each is due (evenly spaced after the last post)."""
    from newsbot.publish import rules

    new = store.new_articles(target.name, now, limit)
    fresh = rules.sort(target.settings, new, lambda stored: stored.article, now).to_post
    due = rules.due_times(target.settings, now, store.last_posted(target.name), len(fresh))
    return [(stored.article.id, at) for stored, at in zip(fresh, due, strict=True)]


@click.command()
@click.argument("target")
@click.argument("article_id")
@click.option(
    "--posted", "status", metavar="STATUS_URL", help="It was posted: its status URL or id."
)
@click.option("--not-posted", is_flag=True, help="It was not posted: post it on the next pass.")
@click.option("--reply", is_flag=True, help="Resolve the article's reply, not its post.")
@click.pass_obj
def resolve(
    obj: Context, target: str, article_id: str, status: str | None, not_posted: bool, reply: bool
) -> None:
    """Settle an uncertain delivery: say whether the post (or its reply) exists on the server.

    Only a delivery in state "uncertain" is changed: one whose request may have
    been carried out on a server that cannot list the account's posts of its
    visibility. Look at the account, then say --posted URL or --not-posted.
    """
    from newsbot.state.deliveries import DeliveryState, DeliveryStore, ReplyState
    from newsbot.state.replies import RelatedStore

    if (status is None) == (not not_posted):
        fail("say either --posted STATUS_URL or --not-posted", EXIT_SETTINGS)
    now = utc_now()
    with open_app(obj.settings) as app:
        store = DeliveryStore(app.engine)
        related = RelatedStore(app.engine)
        if reply:
            row = related.get(target, article_id)
            if row is None or row.reply_state != ReplyState.UNCERTAIN:
                fail(f"{target}: the reply of {article_id} is not uncertain", EXIT_PROBLEMS)
            if status is not None:
                related.reply_posted(target, article_id, _status_id(status), status)
            else:
                why = "resolved: not posted"
                related.reply_failed(target, article_id, why, now, ReplyState.RETRY)
        else:
            delivery = store.get(target, article_id)
            if delivery is None or delivery.state != DeliveryState.UNCERTAIN:
                fail(f"{target}: {article_id} is not an uncertain delivery", EXIT_PROBLEMS)
            if status is not None:
                store.resolve_posted(target, article_id, _status_id(status), status, now)
            else:
                store.resolve_not_posted(target, article_id, now)
    click.echo(f"{target}: {article_id} resolved as {'posted' if status else 'not posted'}")


def _status_id(status: str) -> str:
    """A status id from its URL (its last path segment) or the id itself."""
    return status.rstrip("/").rsplit("/", 1)[-1]
