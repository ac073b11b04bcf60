"""The command line: ``newsbot build | check | new | import | publish | state | run | config``.

Library errors become messages and exit codes here, and only here:

    0  success
    1  the store has problems (``check``), or some articles could not be read
       (``build`` still writes everything else)
    2  bad usage or invalid settings
    3  the store, the output folder or the state database cannot be used
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import click
from pydantic import SecretStr

from newsbot import __version__
from newsbot.errors import NewsbotError, Problem, SettingsError
from newsbot.settings import Settings, TargetSettings, load_settings

EXIT_PROBLEMS = 1
EXIT_SETTINGS = 2
EXIT_UNUSABLE = 3

if TYPE_CHECKING:
    from newsbot.app import App
    from newsbot.build.builder import Progress
    from newsbot.publish.publisher import PassReport, Publisher
    from newsbot.publish.targets import Target
    from newsbot.state.deliveries import DeliveryStore

log = logging.getLogger("newsbot")


class Context:
    """What the group hands its commands: the config file given, settings loaded lazily."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except SettingsError as exc:
                _fail(str(exc), EXIT_SETTINGS)
        assert self._settings is not None
        return self._settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="NEWSBOT_CONFIG",
    help="TOML settings file (default: embedded defaults; env NEWSBOT_CONFIG).",
)
@click.version_option(__version__, prog_name="newsbot")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """newsbot turns an article store into feeds and Mastodon posts.

    Exit codes: 0 success, 1 problems in the store, 2 bad usage or settings,
    3 store, output folder or database unusable.
    """
    ctx.obj = Context(config)


@main.command()
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--confirm-removals",
    is_flag=True,
    help="The store is empty or lost many articles on purpose: remove them from the output, "
    "and let publish passes delete their posts.",
)
@click.pass_obj
def build(obj: Context, quiet: bool, confirm_removals: bool) -> None:
    """Read the store and write the feeds and pages into the output folder.

    Only files changed since the last build are read, and only the feeds they
    belong to are written again. A suspect store (missing, unreadable, empty,
    or lost more than store.removals_allowed_share of its live articles) changes
    nothing, and exits 3.
    """
    with _app(obj.settings) as app:
        app.output.check_writable()
        with _progress("Reading articles", quiet) as progress:
            report = app.builder.build(
                datetime.now(UTC), progress, confirm_removals=confirm_removals
            )
    if report.suspect is not None:
        _fail(f"error: {report.suspect.message()}", EXIT_UNUSABLE)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not quiet:
        click.echo(
            f"{report.files} articles in the store, {report.read} read, {report.removed} removed; "
            f"{report.feeds_written} feed files and {report.pages_written} pages written, "
            f"{report.stale_removed} stale files removed "
            f"in {report.seconds:.2f} s -> {app.settings.feeds.output_dir}/"
        )
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per problem.")
@click.option(
    "--targets",
    "check_targets",
    is_flag=True,
    help="Check the targets instead: server, software, token and scopes (posts nothing).",
)
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.pass_obj
def check(obj: Context, as_json: bool, check_targets: bool, strict: bool) -> None:
    """List every problem of the store; exit 1 if there is an error.

    Errors: broken files (with line and field), ids used twice, links outside
    the store. Warnings: related headlines that match no article (they are
    left out, never guessed); --strict makes them fail too. With --targets:
    whether each target's server answers, what it runs, whether the token is
    accepted and has the scopes newsbot needs, asked with GET requests only.
    """
    if check_targets:
        _check_targets(obj.settings, as_json)
        return
    from newsbot.build.check import check_store

    with _app(obj.settings) as app:
        problems = check_store(app.settings, app.index)
    for problem in problems:
        click.echo(json.dumps(_problem_dict(problem)) if as_json else str(problem))
    warnings = sum(1 for p in problems if p.warning)
    if not as_json:
        click.echo(f"{len(problems) - warnings} error(s), {warnings} warning(s)", err=True)
    if any(not p.warning for p in problems) or (strict and problems):
        sys.exit(EXIT_PROBLEMS)


