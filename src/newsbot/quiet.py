"""A ``publish --no-build`` command's answer when nothing is due, given again without loading
anything while nothing it was made from has changed.

A cron job runs ``newsbot publish --no-build`` every few minutes, and most runs find
nothing to do: the state database's pass mark (`newsbot.state.pass_marks`) says so
without the posting code or the server. What such a run still paid was the
interpreter and the libraries every command loads to read its settings and its state
(click, pydantic-settings, SQLAlchemy: ~0.4 s of CPU, against ~15 ms for the
interpreter alone). This module, which imports only the standard library, lets the
command skip them when it can prove that the full command would print the same lines
and exit 0.

A command whose every target was found with nothing due, that printed nothing else
and exited 0, leaves a `Ticket` holding what it printed, the moment until which that
answer holds (`newsbot.state.pass_marks.quiet_until`: the first retry, reply,
scheduled article or hourly server check to come), and a `Snapshot` of what the
answer was read from. A later command gives the same answer only when all of these
match:

- its `Key`: a digest of everything the settings can come from (the arguments, the
  whole environment, the working folder, the config file's bytes, the secrets
  folder's files), of the code (the package's files, by content, as the build stamp
  counts them; the interpreter; the library folders on ``sys.path``) and of the user;
- the clock: not before the moment the first command read its state, before the
  ticket's end;
- the state database (SQLite only): its file and its ``-wal`` file have the same
  identity (device, inode, size, modification time, mode, owner), and
  can still be read and written, as can their folder. Every committed write changes
  the size or the times of one of them (a checkpoint writes the main file, a commit
  the WAL), provided the write came in a later tick of the file system's clock than
  the ticket's recorded times: so a ticket is only left when both files were last
  written before a probe file made in their folder before the command read anything;
- every path the settings check, resolved again to the same place, and the token
  files read again to the same bytes.

Anything else (no ticket, a damaged one, one not owned by this user or readable by
others, any other argument, PostgreSQL, a change to any input) takes the full
command, which then leaves a fresh ticket if its answer qualifies. Tickets live in
the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, ``newsbot/quiet``),
named by the key: a key is known before the settings are, and the state folder is
not. A ticket holds no secret: digests, paths, times and report lines only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast

SECRETS_DIR = Path("/run/secrets")
"""Where the settings read container secrets from (one file per value)."""
CONFIG_VARIABLE = "NEWSBOT_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""
PACKAGE = Path(__file__).parent
"""The installed code, which shapes every answer as much as the settings do."""
FORM = 1
"""Of the ticket; a ticket of another form is not read."""
KEEP_SECONDS = 24 * 3600
"""Tickets older than this are removed when a new one is written (one per set of inputs)."""

_GROUP_VALUED = ("--config", "-c")
_PUBLISH_VALUED = ("--target", "-t")
_PUBLISH_FLAGS = ("--no-build", "--no-pacing")


def answers(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (without the program) is a command this module may answer:
    ``[--config FILE] publish --no-build [--no-pacing] [--target NAME]...``."""
    rest = list(argv)
    while rest and rest[0] != "publish":
        option = rest.pop(0)
        if option in _GROUP_VALUED and rest:
            rest.pop(0)
        elif not option.startswith(("--config=", "-c")) or option in _GROUP_VALUED:
            return False
    if not rest:
        return False
    rest.pop(0)
    flags = set()
    while rest:
        option = rest.pop(0)
        if option in _PUBLISH_VALUED and rest:
            rest.pop(0)
        elif option in _PUBLISH_FLAGS:
            flags.add(option)
        elif not option.startswith(("--target=", "-t")) or option in _PUBLISH_VALUED:
            return False
    return "--no-build" in flags


def code_digest(root: Path) -> str:
    """Digest of the package's files under ``root`` (code and templates, no byte-code).

    About 160 files, read in ~10 ms. An upgrade changes it, whatever its version number.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _config_files(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Every config file the command may read: each ``--config`` given, and the variable's."""
    found = [environ.get(CONFIG_VARIABLE, "")]
    for at, option in enumerate(argv):
        if option == "publish":
            break
        if option in _GROUP_VALUED and at + 1 < len(argv):
            found.append(argv[at + 1])
        elif option.startswith("--config="):
            found.append(option.removeprefix("--config="))
        elif option.startswith("-c") and option != "-c":
            found.append(option.removeprefix("-c"))
    return [name for name in found if name]


def _file_part(digest: Any, path: Path) -> None:
    """Add ``path``'s bytes to ``digest``, or why it has none (missing, unreadable)."""
    try:
        digest.update(b"file\0" + hashlib.sha256(path.read_bytes()).digest())
    except OSError as exc:
        digest.update(f"unreadable\0{type(exc).__name__}\0{exc.errno}".encode())


