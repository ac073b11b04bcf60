"""The output folder over HTTP: feeds, pages and media, with validators, 304s and gzip.

Each request opens its file once and answers from that open file only. The
builder replaces a file by renaming a complete new one over it, so an open
file is one whole version: its size, times, hash and bytes all belong
together, however many builds run meanwhile.

Files up to :data:`~newsbot.web.cache.CACHED_UP_TO` (feeds, pages) are
answered from :class:`~newsbot.web.cache.FileCache`: read, hashed and gzipped
once per version, with their headers laid out, so a request costs one
``stat``. :meth:`OutputFiles.answer_cached` answers from it without Starlette
at all (the server's fast path); every other request comes here. Larger
files are streamed, their content hash remembered per version, keyed by
device, inode, size, mtime and ctime from ``fstat`` of the open file. A
touched file is hashed again and keeps its ETag.

Gzip is done here rather than by Starlette's ``GZipMiddleware``, which keeps
the identity ETag on the gzipped body (one strong ETag for two different
byte sequences), skips ``Vary`` on small bodies and 304s, and reads
``Accept-Encoding`` by substring (``gzip;q=0`` would get gzip).

The endpoint is synchronous, so Starlette runs the file work in its thread
pool, off the event loop; a cached answer is one ``stat`` and is given on it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from newsbot.layout import INDEX
from newsbot.web.cache import CACHED_UP_TO, Answer, Entry, FileCache, make_entry
from newsbot.web.conditional import entity_tag, http_date, not_modified, unchanged
from newsbot.web.media import CachePolicy, MediaType, media_type_of
from newsbot.web.paths import FolderAt, locate

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
DIGEST_ENTRIES = 4_096
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""No following a symlink swapped in after the path was checked; no blocking on a FIFO."""
NOT_THERE = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR, errno.ENAMETOOLONG}