def _check_targets(settings: Settings, as_json: bool) -> None:
    from newsbot.mastodon.client import make_http_client
    from newsbot.publish.target_check import check_target

    if not settings.targets:
        _fail(_NO_TARGET, EXIT_SETTINGS)
    failed = False
    for name, target in sorted(settings.targets.items()):
        with make_http_client(target.timeout) as http:
            found = check_target(name, target, http)
        failed = failed or not found.ok
        if as_json:
            click.echo(json.dumps(found.to_json()))
            continue
        click.echo(f"{name} ({found.server}): {'ok' if found.ok else 'NOT USABLE'}")
        if found.reachable:
            click.echo(f"  software: {found.software or 'not reported'}")
        if found.limits is not None:
            click.echo(
                f"  limits: {found.limits.max_characters} characters, "
                f"URLs count {found.limits.characters_reserved_per_url}"
            )
        if found.account:
            click.echo(f"  account: {found.account}")
        scopes = "not reported" if found.scopes is None else " ".join(found.scopes)
        click.echo(f"  application scopes: {scopes}")
        for problem in found.problems:
            click.echo(f"  problem: {problem}")
    if failed:
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.argument("title")
@click.option("--section", help="The article's section.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--publish", is_flag=True, help="Not a draft: published at the next build.")
@click.pass_obj
def new(
    obj: Context, title: str, section: str | None, tags: tuple[str, ...], publish: bool
) -> None:
    """Write a Markdown article skeleton for TITLE in the store; print its path.

    Dated now (in site.timezone), with an explicit id that stays when the file
    moves, and marked as a draft unless --publish.
    """
    from newsbot.store.skeleton import new_article

    settings = obj.settings
    now = datetime.now(settings.site.zone)
    try:
        path, article_id = new_article(
            settings.store.content_dir, title, now, section=section, tags=tags, draft=not publish
        )
    except NewsbotError as exc:
        _fail(str(exc), EXIT_SETTINGS)
    except OSError as exc:
        _fail(f"cannot write into {settings.store.content_dir}: {exc.strerror}", EXIT_UNUSABLE)
    click.echo(path)
    click.echo(
        f"id {article_id}" + ("" if publish else "; a draft until `draft: true` goes"), err=True
    )


@main.command(name="import")
@click.argument("pages", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--into",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder in the store (default: the store's root).",
)
@click.option("--force", is_flag=True, help="Overwrite existing Markdown files.")
@click.pass_obj
def import_(obj: Context, pages: tuple[Path, ...], into: Path | None, force: bool) -> None:
    """Convert scraped news pages into Markdown articles in the store.

    The Markdown keeps the page's id, so feeds and posts see the same article;
    editors can then correct it like any other.
    """
    from newsbot.store.importer import import_page

    settings = obj.settings
    target = into or settings.store.content_dir
    failed = 0
    for page in pages:
        try:
            written = import_page(page, target, settings, overwrite=force)
        except NewsbotError as exc:
            failed += 1
            click.echo(f"problem: {exc}", err=True)
            continue
        click.echo(f"{page} -> {written}")
    if failed:
        sys.exit(EXIT_PROBLEMS)


