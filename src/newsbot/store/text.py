"""Bytes of a store file to clean text, refusing what is not text."""

from __future__ import annotations

from newsbot.errors import ArticleError


def decode(data: bytes) -> str:
    """UTF-8 text with a byte-order mark dropped and line endings (NEL too) made ``\\n``."""
    if not data.strip():
        raise ArticleError("the file is empty")
    if b"\x00" in data[:8192]:
        raise ArticleError("binary file (NUL bytes), not an article")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArticleError(
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "save the file as UTF-8",
            line=line,
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x85", "\n")
