"""Markdown to HTML with cmark-gfm, without its memory leak.

cmarkgfm's high-level wrappers never free the parsed tree nor the rendered
string (theacodes/cmarkgfm#53): about 20 KB per article, a gigabyte over a
100,000-article build and an ever-growing service. This module drives the
same C functions and frees both, through the symbols the extension module
exports (``cmark_node_free``) and the C library's ``free``, which is the
allocator cmark uses by default.

cmark writes the character references ``&#xfffe;`` and ``&#xffff;`` as the
single bytes 0xFE and 0xFF (its UTF-8 encoder keeps them as markers), which
no UTF-8 text holds; they are dropped, as newsbot drops those noncharacters
everywhere.

The driver rests on ``cmarkgfm._cmark``, a private module, so it is used only
where it is proven: CPython, a cmarkgfm release it was tested with
(:data:`PROVEN`, the range ``pyproject.toml`` pins) and every symbol it calls
present. Anywhere else :func:`to_html` falls back to cmarkgfm's own wrapper
with the same options, which renders the same HTML and leaks as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import Any

import cmarkgfm
from cmarkgfm.cmark import Options

OPTIONS = Options.CMARK_OPT_UNSAFE
EXTENSIONS = ("table", "strikethrough", "autolink")
_NOT_UTF8 = b"\xfe\xff"  # bytes that never occur in UTF-8

PROVEN = ((2024, 11, 20), (2025, 10, 22))
"""The oldest and newest cmarkgfm releases the driver was tested with, both included."""
_SYMBOLS = (
    "cmark_parser_new",
    "cmark_parser_attach_syntax_extension",
    "cmark_parser_feed",
    "cmark_parser_finish",
    "cmark_render_html",
    "cmark_parser_get_syntax_extensions",
    "cmark_parser_free",
    "cmark_gfm_core_extensions_ensure_registered",
    "cmark_find_syntax_extension",
)


def release(version: str) -> tuple[int, ...] | None:
    """``2025.10.22`` as ``(2025, 10, 22)``; None for anything else (a pre-release, say)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return None


@cache
def driver() -> ModuleType | None:
    """cmarkgfm's extension module when the driver is proven on it here, else None."""
    if sys.implementation.name != "cpython":
        return None
    try:
        found = release(metadata.version("cmarkgfm"))
    except metadata.PackageNotFoundError:
        return None
    if found is None or not PROVEN[0] <= found <= PROVEN[1]:
        return None
    try:
        from cmarkgfm import _cmark
    except ImportError:
        return None
    if not all(hasattr(_cmark.lib, name) for name in _SYMBOLS) or not hasattr(_cmark, "ffi"):
        return None
    try:
        _native(_cmark.__file__)
    except (OSError, AttributeError, TypeError):  # no cmark_node_free, or no C library
        return None
    proven: ModuleType = _cmark
    return proven


@cache
def _native(path: str) -> tuple[Any, Any]:
    """``cmark_node_free`` of the extension module at ``path`` and libc ``free``, loaded once."""
    module = ctypes.CDLL(path)
    module.cmark_node_free.argtypes = [ctypes.c_void_p]
    module.cmark_node_free.restype = None
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free.restype = None
    return module.cmark_node_free, libc.free


@cache
def _extensions(_cmark: ModuleType) -> tuple[Any, ...]:
    _cmark.lib.cmark_gfm_core_extensions_ensure_registered()
    found = []
    for name in EXTENSIONS:
        extension = _cmark.lib.cmark_find_syntax_extension(name.encode())
        if extension == _cmark.ffi.NULL:
            raise RuntimeError(f"cmark-gfm lacks the {name} extension")
        found.append(extension)
    return tuple(found)


def to_html(markdown: str, *, native: bool | None = None) -> str:
    """HTML for ``markdown`` (GFM tables, strikethrough, autolinks; raw HTML kept).

    ``native`` chooses the driver (True: required, False: the wrapper); by
    default the driver is used where it is proven.
    """
    module = driver()
    if native and module is None:
        raise RuntimeError("the cmark-gfm driver is not proven on this platform")
    if native is False or module is None:
        return _wrapped(markdown)
    return _driven(module, markdown)


def _wrapped(markdown: str) -> str:
    """cmarkgfm's own wrapper, with the bytes that are not UTF-8 dropped as the driver does."""
    try:
        html: str = cmarkgfm.markdown_to_html_with_extensions(
            markdown, options=OPTIONS, extensions=list(EXTENSIONS)
        )
    except UnicodeDecodeError as exc:  # the wrapper decodes cmark's 0xFE/0xFF strictly
        return bytes(exc.object).translate(None, _NOT_UTF8).decode("utf-8")
    return html


def _driven(_cmark: ModuleType, markdown: str) -> str:
    lib, ffi = _cmark.lib, _cmark.ffi
    node_free, free = _native(_cmark.__file__)
    data = markdown.encode("utf-8")
    parser = lib.cmark_parser_new(OPTIONS)
    try:
        for extension in _extensions(_cmark):
            lib.cmark_parser_attach_syntax_extension(parser, extension)
        lib.cmark_parser_feed(parser, data, len(data))
        root = lib.cmark_parser_finish(parser)
        try:
            raw = lib.cmark_render_html(
                root, OPTIONS, lib.cmark_parser_get_syntax_extensions(parser)
            )
            try:
                data = bytes(ffi.string(raw))
                return data.translate(None, _NOT_UTF8).decode("utf-8")
            finally:
                free(int(ffi.cast("uintptr_t", raw)))
        finally:
            node_free(int(ffi.cast("uintptr_t", root)))
    finally:
        lib.cmark_parser_free(parser)
