"""The error tree of newsbot.

Errors carry the context needed to fix the cause: the file, line and field of
bad input, the key of a bad setting. They become exit codes or HTTP statuses
only at the edges (``cli``, ``web``).

    NewsbotError
    ├── SettingsError          a setting has a bad value (exit code 2)
    ├── ArticleError           one article file cannot be read (path, line, field)
    ├── StoreError             the store as a whole is unusable (missing folder)
    └── OutputError            the output folder cannot be written
"""

from __future__ import annotations

from dataclasses import dataclass


class NewsbotError(Exception):
    """Base of every error newsbot raises on purpose."""


class SettingsError(NewsbotError):
    """One or more settings are invalid; the message names each key."""


class StoreError(NewsbotError):
    """The article store cannot be used at all (not a single article)."""


class OutputError(NewsbotError):
    """The output folder cannot be written."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one file of the store, located as precisely as it can be."""

    path: str
    message: str
    line: int | None = None
    field: str | None = None
    warning: bool = False
    """Worth fixing, but nothing is wrong with what is published (an editors' related
    headline that matches no article yet: it is left out, never guessed)."""

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = self.message if self.field is None else f"{self.field}: {self.message}"
        return f"{where}: {'warning: ' if self.warning else ''}{what}"


class ArticleError(NewsbotError):
    """An article file is broken; the rest of the store is unaffected."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def at(self, path: str) -> Problem:
        """This error as a problem of the file at ``path``."""
        return Problem(path=path, message=self.message, line=self.line, field=self.field)
