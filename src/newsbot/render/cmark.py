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
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

from cmarkgfm import _cmark
from cmarkgfm.cmark import Options

OPTIONS = Options.CMARK_OPT_UNSAFE
EXTENSIONS = ("table", "strikethrough", "autolink")
_NOT_UTF8 = b"\xfe\xff"  # bytes that never occur in UTF-8


@cache
def _native() -> tuple[Any, Any]:
    """``cmark_node_free`` and libc ``free``, loaded once, on first use."""
    module = ctypes.CDLL(_cmark.__file__)
    module.cmark_node_free.argtypes = [ctypes.c_void_p]
    module.cmark_node_free.restype = None
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.free.argtypes = [ctypes.c_void_p]
    libc.free.restype = None
    return module.cmark_node_free, libc.free


@cache
def _extensions() -> tuple[Any, ...]:
    _cmark.lib.cmark_gfm_core_extensions_ensure_registered()
    found = []
    for name in EXTENSIONS:
        extension = _cmark.lib.cmark_find_syntax_extension(name.encode())
        if extension == _cmark.ffi.NULL:
            raise RuntimeError(f"cmark-gfm lacks the {name} extension")
        found.append(extension)
    return tuple(found)


def to_html(markdown: str) -> str:
    """HTML for ``markdown`` (GFM tables, strikethrough, autolinks; raw HTML kept)."""
    lib, ffi = _cmark.lib, _cmark.ffi
    node_free, free = _native()
    data = markdown.encode("utf-8")
    parser = lib.cmark_parser_new(OPTIONS)
    try:
        for extension in _extensions():
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
