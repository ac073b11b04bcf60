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

- its key (`key`): a digest of everything the settings can come from (the arguments, the
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
- every path the settings check, resolved again to the same place; the token files
  and the system's time zone files read again to the same bytes; the places where
  the site's time zone may be found holding a file or not, as before.

Anything else (no ticket, a damaged one, one not owned by this user or readable by
others, any other argument, PostgreSQL, a change to any input) takes the full
command, which then leaves a fresh ticket if its answer qualifies. Tickets live in
the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``, ``newsbot/quiet``),
named by the key: a key is known before the settings are, and the state folder is
not. A ticket holds no secret: digests, paths, times and report lines only.

Everything here is on the path of a command that should cost little more than the
interpreter's start (~10 ms of CPU): so no pathlib, dataclasses or typing at run time
(together ~15 ms), only ``os``, ``hashlib`` and ``json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, TextIO

SECRETS_DIR = "/run/secrets"
"""Where the settings read container secrets from (one file per value)."""
CONFIG_VARIABLE = "NEWSBOT_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""
PACKAGE = os.path.dirname(os.path.abspath(__file__))
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


def code_digest(root: str | os.PathLike[str]) -> str:
    """Digest of the package's files under ``root`` (code and templates, no byte-code).

    About 160 files, read in ~5 ms. An upgrade changes it, whatever its version number.
    Files go in the order of their paths' parts (``a/x`` before ``a-b/x``).
    """
    top = os.fspath(root)
    found = []
    for folder, folders, files in os.walk(top):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found.append(os.path.relpath(path, top).split(os.sep))
    digest = hashlib.sha256()
    for parts in sorted(found):
        digest.update(f"{'/'.join(parts)}\0".encode())
        with open(os.path.join(top, *parts), "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
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


def _file_part(digest: Any, path: str) -> None:
    """Add ``path``'s bytes to ``digest``, or why it has none (missing, unreadable)."""
    try:
        with open(path, "rb") as handle:
            digest.update(b"file\0" + hashlib.sha256(handle.read()).digest())
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
        "cwd": os.getcwd(),
        "user": [os.getuid(), os.getgid(), sorted(os.getgroups())],
        "python": [sys.executable, sys.version, list(sys.path)],
    }
    digest.update(json.dumps(facts, sort_keys=True).encode())
    for entry in sys.path:  # a library installed, upgraded or removed changes its folder
        try:
            info = os.stat(entry or ".")
        except OSError:
            digest.update(b"no path\0")
            continue
        digest.update(f"{info.st_dev} {info.st_ino} {info.st_mtime_ns}\0".encode())
    digest.update(code_digest(PACKAGE).encode())
    for name in _config_files(argv, environ):
        digest.update(f"config\0{name}\0".encode())
        _file_part(digest, name)
    if os.path.isdir(SECRETS_DIR):
        for folder, folders, files in os.walk(SECRETS_DIR):
            folders.sort()
            for name in sorted([*folders, *files]):
                path = os.path.join(folder, name)
                info = os.stat(path)
                owner = f"{info.st_mode} {info.st_uid} {info.st_gid}"
                digest.update(f"secret\0{path}\0{owner}\0".encode())
                if stat.S_ISREG(info.st_mode):
                    _file_part(digest, path)
    return digest.hexdigest()


def ticket_folder(environ: Mapping[str, str]) -> str | None:
    """Where tickets live: the user's cache folder (None without a home to find it in)."""
    cache = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        home = environ.get("HOME", "")
        if not os.path.isabs(home):
            return None
        cache = os.path.join(home, ".cache")
    return os.path.join(cache, "newsbot", "quiet")


class Watched:
    """What the answer was read from besides the key's inputs, as the settings name it."""

    __slots__ = ("contents", "database", "files", "paths")

    def __init__(
        self,
        database: str,
        paths: Sequence[str] = (),
        contents: Sequence[str] = (),
        files: Sequence[str] = (),
    ) -> None:
        self.database = database
        """The SQLite file."""
        self.paths = list(paths)
        """Every path whose resolved place the settings check (output, store and state
        folders, token and key files)."""
        self.contents = list(contents)
        """Files whose bytes count: token files (whether a target can post), the system's
        time zone files (whether a crontab setting is valid)."""
        self.files = list(files)
        """Files whose existence counts: the actor's key file, where the site's time zone
        may be found."""

    def dump(self) -> dict[str, Any]:
        return {"database": self.database, "paths": self.paths, "contents": self.contents,
                "files": self.files}  # fmt: skip

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Watched:
        """From `dump`; raises TypeError or KeyError on anything else."""
        names = ("database", "paths", "contents", "files")
        database, paths, contents, files = (data[name] for name in names)
        if not all(isinstance(n, str) for n in (database, *paths, *contents, *files)):
            raise TypeError("names are text")
        return cls(database, paths, contents, files)

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.database))


