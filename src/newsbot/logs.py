"""Logging for operators: readable lines on a terminal, JSON lines for collectors.

Log calls pass context as ``extra`` (``target``, ``article``, ``status_url``...);
both formats show it, so every line about an article names its id and target.
A redacting filter replaces any configured secret that might slip into a
message (a server echoing a token in an error, say) with asterisks.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any

from newsbot.settings import LogSettings, Settings
from newsbot.times import from_epoch

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
MASK = "**********"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": from_epoch(record.created).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO posted [target=main article=2015/calais]``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        line = f"{when} {record.levelname:<7} {record.getMessage()}"
        if extras:
            line += f"  [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class Redactor(logging.Filter):
    """Replaces secrets in messages and extras; the last line of defence, not the first."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

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


def configure(
    settings: LogSettings, secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> None:
    """Send newsbot's logs to ``stream`` (stderr) in the configured format."""
    out = stream or sys.stderr
    use_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger("newsbot")
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
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
