"""The composition root: the long-lived parts, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from newsbot.build import Builder
from newsbot.output import Output
from newsbot.settings import Settings
from newsbot.state.database import open_database
from newsbot.state.index import StoreIndex


@dataclass
class App:
    """Everything a command needs, wired together; close it when done."""

    settings: Settings
    engine: Engine
    index: StoreIndex
    output: Output
    builder: Builder

    def close(self) -> None:
        self.engine.dispose()


def create_app(settings: Settings) -> App:
    """Open the state database and wire the builder; raises clear `NewsbotError`s."""
    engine = open_database(settings.state.url())
    index = StoreIndex(engine)
    output = Output(settings.feeds.output_dir)
    return App(settings, engine, index, output, Builder(settings, index, output))
