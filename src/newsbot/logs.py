"""Logging for operators: readable lines on a terminal, JSON lines for collectors.

Log calls pass context as ``extra`` (``target``, ``article``, ``status_url``...);
both formats show it, so every line about an article names its id and target.
A redacting filter replaces any configured secret that might slip into a
message (a server echoing a token in an error, say) with asterisks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from newsbot.settings import LogSettings, Settings
from newsbot.times import from_epoch

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
MASK = "**********"


_JSON = json.JSONEncoder(ensure_ascii=False, default=str)
"""One encoder for every line (``json.dumps`` with options makes a new one each call)."""


def json_time(created: float) -> str:
    """A line's ``time``: UTC, to the millisecond, with its offset."""
    return from_epoch(created).isoformat(timespec="milliseconds")


def json_line(
    when: str, level: str, logger: str, message: str, extras: dict[str, Any]
) -> dict[str, Any]:
    """The JSON object of one line (without its ``error``), in the order every line has."""
    return {
        "time": when,
        "level": level.lower(),
        "logger": logger,
        "message": message,
        **extras,
    }


def text_line(created: float, level: str, message: str, extras: dict[str, Any]) -> str:
    """One terminal line (without its traceback)."""
    when = datetime.fromtimestamp(created).strftime("%H:%M:%S")
    line = f"{when} {level:<7} {message}"
    if extras:
        line += "  [" + " ".join(f"{key}={value}" for key, value in extras.items()) + "]"
    return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry = json_line(
            json_time(record.created),
            record.levelname,
            record.name,
            record.getMessage(),
            _extras(record),
        )
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _JSON.encode(entry)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO posted [target=main article=2015/calais]``."""

    def format(self, record: logging.LogRecord) -> str:
        line = text_line(record.created, record.levelname, record.getMessage(), _extras(record))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class Redactor(logging.Filter):
    """Replaces secrets in messages and extras; the last line of defence, not the first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]
        self._escaped = [
            e for e in (_JSON.encode(s)[1:-1] for s in self.secrets) if e not in self.secrets
        ]
        """Each secret as JSON writes it, where that differs (quotes, backslashes, controls)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = self._clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, self._clean(value))
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def clean_line(self, line: str) -> str:
        """A whole formatted line with every secret masked, as written or as JSON escapes it."""
        for secret in (*self.secrets, *self._escaped):
            if secret in line:
                line = line.replace(secret, MASK)
        return line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs, which :class:`AccessLines` writes through."""

    def __init__(self, stream: IO[str], use_json: bool, redactor: Redactor) -> None:
        super().__init__(stream)
        self.use_json = use_json
        self.redactor = redactor
        self.setFormatter(JsonFormatter() if use_json else TextFormatter())
        self.addFilter(redactor)


ACCESS_LOGGER = "newsbot.access"


class AccessLines:
    """The access log's own writer: its lines as the handler would write them, in batches.

    A feed answered from memory costs a few microseconds; a log record, its
    filter, its formatter and one write per line cost ten times that
    (``bench/serve.py``: 15,000 304s a second with the access log on, 47,000
    off). So the access lines are formatted here, the same way and with the
    same masking as every other line, and written together (the access log
    calls :meth:`flush` once per turn of the server's loop), under the
    handler's lock so they never interleave with another thread's line.
    """

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self._pending: list[str] = []
        self._second = -1
        self._second_text = ""
        """The ``time`` of a JSON line up to its seconds, made once a second."""

    def add(self, created_ns: int, message: str, extras: dict[str, Any]) -> None:
        """Format one INFO line made at ``created_ns`` (``time.time_ns()``), kept to flush."""
        handler = self._handler
        if handler.use_json:
            when = self._json_time(created_ns)
            line = _JSON.encode(json_line(when, "INFO", ACCESS_LOGGER, message, extras))
        else:
            line = text_line(created_ns / 1e9, "INFO", message, extras)
        if handler.redactor.secrets:
            line = handler.redactor.clean_line(line)
        self._pending.append(line)

    def _json_time(self, created_ns: int) -> str:
        """:func:`json_time` of ``created_ns``, from the text of its second (made once a second)."""
        second, nanoseconds = divmod(created_ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._second_text = json_time(second)[:19]
        return f"{self._second_text}.{nanoseconds // 1_000_000:03d}+00:00"

    def flush(self) -> None:
        """Write the lines kept, in one write."""
        if not self._pending:
            return
        text = "\n".join(self._pending) + "\n"
        self._pending.clear()
        handler = self._handler
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(text)
                handler.stream.flush()
            except (OSError, ValueError):  # a closed or broken log stream: the request was answered
                pass


def access_lines() -> AccessLines | None:
    """The fast writer for the access log, when its lines go only where :func:`configure` sent them.

    None when anything else was done to the logging setup (another handler,
    a filter, the access logger turned down): the access log then goes
    through :mod:`logging` as every other line.
    """
    access = logging.getLogger(ACCESS_LOGGER)
    root = logging.getLogger("newsbot")
    if access.handlers or access.filters or root.filters or not access.propagate:
        return None
    if not access.isEnabledFor(logging.INFO) or len(root.handlers) != 1:
        return None
    handler = root.handlers[0]
    if not isinstance(handler, _Handler) or handler.level > logging.INFO:
        return None
    return AccessLines(handler)


def configure(
    settings: LogSettings, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> None:
    """Send newsbot's logs to ``stream`` (stderr) in the configured format."""
    out = stream or sys.stderr
    use_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level]
    _install(_Handler(out, use_json, Redactor(secrets)), level)


@dataclass(frozen=True)
class LogSetup:
    """What :func:`configure` set up, for a child process to set up the same (`newsbot.forked`).

    A child started afresh inherits the standard error stream but not the
    handler: without this its lines would be neither formatted nor masked.
    """

    level: int
    use_json: bool
    secrets: tuple[str, ...]

    def apply(self) -> None:
        """Log to standard error as the process that made this setup did."""
        _install(_Handler(sys.stderr, self.use_json, Redactor(self.secrets)), self.level)


def current_setup() -> LogSetup | None:
    """This process's setup from :func:`configure`; None when it was not called."""
    root = logging.getLogger("newsbot")
    for handler in root.handlers:
        if isinstance(handler, _Handler):
            return LogSetup(root.level, handler.use_json, tuple(handler.redactor.secrets))
    return None


def _install(handler: _Handler, level: int) -> None:
    root = logging.getLogger("newsbot")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("apscheduler", "uvicorn", "httpx", "httpcore", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
        logging.getLogger(noisy).handlers[:] = [handler]
        logging.getLogger(noisy).propagate = False


def secrets_of(settings: Settings) -> list[str]:
    """Every secret ``settings`` hold: the targets' tokens (those readable) and the database's."""
    secrets = []
    for target in settings.targets.values():
        try:
            token = target.access_token()
        except OSError:  # an unreadable token file: the command that needs it says so
            continue
        if token is not None:
            secrets.append(token.get_secret_value())
    for secret in (settings.state.database_url, settings.state.database_password):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    return secrets


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
