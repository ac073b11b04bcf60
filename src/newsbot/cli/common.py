"""What every command shares: the exit codes, the settings, the app, and how to fail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from newsbot.errors import NewsbotError, SettingsError
from newsbot.quiet import Recorder
from newsbot.settings import Settings, load_settings

if TYPE_CHECKING:
    from newsbot.app import App
    from newsbot.build.builder import Progress

EXIT_PROBLEMS = 1
EXIT_SETTINGS = 2
EXIT_UNUSABLE = 3

NO_TARGET = (
    "no target configured: add a [targets.NAME] table with server and token to the "
    "config file, or set NEWSBOT_TARGETS__NAME__SERVER and NEWSBOT_TARGETS__NAME__TOKEN"
)


class Context:
    """What the group hands its commands: the config file given, settings loaded lazily, and
    for a command whose answer may be recalled next time, what records it (`newsbot.quiet`)."""

    def __init__(self, config: Path | None, quiet: Recorder | None = None) -> None:
        self.config = config
        self.quiet = quiet
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except SettingsError as exc:
                fail(str(exc), EXIT_SETTINGS)
        assert self._settings is not None
        return self._settings


def configure_logging(settings: Settings) -> None:
    """Log lines on stderr, with every secret of the settings masked should one slip in."""
    from newsbot.logs import configure, secrets_of

    configure(settings.log, secrets_of(settings))


@contextmanager
def open_app(settings: Settings) -> Iterator[App]:
    """The app for one command; its errors become messages and exit codes 2 or 3."""
    from newsbot.app import create_app  # imported late: `config show` needs none of it

    try:
        app = create_app(settings)
    except NewsbotError as exc:
        fail(one_line(str(exc)), EXIT_UNUSABLE)
    except OSError as exc:  # the state folder cannot be made (under a file, no permission)
        setting = "state.data_dir" if settings.state.database_url is None else "state.database_url"
        fail(
            f"cannot use {exc.filename or 'the state folder'}: {exc.strerror} "
            f"(set {setting} to a folder the service's user can create and write to)",
            EXIT_UNUSABLE,
        )
    try:
        yield app
    except SettingsError as exc:
        fail(str(exc), EXIT_SETTINGS)
    except NewsbotError as exc:
        fail(one_line(str(exc)), EXIT_UNUSABLE)
    except Exception as exc:
        from newsbot.state.database import failure_of

        if (reason := failure_of(exc)) is None:
            raise
        fail(reason, EXIT_UNUSABLE)
    finally:
        app.close()


def one_line(message: str) -> str:
    """A driver's multi-line message (psycopg's hints) as one line of the log."""
    return " ".join(message.split())


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[Progress | None]:
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


def fail(message: str, code: int) -> NoReturn:
    """Say what went wrong on stderr and exit with ``code``."""
    click.echo(f"newsbot: {message}", err=True)
    sys.exit(code)