@main.command()
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
    from newsbot.publish.dryrun import dry_run_json, dry_run_text
    from newsbot.publish.targets import targets

    if (profile or as_json) and not dry_run:
        _fail("--profile and --json go with --dry-run", EXIT_SETTINGS)
    settings = obj.settings
    chosen = targets(settings, only)
    if not chosen:
        _fail(_NO_TARGET, EXIT_SETTINGS)
    _configure_logging(settings)
    failed = False
    with _app(settings) as app:
        if not no_build:
            built = app.builder.build(datetime.now(UTC))
            if built.suspect is not None:
                click.echo(f"newsbot: error: {built.suspect.message()}", err=True)
                failed = True
        for target in chosen:
            if target.problem and profile is None:
                click.echo(f"{target.name}: {target.problem}", err=True)
                failed = True
        with app.publishers(chosen, pacing=not no_pacing, offline_profile=profile) as runners:
            for runner in runners:
                report = _passes(runner, dry_run)
                if dry_run:
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
                    click.echo(
                        f"{runner.name}: {report.posted} posted, {report.edited} edited, "
                        f"{report.deleted} deleted, {report.skipped} skipped, "
                        f"{report.failed} failed, {report.retries} to retry, "
                        f"{report.waiting} waiting for pacing, {report.replies} replies, "
                        f"{report.length_errors} length errors, {report.uncertain} uncertain"
                        + (f", {report.held} edits or deletions held" if report.held else "")
                    )
                if report.stopped:
                    click.echo(f"{runner.name}: stopped: {report.stopped}", err=True)
                    failed = True
    if failed:
        sys.exit(EXIT_PROBLEMS)


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
        total.waiting, total.stopped, total.busy = more.waiting, more.stopped, more.busy
    return total


@main.command(name="catch-up")
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
        _fail(_NO_TARGET, EXIT_SETTINGS)
    busy = False
    with _app(settings) as app:
        now = datetime.now(UTC)
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


@main.command()
@click.option("--target", "-t", "only", multiple=True, help="Only this target (repeatable).")
@click.option("--limit", default=20, show_default=True, help="Rows shown per list.")
@click.pass_obj
def state(obj: Context, only: tuple[str, ...], limit: int) -> None:
    """Show per target what was posted, waiting, pending, uncertain or failed, and why.

    Also the server profile and counting rule in force (and whether a length
    error taught it), the replies holding related links, and the posts that
    pacing holds back, with when each is due.
    """
    from newsbot.publish.targets import targets
    from newsbot.state import suspect
    from newsbot.state.deliveries import DeliveryStore
    from newsbot.state.learning import TargetKnowledge
    from newsbot.state.replies import RelatedStore

    settings = obj.settings
    now = datetime.now(UTC)
    with _app(settings) as app:
        store = DeliveryStore(app.engine)
        verdict = suspect.load(app.engine)
        if verdict is not None:
            click.echo(f"store: SUSPECT since {verdict.since}: {verdict.message()}")
        else:
            click.echo(f"store: healthy, {app.index.live_count()} live articles")
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
            for reply in related.listing(target.name, ("uncertain", "failed", "retry", "sending")):
                click.echo(
                    f"  reply {reply.reply_state:9} {reply.article_id}  {reply.last_error or ''}"
                )
            for article_id, due in _waiting(store, target, now, limit):
                click.echo(f"  waiting  {article_id}  due {due.isoformat(timespec='minutes')}")
            for title, states in (
                ("uncertain", ("uncertain",)),
                ("pending", ("sending", "retry")),
                ("failed", ("failed",)),
                ("posted", ("posted",)),
            ):
                for row in store.listing(target.name, states, limit):
                    detail = row.status_url if title == "posted" else (row.last_error or "")
                    click.echo(f"  {title:8} {row.article_id}  {detail}")


def _waiting(
    store: DeliveryStore, target: Target, now: datetime, limit: int
) -> list[tuple[str, datetime]]:
    """Posts pacing holds back, with when each is due (evenly spaced after the last post)."""
    settings = target.settings
    horizon = now - timedelta(hours=settings.backlog_max_age_hours)
    fresh = [
        s for s in store.new_articles(target.name, now, limit) if s.article.published >= horizon
    ]
    spacing = timedelta(seconds=3600 / settings.posts_per_hour)
    last = store.last_posted(target.name)
    due = now if last is None else max(now, last + spacing)
    waiting = []
    for stored in fresh:
        waiting.append((stored.article.id, due))
        due += spacing
    return waiting


