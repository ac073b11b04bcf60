"""The error tree of newsbot.

Errors carry the context needed to fix the cause: the file, line and field of
bad input, the key of a bad setting, the request and the server's answer. They
become exit codes or HTTP statuses only at the edges (``cli``, ``web``,
``activitypub.routes``). Catch the narrowest class that can be handled; an
edge that reports to a person catches ``NewsbotError`` and prints its message,
which never holds a secret.

Each class lives in this module unless a module is named:

    NewsbotError
    ├── SettingsError        a setting has a bad value (exit code 2)
    ├── ArticleError         one article file cannot be read (path, line, field)
    ├── StoreError           the store as a whole is unusable (missing folder)
    ├── OutputError          the output folder cannot be written
    ├── ChildEnded           forked.py: work in a child process ended without its result
    ├── ShareFailed          build/parallel.py: a build's child process ended without its result
    ├── AssetRefused         store/assets.py: an image reference names no usable file
    ├── PageImportError      store/importer.py: a page cannot be imported
    ├── SkeletonError        store/skeleton.py: a new article cannot be started
    ├── DatabaseError        state/database.py: the state database cannot be opened
    ├── NoToken              publish/targets.py: a target has no access token
    ├── ComposeError         publish/compose.py: one article cannot make a status
    ├── MastodonError        mastodon/errors.py: what was asked, what the server answered
    │   ├── TransientError   may succeed later: retry with the same Idempotency-Key
    │   │   ├── RateLimited      429: wait until ``retry_at``
    │   │   └── MediaNotReady    the server is still processing the media
    │   ├── AuthError        401/403: the token is refused; stop this target
    │   └── PermanentError   4xx: the same request cannot succeed
    │       ├── TooLong          over the server's length limit: recompose shorter
    │       ├── Gone             404/410 on an edit or delete
    │       └── MediaFailed      the media file was refused
    ├── SignatureRejected    activitypub/signatures.py: a bad HTTP signature (401)
    ├── FetchFailed          activitypub/remote.py: a remote document cannot be fetched
    ├── BlockedAddress       activitypub/addresses.py: a URL names a local or private host
    └── KeyUnusable          activitypub/keys.py: the actor's key cannot be read

Outside the tree, or in it twice, on purpose:

* ``AssetRefused`` is also a ``ValueError``: a reference that is not a usable
  path is a bad value, and code that parses values catches that.
* ``activitypub.inbox.Rejected`` is the inbox's answer to one remote request
  (an HTTP status and a reason); it never leaves the route that raises it.
* ``publish.report.StopTarget`` and ``Interrupted`` are control flow inside
  one publishing pass (stop this target, stop everything); the pass turns them
  into a ``StopReason`` in its report.
* ``publish.fitting.NoRoom`` (nothing fits the limit) becomes a ``ComposeError``
  before it leaves ``publish.compose``; ``mastodon.documents.Unreadable`` (a
  success answer missing what makes it useful) becomes a ``MastodonError``
  before it leaves the client.
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

    def to_json(self) -> dict[str, object]:
        """The problem as ``check --json`` prints it."""
        return {
            "path": self.path,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": "warning" if self.warning else "error",
        }


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
