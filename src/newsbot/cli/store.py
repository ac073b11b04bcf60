"""Commands on the store and the output folder: ``build``, ``check``, ``new``, ``import``."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsbot.cli.common import (
    EXIT_PROBLEMS,
    EXIT_SETTINGS,
    EXIT_UNUSABLE,
    NO_TARGET,
    Context,
    fail,
    open_app,
    progress_bar,
)
from newsbot.errors import NewsbotError
from newsbot.settings import Settings
from newsbot.times import utc_now

if TYPE_CHECKING:
    from newsbot.store.scan import Scanned


@click.command()
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
    scanned: Scanned | None = None
    if not confirm_removals:
        done, scanned = _unchanged(obj.settings, quiet)
        if done:
            return
    with open_app(obj.settings) as app:
        app.output.check_writable()
        with progress_bar("Reading articles", quiet) as progress:
            report = app.builder.build(
                utc_now(), progress, confirm_removals=confirm_removals, scanned=scanned
            )
    if report.suspect is not None:
        fail(f"error: {report.suspect.message()}", EXIT_UNUSABLE)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not quiet:
        click.echo(
            f"{report.files} articles in the store, {report.read} read, "
            f"{report.removed} gone from it; "
            f"{report.feeds_written} feed files and {report.pages_written} pages written, "
            f"{report.pages_removed} pages of removed or withdrawn articles and "
            f"{report.stale_removed} stale files removed "
            f"in {report.seconds:.2f} s -> {app.settings.feeds.output_dir}/"
        )
    if report.unwritten:
        fail(
            f"{report.unwritten} output file(s) could not be written or removed (each is "
            "logged above); the next build tries them again",
            EXIT_UNUSABLE,
        )
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


def _unchanged(settings: Settings, quiet: bool) -> tuple[bool, Scanned | None]:
    """Whether the last build's stamp shows nothing to do (`newsbot.build.stamp`), said
    unless quiet; and the scan of the store it made, for the build to take.

    Checked before the app is made: that costs more than the check.
    """
    from newsbot.build.stamp import compare

    started = time.perf_counter()
    files, scanned = compare(settings, utc_now())
    if files is None:
        return False, scanned
    if not quiet:
        click.echo(
            f"{files} articles in the store, nothing changed since the last build "
            f"(checked in {time.perf_counter() - started:.2f} s) -> {settings.feeds.output_dir}/"
        )
    return True, scanned


@click.command()
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
    left out, never guessed), ``updated`` dates still to come (shown once they
    pass); --strict makes them fail too. With --targets:
    whether each target's server answers, what it runs, whether the token is
    accepted and has the scopes newsbot needs, asked with GET requests only.
    """
    if check_targets:
        _check_targets(obj.settings, as_json)
        return
    from newsbot.build.check import check_store

    with open_app(obj.settings) as app:
        problems = check_store(app.settings, app.index)
    for problem in problems:
        click.echo(json.dumps(problem.to_json()) if as_json else str(problem))
    warnings = sum(1 for p in problems if p.warning)
    if not as_json:
        click.echo(f"{len(problems) - warnings} error(s), {warnings} warning(s)", err=True)
    if any(not p.warning for p in problems) or (strict and problems):
        sys.exit(EXIT_PROBLEMS)


def _check_targets(settings: Settings, as_json: bool) -> None:
    from newsbot.mastodon.client import make_http_client
    from newsbot.publish.target_check import check_target

    if not settings.targets:
        fail(NO_TARGET, EXIT_SETTINGS)
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


@click.command()
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
        fail(str(exc), EXIT_SETTINGS)
    except OSError as exc:
        fail(f"cannot write into {settings.store.content_dir}: {exc.strerror}", EXIT_UNUSABLE)
    click.echo(path)
    click.echo(
        f"id {article_id}" + ("" if publish else "; a draft until `draft: true` goes"), err=True
    )


@click.command(name="import")
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