@main.command()
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
    from newsbot.state.deliveries import DeliveryStore
    from newsbot.state.replies import RelatedStore

    if (status is None) == (not not_posted):
        _fail("say either --posted STATUS_URL or --not-posted", EXIT_SETTINGS)
    now = datetime.now(UTC)
    with _app(obj.settings) as app:
        store = DeliveryStore(app.engine)
        related = RelatedStore(app.engine)
        if reply:
            row = related.get(target, article_id)
            if row is None or row.reply_state != "uncertain":
                _fail(f"{target}: the reply of {article_id} is not uncertain", EXIT_PROBLEMS)
            if status is not None:
                related.reply_posted(target, article_id, _status_id(status), status)
            else:
                related.reply_failed(target, article_id, "resolved: not posted", now, "retry")
        else:
            delivery = store.get(target, article_id)
            if delivery is None or delivery.state != "uncertain":
                _fail(f"{target}: {article_id} is not an uncertain delivery", EXIT_PROBLEMS)
            if status is not None:
                store.resolve_posted(target, article_id, _status_id(status), status, now)
            else:
                store.resolve_not_posted(target, article_id, now)
    click.echo(f"{target}: {article_id} resolved as {'posted' if status else 'not posted'}")


def _status_id(status: str) -> str:
    """A status id from its URL (its last path segment) or the id itself."""
    return status.rstrip("/").rsplit("/", 1)[-1]


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=20, show_default=True, help="Servers shown.")
@click.pass_obj
def followers(obj: Context, as_json: bool, limit: int) -> None:
    """Show the actor's followers by server, pending deliveries and dead hosts."""
    from datetime import UTC, datetime

    from newsbot.activitypub.deliveries import DeliveryStore
    from newsbot.activitypub.documents import webfinger_host
    from newsbot.activitypub.followers import Followers

    settings = obj.settings
    with _app(settings) as app:
        store = DeliveryStore(app.engine)
        by_host = Followers(app.engine).by_host()
        counts = store.counts()
        pending = store.pending_by_host()
        by_server = dict(sorted(by_host.items(), key=lambda item: -item[1])[:limit])
        pending_by_server = dict(sorted(pending.items(), key=lambda item: -item[1])[:limit])
        paused, dead = store.paused_hosts(datetime.now(UTC)), store.dead_hosts()
        actor = f"@{settings.activitypub.username}@{webfinger_host(str(settings.site.base_url))}"
        report = {
            "enabled": settings.activitypub.enabled,
            "actor": actor,
            "followers": sum(by_host.values()),
            "servers": len(by_host),
            "by_server": by_server,
            "deliveries": counts,
            "pending_by_server": pending_by_server,
            "paused_hosts": paused,
            "dead_hosts": dead,
        }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{actor}: {sum(by_host.values())} followers on {len(by_host)} servers")
    for host, count in by_server.items():
        click.echo(f"  {count:6}  {host}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"
    click.echo(f"deliveries: {summary}")
    for host, count in pending_by_server.items():
        click.echo(f"  pending {count:6}  {host}")
    for host in paused:
        click.echo(f"  paused  {host}")
    for host in dead:
        click.echo(f"  dead    {host}")


_NO_TARGET = (
    "no target configured: add a [targets.NAME] table with server and token to the "
    "config file, or set NEWSBOT_TARGETS__NAME__SERVER and NEWSBOT_TARGETS__NAME__TOKEN"
)


@main.command()
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to start on what is only a warning otherwise (a loopback site.base_url).",
)
@click.pass_obj
def run(obj: Context, strict: bool) -> None:
    """Run the service: build on change and on schedule, serve, publish.

    Stops cleanly on SIGTERM or SIGINT (exit 0); a restart continues where it
    stopped. Without a target it logs exactly what it would post.
    """
    from newsbot import logs
    from newsbot.service.runner import Service
    from newsbot.settings_report import base_url_problem

    stopping = _stop_on_signals()  # a stop asked for while starting up is a clean stop too
    settings = obj.settings
    secrets = [
        token.get_secret_value()
        for target in settings.targets.values()
        if (token := _quiet_token(target)) is not None
    ]
    for secret in (settings.state.database_url, settings.state.database_password):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    logs.configure(settings.log, secrets)
    if (problem := base_url_problem(settings)) is not None:
        if strict:
            _fail(problem, EXIT_SETTINGS)
        log.warning(problem)
    with _app(settings) as app:
        app.check_startup()
        service = Service(app, stopping=stopping)
        code = service.run()
    if service.abandoned:
        # A job still waits on a server past the shutdown time; the interpreter would
        # wait for its thread at exit. Its request is recorded, as after a crash.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (the service installs its own handlers later)."""
    stopping = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stopping


