"""Handing back to the system the memory a build used, once the build is over.

A build allocates a great deal for a short time (parsed files, rendered
pages and feeds, the rows of the index), then frees it; but glibc's
allocator keeps freed pages mapped, in the arenas of the threads that used
them, and a service at rest after a large first build would stay at the
build's size. After each build the service collects the cycles the build
left and asks the allocator to return what is free (``malloc_trim``, a
glibc function; elsewhere, as with musl, it does nothing).
"""

from __future__ import annotations

import ctypes
import gc


def release() -> None:
    """Collect garbage and return free heap pages to the system (glibc only)."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
