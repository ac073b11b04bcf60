"""The composition root: the long-lived parts, built once from the settings.

Only what every command needs lives here; the service adds the web server,
health and metrics itself, so that one-shot commands never import them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from newsbot.build.builder import Builder
from newsbot.build.output import Output
from newsbot.errors import StoreError
from newsbot.settings import Settings
from newsbot.state.database import database_url, open_database
from newsbot.state.index import StoreIndex
from newsbot.store.scan import walk


@dataclass
class App:
    """Everything a command needs, wired together; close it when done."""

    settings: Settings
    engine: Engine
    index: StoreIndex
    output: Output
    builder: Builder

    def check_startup(self) -> None:
        """Fail at once, with one clear error, on what would make every later job fail.

        A store that went missing after articles were published is no reason not
        to start: the last good output is served, and the builds say the store is
        suspect until it is back.
        """
        try:
            walk(self.settings.store.content_dir)
        except StoreError:
            if not self.index.live_count():
                raise
        self.output.check_writable()

    def close(self) -> None:
        self.engine.dispose()


def create_app(settings: Settings) -> App:
    """Open the state database and wire the builder; raises clear `NewsbotError`s."""
    engine = open_database(database_url(settings.state))
    index = StoreIndex(engine)
    output = Output(settings.feeds.output_dir)
    return App(settings, engine, index, output, Builder(settings, index, output))