@main.command()
@click.option("--timeout", default=4.0, show_default=True, help="Seconds to wait for an answer.")
@click.pass_obj
def healthcheck(obj: Context, timeout: float) -> None:
    """Exit 0 if the running service answers /healthz (for container HEALTHCHECK)."""
    from newsbot.probe import check, healthz_url

    service = obj.settings.service
    problem = check(healthz_url(service.host, service.port), timeout)
    if problem is not None:
        _fail(problem, EXIT_PROBLEMS)


def _quiet_token(target: TargetSettings) -> SecretStr | None:
    try:
        return target.access_token()
    except OSError:
        return None


@main.group()
def config() -> None:
    """Inspect the settings."""


@config.command("show")
@click.option(
    "--sources",
    is_flag=True,
    help="One line per value: where it came from (default, file, environment, secret file).",
)
@click.pass_obj
def config_show(obj: Context, sources: bool) -> None:
    """Print the effective settings (secrets masked) as JSON, or each with its source."""
    if not sources:
        click.echo(json.dumps(obj.settings.masked(), indent=2, ensure_ascii=False))
        return
    from newsbot.settings import DEFAULT_SECRETS_DIR
    from newsbot.settings_report import sources as origins

    config_file = obj.config
    if config_file is None and os.environ.get("NEWSBOT_CONFIG"):
        config_file = Path(os.environ["NEWSBOT_CONFIG"])
    for found in origins(obj.settings, config=config_file, secrets_dir=DEFAULT_SECRETS_DIR):
        value = json.dumps(found.value, ensure_ascii=False)
        click.echo(f"{found.key} = {value}  # {found.origin}")


def _configure_logging(settings: Settings) -> None:
    """Log lines on stderr, with every secret of the settings masked should one slip in."""
    from newsbot.logs import configure

    secrets = []
    for target in settings.targets.values():
        try:
            token = target.access_token()
        except OSError:
            continue
        if token is not None:
            secrets.append(token.get_secret_value())
    for secret in (settings.state.database_url, settings.state.database_password):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    configure(settings.log, secrets)


def _problem_dict(problem: Problem) -> dict[str, object]:
    return {
        "path": problem.path,
        "line": problem.line,
        "field": problem.field,
        "message": problem.message,
        "severity": "warning" if problem.warning else "error",
    }


@contextmanager
def _app(settings: Settings) -> Iterator[App]:
    from newsbot.app import create_app  # imported late: `config show` needs none of it

    try:
        app = create_app(settings)
    except NewsbotError as exc:
        _fail(_one_line(str(exc)), EXIT_UNUSABLE)
    except OSError as exc:  # the state folder cannot be made (under a file, no permission)
        _fail(f"cannot use {exc.filename or 'the state folder'}: {exc.strerror}", EXIT_UNUSABLE)
    try:
        yield app
    except SettingsError as exc:
        _fail(str(exc), EXIT_SETTINGS)
    except NewsbotError as exc:
        _fail(_one_line(str(exc)), EXIT_UNUSABLE)
    finally:
        app.close()


def _one_line(message: str) -> str:
    """A driver's multi-line message (psycopg's hints) as one line of the log."""
    return " ".join(message.split())


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Progress | None]:
    """A progress bar on a terminal; nothing when quiet or when output is not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress as Bar

    with Bar(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"newsbot: {message}", err=True)
    sys.exit(code)