def key(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The digest of everything the command's settings and code come from (see the module).

    Raises OSError when the working folder is gone: the full command says what is wrong.
    """
    digest = hashlib.sha256(f"newsbot-quiet {FORM}\0".encode())
    facts = {
        "argv": list(argv),
        "environ": sorted(environ.items()),
        "cwd": str(Path.cwd()),
        "user": [os.getuid(), os.getgid(), sorted(os.getgroups())],
        "python": [sys.executable, sys.version, list(sys.path)],
    }
    digest.update(json.dumps(facts, sort_keys=True).encode())
    for entry in sys.path:  # a library installed, upgraded or removed changes its folder
        try:
            info = Path(entry or ".").stat()
        except OSError:
            digest.update(b"no path\0")
            continue
        digest.update(f"{info.st_dev} {info.st_ino} {info.st_mtime_ns}\0".encode())
    digest.update(code_digest(PACKAGE).encode())
    for name in _config_files(argv, environ):
        digest.update(f"config\0{name}\0".encode())
        _file_part(digest, Path(name))
    if SECRETS_DIR.is_dir():
        for path in sorted(SECRETS_DIR.rglob("*")):
            info = path.stat()
            digest.update(f"secret\0{path}\0{info.st_mode} {info.st_uid} {info.st_gid}\0".encode())
            if path.is_file():
                _file_part(digest, path)
    return digest.hexdigest()


def ticket_folder(environ: Mapping[str, str]) -> Path | None:
    """Where tickets live: the user's cache folder (None without a home to find it in)."""
    cache = Path(environ.get("XDG_CACHE_HOME", ""))
    if not cache.is_absolute():
        home = Path(environ.get("HOME", ""))
        if not home.is_absolute():
            return None
        cache = home / ".cache"
    return cache / "newsbot" / "quiet"


@dataclass(frozen=True, slots=True)
class Watched:
    """What the answer was read from besides the key's inputs, as the settings name it."""

    database: str
    """The SQLite file."""
    paths: tuple[str, ...]
    """Every path whose resolved place the settings check (output, store and state
    folders, token and key files)."""
    tokens: tuple[str, ...]
    """Token files: their bytes decide whether a target can post."""
    files: tuple[str, ...]
    """Files the settings require to exist (the actor's key file)."""

    def dump(self) -> dict[str, Any]:
        return {"database": self.database, "paths": list(self.paths),
                "tokens": list(self.tokens), "files": list(self.files)}  # fmt: skip

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Watched:
        """From `dump`; raises TypeError or KeyError on anything else."""
        database, paths, tokens, files = (data[k] for k in ("database", "paths", "tokens", "files"))
        if not all(isinstance(n, str) for n in (database, *paths, *tokens, *files)):
            raise TypeError("names are text")
        return cls(database, tuple(paths), tuple(tokens), tuple(files))


def _identity(path: str, times: bool = True) -> list[int] | None:
    """What any write to the file at ``path``, or a change of its owner or mode, changes;
    None when there is none. Without ``times``, its owner and mode alone.

    Not the change time: SQLite, run as root, gives the ``-wal`` file its database's
    owner each time it opens it, a change of nothing that moves the change time.
    """
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return None
    if not times:
        return [info.st_mode, info.st_uid, info.st_gid]
    return [
        info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns,
        info.st_mode, info.st_uid, info.st_gid,
    ]  # fmt: skip


def snapshot(watched: Watched, key: str) -> dict[str, Any]:
    """The state of what ``watched`` names, as plain data (compared as JSON).

    The token files' bytes count through a digest salted with ``key``: never the
    bytes themselves. Raises OSError when something cannot be looked at.
    """
    tokens = hashlib.sha256(key.encode())
    for name in watched.tokens:
        tokens.update(f"{name}\0".encode())
        _file_part(tokens, Path(name))
    folder = str(Path(watched.database).parent)
    return {
        "places": {name: str(Path(name).resolve()) for name in watched.paths},
        "tokens": tokens.hexdigest(),
        "files": {name: Path(name).is_file() for name in watched.files},
        "database": _identity(watched.database),
        "wal": _identity(watched.database + "-wal"),
        "shm": _identity(watched.database + "-shm", times=False),
        "folder": _identity(folder, times=False),
    }


def _usable(watched: Watched) -> bool:
    """Whether SQLite could open the database for writing, as the full command does."""
    if not os.access(Path(watched.database).parent, os.W_OK | os.X_OK):
        return False
    return all(
        os.access(name, os.R_OK | os.W_OK)
        for name in (watched.database, watched.database + "-wal", watched.database + "-shm")
        if Path(name).exists()
    )


@dataclass(frozen=True, slots=True)
class Ticket:
    """A command's answer and what it holds for (see the module)."""

    form: int
    key: str
    since: float
    """The moment the command that left it read its state (epoch seconds): a clock set
    back before it takes the full command (a pass mark newer than the clock is no mark)."""
    until: int
    """Epoch seconds from which the answer may no longer hold."""
    lines: list[str]
    watched: dict[str, Any]
    snapshot: dict[str, Any]

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _own(info: os.stat_result) -> bool:
    """Made by this user, and not writable (nor, for a file, readable) by anyone else."""
    private = 0o077 if stat.S_ISREG(info.st_mode) else 0o022
    return info.st_uid == os.getuid() and not info.st_mode & private


def recall(argv: Sequence[str], environ: Mapping[str, str], now: float) -> list[str] | None:
    """The lines the full command would print, when a ticket proves it; else None."""
    folder = ticket_folder(environ)
    if folder is None:
        return None
    try:
        digest = key(argv, environ)
        if not _own(os.lstat(folder)):
            return None
        fd = os.open(folder / f"{digest}.json", os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as handle:
            if not _own(os.fstat(handle.fileno())):
                return None
            ticket = Ticket(**json.loads(handle.read()))
        if ticket.form != FORM or ticket.key != digest:
            return None
        if not ticket.since <= now < ticket.until:
            return None
        watched = Watched.load(ticket.watched)
        if not _same(snapshot(watched, digest), ticket.snapshot) or not _usable(watched):
            return None
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not all(isinstance(line, str) for line in ticket.lines):
        return None
    return ticket.lines


def _same(left: Mapping[str, Any], right: Mapping[str, Any]) -> bool:
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


class _Tee:
    """A text stream that keeps what is written to it as well as writing it on."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.written: list[str] = []

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click asks whether a stream takes bytes this way
            raise TypeError("a text stream")
        self.written.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Recorder:
    """The full command's side: what it printed and read, and the ticket it may leave.

    Made before the command line is loaded, for a command `answers` covers; the
    ``publish`` command tells it what it reads (`watch`) and, when every target had
    nothing due, what it answered (`answer`); `finish` then leaves the ticket if
    the command printed exactly those lines, nothing on stderr, exited 0, and nothing
    it read changed meanwhile.
    """

    def __init__(self, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        self.argv = list(argv)
        self.environ = dict(environ)
        self.key: str | None = None
        with contextlib.suppress(OSError):  # no working folder: the command says what is wrong
            self.key = key(argv, environ)
        self.stdout = _Tee(sys.stdout)
        self.stderr = _Tee(sys.stderr)
        sys.stdout = cast(IO[str], self.stdout)
        sys.stderr = cast(IO[str], self.stderr)
        self.watched: Watched | None = None
        self.before: dict[str, Any] | None = None
        self.probe: int | None = None
        self.lines: list[str] | None = None
        self.since: float | None = None
        self.until: int | None = None

    def watch(self, watched: Watched) -> None:
        """Before the command reads its state: note the clock of the database's file
        system (a probe file made and removed in its folder) and what ``watched`` is."""
        if self.key is None:
            return
        import tempfile  # only a command that records pays for it

        try:
            folder = Path(watched.database).parent
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".newsbot-probe-")
            try:
                self.probe = os.fstat(fd).st_mtime_ns
            finally:
                os.close(fd)
                Path(probe).unlink()
            self.before = snapshot(watched, self.key)
        except OSError:
            return
        self.watched = watched

    def answer(self, lines: Sequence[str], since: float, until: int) -> None:
        """Every target had nothing due at ``since``: these lines are the answer from then
        until ``until`` (epoch seconds)."""
        self.lines, self.since, self.until = list(lines), since, until

    def finish(self, code: object) -> None:
        """After the command: leave the ticket if everything above holds (never raises)."""
        try:
            ticket = self._ticket(code)
            folder = ticket_folder(self.environ)
            if ticket is not None and folder is not None:
                _write(folder, ticket)
        except (OSError, ValueError):
            return

    def _ticket(self, code: object) -> Ticket | None:
        if code not in (0, None) or self.lines is None:
            return None
        if self.since is None or self.until is None or self.since >= self.until:
            return None
        if self.key is None or self.watched is None or self.before is None or self.probe is None:
            return None
        if self.stderr.written or "".join(self.stdout.written) != "".join(
            f"{line}\n" for line in self.lines
        ):
            return None
        after = snapshot(self.watched, self.key)
        if not _same(after, self.before) or key(self.argv, self.environ) != self.key:
            return None
        for name in ("database", "wal"):
            found = after[name]
            if found is not None and found[3] >= self.probe:
                return None  # written in the probe's tick: a later write could look the same
        if after["database"] is None or not _usable(self.watched):
            return None
        return Ticket(
            FORM, self.key, self.since, self.until, self.lines, self.watched.dump(), after
        )


def _write(folder: Path, ticket: Ticket) -> None:
    """Store ``ticket`` atomically, readable by this user only; remove old ones."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not _own(os.lstat(folder)):
        return
    now = time.time()
    for old in folder.glob("*.json"):
        try:
            if old.lstat().st_mtime < now - KEEP_SECONDS:
                old.unlink()
        except OSError:
            pass
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".ticket-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(ticket.dumps())
        Path(temp).replace(folder / f"{ticket.key}.json")
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