def _identity(path: str, times: bool = True) -> list[int] | None:
    """What any write to the file at ``path``, or a change of its owner or mode, changes;
    None when there is none. Without ``times``, its owner and mode alone.

    Not the change time: SQLite, run as root, gives the ``-wal`` file its database's
    owner each time it opens it, a change of nothing that moves the change time.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if not times:
        return [info.st_mode, info.st_uid, info.st_gid]
    return [
        info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns,
        info.st_mode, info.st_uid, info.st_gid,
    ]  # fmt: skip


def snapshot(watched: Watched, key: str) -> dict[str, Any]:
    """The state of what ``watched`` names, as plain data (lists, as JSON reads them back).

    The bytes of the files in ``contents`` (tokens) count through a digest salted with
    ``key``: never the bytes themselves. Raises OSError when something cannot be looked at.
    """
    contents = hashlib.sha256(key.encode())
    for name in watched.contents:
        contents.update(f"{name}\0".encode())
        _file_part(contents, name)
    return {
        "places": {name: os.path.realpath(name) for name in watched.paths},
        "contents": contents.hexdigest(),
        "files": {name: os.path.isfile(name) for name in watched.files},
        "database": _identity(watched.database),
        "wal": _identity(watched.database + "-wal"),
        "shm": _identity(watched.database + "-shm", times=False),
        "folder": _identity(watched.folder, times=False),
    }


def _usable(watched: Watched) -> bool:
    """Whether SQLite could open the database for writing, as the full command does."""
    if not os.access(watched.folder, os.W_OK | os.X_OK):
        return False
    return all(
        os.access(name, os.R_OK | os.W_OK)
        for name in (watched.database, watched.database + "-wal", watched.database + "-shm")
        if os.path.exists(name)
    )


def _own(info: os.stat_result) -> bool:
    """Made by this user, and not writable (nor, for a file, readable) by anyone else."""
    private = 0o077 if stat.S_ISREG(info.st_mode) else 0o022
    return info.st_uid == os.getuid() and not info.st_mode & private


def recall(argv: Sequence[str], environ: Mapping[str, str], now: float) -> list[str] | None:
    """The lines the full command would print, when a ticket proves it; else None.

    A ticket is a JSON object: ``form``, ``key``, ``since`` (when the command that
    left it read its state: a clock set back before it takes the full command),
    ``until`` (epoch seconds from which the answer may no longer hold), ``lines``,
    ``watched`` (`Watched.dump`) and ``snapshot`` (`snapshot` once it was read).
    """
    folder = ticket_folder(environ)
    if folder is None:
        return None
    try:
        digest = key(argv, environ)
        if not _own(os.lstat(folder)):
            return None
        fd = os.open(os.path.join(folder, f"{digest}.json"), os.O_RDONLY | os.O_NOFOLLOW)
        with open(fd, encoding="utf-8") as handle:
            if not _own(os.fstat(handle.fileno())):
                return None
            ticket = json.loads(handle.read())
        if ticket["form"] != FORM or ticket["key"] != digest:
            return None
        if not ticket["since"] <= now < ticket["until"]:
            return None
        watched = Watched.load(ticket["watched"])
        if snapshot(watched, digest) != ticket["snapshot"] or not _usable(watched):
            return None
        lines = ticket["lines"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        return None
    return lines


class _Tee:
    """A text stream that keeps what is written to it as well as writing it on."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written: list[str] = []

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click asks whether a stream takes bytes this way
            raise TypeError("a text stream")
        self.written.append(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _key_or_none(argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """`key`, or None without a working folder (the command says what is wrong)."""
    try:
        return key(argv, environ)
    except OSError:
        return None


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
        self.key = _key_or_none(argv, environ)
        self.stdout = _Tee(sys.stdout)
        self.stderr = _Tee(sys.stderr)
        sys.stdout = self.stdout
        sys.stderr = self.stderr
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
            fd, probe = tempfile.mkstemp(dir=watched.folder, prefix=".newsbot-probe-")
            try:
                self.probe = os.fstat(fd).st_mtime_ns
            finally:
                os.close(fd)
                os.unlink(probe)
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

    def _ticket(self, code: object) -> dict[str, Any] | None:
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
        if after != self.before or key(self.argv, self.environ) != self.key:
            return None
        for name in ("database", "wal"):
            found = after[name]
            if found is not None and found[3] >= self.probe:
                return None  # written in the probe's tick: a later write could look the same
        if after["database"] is None or not _usable(self.watched):
            return None
        return {
            "form": FORM, "key": self.key, "since": self.since, "until": self.until,
            "lines": self.lines, "watched": self.watched.dump(), "snapshot": after,
        }  # fmt: skip


def _write(folder: str, ticket: dict[str, Any]) -> None:
    """Store ``ticket`` atomically, readable by this user only; remove old ones."""
    import tempfile

    os.makedirs(folder, mode=0o700, exist_ok=True)
    if not _own(os.lstat(folder)):
        return
    now = time.time()
    for name in os.listdir(folder):
        old = os.path.join(folder, name)
        try:
            if name.endswith(".json") and os.lstat(old).st_mtime < now - KEEP_SECONDS:
                os.unlink(old)
        except OSError:
            pass
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".ticket-")
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(json.dumps(ticket, sort_keys=True))
        os.replace(temp, os.path.join(folder, f"{ticket['key']}.json"))
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
