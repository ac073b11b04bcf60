"""The output folder's small files, held in memory ready to send: bytes, ETag, gzip, headers.

A feed polled by many readers is the same bytes until the next build, so
each version of a file is read, hashed and gzipped once and then answered
from memory. A version is known by one ``stat`` of its path: (device, inode,
size, mtime_ns, ctime_ns). The builder replaces a file by renaming a
complete new one over it, which always brings a new inode, and an in-place
write changes the ctime (which nothing can set back), so a key never
outlives its bytes; a request whose ``stat`` differs from the entry's reads
the file again. Entries are opened through the same checks as every request
(:func:`~newsbot.web.paths.locate`, no symlink out of the folder), and
found again by the request's path only: a path whose ``stat`` no longer
matches goes through those checks again.

Only files up to :data:`CACHED_UP_TO` are held, and all entries together
weigh at most ``capacity`` bytes (least recently used first out); larger
files are streamed from disk as before.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from newsbot.web.conditional import entity_tag, http_date
from newsbot.web.media import CachePolicy, MediaType, media_type_of

CACHED_UP_TO = 4 * 1024 * 1024
"""Files up to this size are read into memory; larger ones (media) are streamed, never gzipped."""
GZIP_FROM = 256
"""Below this, gzip's own header and trailer eat most of the saving."""
GZIP_LEVEL = 6
CACHE_BYTES = 32 * 1024 * 1024
"""What all entries together may weigh (both variants of each file)."""

Version = tuple[int, int, int, int, int]
"""(device, inode, size, mtime_ns, ctime_ns): one version of one file."""


def version_of(status: os.stat_result) -> Version:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class Answer(NamedTuple):
    """A whole response from a cached file: status, headers (lowercase names) and body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    lines: bytes
    """The headers as HTTP/1.1 header lines, each ending in CRLF, for the server's own writes."""


def _answer(status: int, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> Answer:
    return Answer(status, headers, body, b"".join(n + b": " + v + b"\r\n" for n, v in headers))


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a file (identity or gzip): its body, its headers, its answers.

    The three answers a request can get are made once per file version: a
    304 or a 200 from memory is then a lookup, with nothing to allocate.
    """

    body: bytes
    etag: str
    validators: tuple[tuple[bytes, bytes], ...]
    """The headers a 200 and its 304 share (RFC 9110 section 15.4.5)."""
    content: tuple[tuple[bytes, bytes], ...]
    """What a 200 adds: type, coding, length."""
    not_modified: Answer = field(init=False)
    full: Answer = field(init=False)
    """The answer to a GET."""
    head: Answer = field(init=False)
    """The answer to a HEAD: a GET's headers, no body."""

    def __post_init__(self) -> None:
        headers = (*self.validators, *self.content)
        object.__setattr__(self, "not_modified", _answer(304, self.validators, b""))
        object.__setattr__(self, "full", _answer(200, headers, self.body))
        object.__setattr__(self, "head", _answer(200, headers, b""))


@dataclass(frozen=True, slots=True)
class Entry:
    """One version of one file, ready to answer with."""

    where: str
    """The request's path under the folder, unresolved: what each request ``stat``s."""
    version: Version
    modified: float
    media: MediaType
    identity: Variant
    gzipped: Variant | None
    """Present when the file is text worth compressing (then the answers vary)."""
    weight: int = field(init=False)

    def __post_init__(self) -> None:
        size = len(self.identity.body) + (0 if self.gzipped is None else len(self.gzipped.body))
        object.__setattr__(self, "weight", size + 1024)


def make_entry(
    where: str, name: str, version: Version, modified: float, data: bytes, policy: CachePolicy
) -> Entry:
    """Hash, gzip and lay out the headers of one file version, served as a file called ``name``.

    ``mtime=0`` in the gzip header: the same content always gives the same bytes.
    """
    media = media_type_of(name, policy)
    digest = hashlib.sha256(data).hexdigest()[:32]
    varies = media.textual and len(data) >= GZIP_FROM
    shared = [
        (b"last-modified", http_date(modified).encode("latin-1")),
        (b"cache-control", f"public, max-age={media.max_age}".encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
    ]
    if varies:
        shared.append((b"vary", b"Accept-Encoding"))
    content_type = (b"content-type", media.content_type.encode("latin-1"))

    def variant(body: bytes, coding: str | None) -> Variant:
        etag = entity_tag(digest, coding)
        content = [content_type]
        if coding is not None:
            content.append((b"content-encoding", coding.encode("latin-1")))
        content.append((b"content-length", str(len(body)).encode("latin-1")))
        return Variant(body, etag, ((b"etag", etag.encode("latin-1")), *shared), tuple(content))

    gzipped = variant(gzip.compress(data, GZIP_LEVEL, mtime=0), "gzip") if varies else None
    return Entry(where, version, modified, media, variant(data, None), gzipped)


class FileCache:
    """Entries by request path, least recently used out first past ``capacity`` bytes."""

    def __init__(self, capacity: int = CACHE_BYTES) -> None:
        self.capacity = capacity
        self._weight = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url_path: str) -> Entry | None:
        """The entry for ``url_path`` if the file there is still the version it holds."""
        entry = self._entries.get(url_path)
        if entry is None:
            return None
        try:
            status = os.stat(entry.where)  # noqa: PTH116 - a str path: the fastest stat
        except OSError:
            return None
        if version_of(status) != entry.version:
            return None
        with self._lock:
            if url_path in self._entries:
                self._entries.move_to_end(url_path)
        return entry

    def put(self, url_path: str, entry: Entry) -> None:
        if entry.weight > self.capacity:
            return
        with self._lock:
            old = self._entries.pop(url_path, None)
            self._weight += entry.weight - (0 if old is None else old.weight)
            self._entries[url_path] = entry
            while self._weight > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self._weight -= evicted.weight

    @property
    def weight(self) -> int:
        return self._weight
