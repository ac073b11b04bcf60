"""Bytes of a store file to clean text, refusing what is not text."""

from __future__ import annotations

import re

from newsbot.errors import ArticleError

# XML 1.0 forbids C0 controls but tab, LF and CR, the surrogates and U+FFFE/U+FFFF;
# C1 controls are allowed but discouraged and no reader shows them, so they go too,
# and so do the other noncharacters, which HTML calls parse errors. (NEL, U+0085,
# is a line ending: `decode` turns it into one.)
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000, 0x10000)
)
_FORBIDDEN = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff{_NONCHARACTERS}]"
)


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


def forbidden_characters(text: str) -> list[int]:
    """Line numbers (1-based) holding characters XML forbids."""
    return sorted({text.count("\n", 0, m.start()) + 1 for m in _FORBIDDEN.finditer(text)})


def strip_forbidden(text: str) -> str:
    """``text`` without the characters XML forbids."""
    return _FORBIDDEN.sub("", text)