FileKey = tuple[int, int, int, int, int]
"""(device, inode, size, mtime_ns, ctime_ns): one version of one file."""

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A thread-safe map that forgets its least recently used entries past a total weight."""

    def __init__(self, capacity: int, weigh: Callable[[V], int] = lambda _: 1) -> None:
        self._capacity = capacity
        self._weigh = weigh
        self._weight = 0
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        if weight > self._capacity:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._weight += weight - (0 if old is None else self._weigh(old))
            self._entries[key] = value
            while self._weight > self._capacity:
                _, evicted = self._entries.popitem(last=False)
                self._weight -= self._weigh(evicted)


class OpenFile:
    """One version of one file, opened for one request; read at most once."""

    def __init__(self, handle: io.BufferedReader, status: os.stat_result) -> None:
        self.handle = handle
        self.size = status.st_size
        self.modified = status.st_mtime
        self.key: FileKey = (
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
            status.st_ctime_ns,
        )
        self._data: bytes | None = None

    def read_all(self) -> bytes:
        if self._data is None:
            self._data = self.handle.read()
        return self._data

    def digest(self) -> str:
        """A hash of the content: 128 bits of SHA-256, in hex."""
        digest = hashlib.file_digest(self.handle, "sha256").hexdigest()[:32]
        self.handle.seek(0)
        return digest

    async def chunks(self) -> AsyncIterator[bytes]:
        """The content in chunks, read off the loop, closing the file at the end.

        An async generator, so that when a client is dropped mid-file the
        loop's generator hooks close it, and with it the file. A plain
        generator was left to the garbage collector, which could finalise
        the file first (an fd held until then, and a ``ResourceWarning``).
        """
        try:
            while chunk := await anyio.to_thread.run_sync(self.handle.read, CHUNK):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self.handle.close()


def open_file(path: Path) -> OpenFile | None:
    """``path`` opened for reading if it is a regular file; None when it is not there."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except PermissionError:
        log.warning("cannot read %s in the output folder: permission denied", path)
        return None
    except OSError as exc:
        if exc.errno in NOT_THERE:
            return None
        raise
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        return None
    return OpenFile(os.fdopen(fd, "rb"), status)


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip``, ``x-gzip`` or ``*`` with q > 0)."""
    weights: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, _, parameters = item.partition(";")
        weights[coding.strip().lower()] = _quality(parameters)
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def _quality(parameters: str) -> float:
    """The ``q`` of one ``Accept-Encoding`` item: 1 when absent, 0 when unreadable."""
    name, _, value = parameters.partition("=")
    if name.strip().lower() != "q":
        return 1.0
    try:
        return float(value.strip())
    except ValueError:
        return 0.0


def not_found() -> Response:
    """A small 404, never a page of the site nor a folder listing."""
    return PlainTextResponse(
        "Not found\n", status_code=404, headers={"Cache-Control": "max-age=60"}
    )


def _folder_redirect(request: Request) -> Response:
    """Send ``/tags/x`` to ``/tags/x/`` (a path-only Location, so no Host header is trusted)."""
    location = quote(request.scope["path"] + "/")
    query = request.scope["query_string"].decode("latin-1")
    if query:
        location += "?" + query
    return RedirectResponse(location, status_code=301)


ACCEPT_VALUES_KEPT = 256
"""Distinct ``Accept-Encoding`` values remembered: clients send a handful, always the same."""


class OutputFiles:
    """Serves the files under ``root`` (GET and HEAD), as the builder leaves them there."""

    def __init__(
        self, root: Path, policy: CachePolicy | None = None, cache: FileCache | None = None
    ) -> None:
        self.root = root
        self.policy = CachePolicy() if policy is None else policy
        self.cache = FileCache() if cache is None else cache
        self.digests: LruCache[FileKey, str] = LruCache(DIGEST_ENTRIES)
        self._accepts: dict[str, bool] = {}

    def routes(self) -> list[BaseRoute]:
        """One catch-all route: it goes last, after every route with a fixed path."""
        return [Route("/{path:path}", self.serve, methods=["GET"], name="files")]

    def answer_cached(
        self,
        method: str,
        url_path: str,
        if_none_match: str | None,
        if_modified_since: str | None,
        accept_encoding: str | None,
    ) -> Answer | None:
        """The answer from memory to a GET or HEAD of ``url_path`` (decoded, no leading ``/``).

        None when the file is not cached as it is now on disk: the request
        must then go through :meth:`serve`, which checks the path and caches it.
        """
        entry = self.cache.get(url_path)
        if entry is None:
            return None
        return self._answer(entry, method, if_none_match, if_modified_since, accept_encoding)

    def serve(self, request: Request) -> Response:
        url_path = request.path_params["path"]
        headers = request.headers
        entry = self.cache.get(url_path)
        if entry is None:
            place = locate(self.root, url_path)
            if isinstance(place, FolderAt):
                return _folder_redirect(request)
            opened = None if place is None else open_file(place.path)
            if place is None or opened is None:
                return not_found()
            with ExitStack() as cleanup:
                cleanup.callback(opened.close)
                if opened.size > CACHED_UP_TO:
                    media = media_type_of(place.path.name, self.policy)
                    response = self._stream(request, opened, media)
                    if isinstance(response, StreamingResponse):
                        cleanup.pop_all()  # the stream closes the file when it ends
                    return response
                entry = self._cache(url_path, place.path, opened)
        answer = self._answer(
            entry,
            request.method,
            headers.get("if-none-match"),
            headers.get("if-modified-since"),
            headers.get("accept-encoding"),
        )
        return _response(answer)

    def _cache(self, url_path: str, path: Path, opened: OpenFile) -> Entry:
        """An entry for the file opened at ``url_path``, kept for the next requests."""
        names = url_path.split("/")
        where = self.root.joinpath(*names[:-1], INDEX) if names[-1] == "" else self.root / url_path
        entry = make_entry(
            str(where), path.name, opened.key, opened.modified, opened.read_all(), self.policy
        )
        self.cache.put(url_path, entry)
        return entry

    def _answer(
        self,
        entry: Entry,
        method: str,
        if_none_match: str | None,
        if_modified_since: str | None,
        accept_encoding: str | None,
    ) -> Answer:
        variant = entry.identity
        if entry.gzipped is not None and self._accepts_gzip(accept_encoding):
            variant = entry.gzipped
        if unchanged(if_none_match, if_modified_since, variant.etag, entry.modified):
            return variant.not_modified
        return variant.head if method == "HEAD" else variant.full

    def _accepts_gzip(self, header: str | None) -> bool:
        if header is None:
            return False
        known = self._accepts.get(header)
        if known is None:
            known = accepts_gzip(header)
            if len(self._accepts) < ACCEPT_VALUES_KEPT:
                self._accepts[header] = known
        return known

    def _stream(self, request: Request, opened: OpenFile, media: MediaType) -> Response:
        """A large file (media): validators from its hash, the body streamed, never gzipped."""
        digest = self._digest(opened)
        headers = _validators(entity_tag(digest, None), opened.modified, media, False)
        if not_modified(request.headers, headers["ETag"], opened.modified):
            return Response(status_code=304, headers=headers)
        headers["Content-Type"] = media.content_type
        headers["Content-Length"] = str(opened.size)
        if request.method == "HEAD":
            return Response(headers=headers)
        return StreamingResponse(opened.chunks(), headers=headers)

    def _digest(self, opened: OpenFile) -> str:
        digest = self.digests.get(opened.key)
        if digest is None:
            digest = opened.digest()
            self.digests.put(opened.key, digest)
        return digest


def _response(answer: Answer) -> Response:
    """A cached answer as a Starlette response; a body over one chunk is streamed.

    A body over one chunk goes out chunk by chunk, each sent once the client
    has taken the one before (uvicorn waits while the socket's buffer is
    full): a client that reads slowly, or not at all, holds about one chunk
    of our memory, not a copy of the whole file.
    """
    response: Response
    if len(answer.body) > CHUNK:
        response = StreamingResponse(_chunks_of(answer.body), status_code=answer.status)
    else:
        response = Response(answer.body, status_code=answer.status)
    response.raw_headers = list(answer.headers)
    return response


def _validators(etag: str, modified: float, media: MediaType, varies: bool) -> dict[str, str]:
    """The headers a 200 and its 304 share (RFC 9110 section 15.4.5)."""
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(modified),
        "Cache-Control": f"public, max-age={media.max_age}",
        "X-Content-Type-Options": "nosniff",
    }
    if varies:
        headers["Vary"] = "Accept-Encoding"
    return headers


async def _chunks_of(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]
