"""Bidirectional controls kept inside the text that holds them.

An embedding, override or isolate (U+202A–U+202E, U+2066–U+2068) changes the
display order of everything after it until its terminator (U+202C, U+2069).
Left open in a headline it reverses the site name after the headline in a
browser tab, the next item of a feed reader's list, the link of a post: a
hostile file can make any text around it read backwards. Right-to-left names
in left-to-right text need these controls, so they are balanced rather than
removed: a terminator without an opener is dropped, an opener left open is
closed at the end of its text, and openers past the depth Unicode honours
(125) are dropped with their terminators. Marks (U+200E, U+200F, U+061C) act
on their neighbours only and stay.

The pairing follows the Unicode Bidirectional Algorithm (UAX #9, rules X6a
and X7): a PDI closes the nearest open isolate and every embedding opened
after it; a PDF closes the last embedding only when no isolate is open after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PDF = "\u202c"
PDI = "\u2069"
EMBEDDINGS = frozenset("\u202a\u202b\u202d\u202e")  # LRE, RLE, LRO, RLO
ISOLATES = frozenset("\u2066\u2067\u2068")  # LRI, RLI, FSI
MAX_DEPTH = 125
"""The deepest nesting UAX #9 honours; deeper openers are ignored by it, and dropped here."""

CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


@dataclass(slots=True)
class _Open:
    """One open embedding or isolate: the terminator it waits for, and whether it was kept."""

    closer: str
    kept: bool


@dataclass(slots=True)
class Balancer:
    """Balances a text given in pieces: what `feed` returns, then `close`, is balanced.

    Pieces are parts of one run of text (an HTML paragraph split by inline tags),
    so a control opened in one piece may be closed in a later one.
    """

    open: list[_Open] = field(default_factory=list)

    def feed(self, text: str) -> str:
        """``text`` with the terminators that close nothing removed."""
        if not CONTROLS.search(text):
            return text
        return "".join(self._char(char) for char in text)

    def close(self) -> str:
        """The terminators of what is still open, innermost first."""
        closers = "".join(entry.closer for entry in reversed(self.open) if entry.kept)
        self.open.clear()
        return closers

    def _char(self, char: str) -> str:
        if char in EMBEDDINGS or char in ISOLATES:
            kept = sum(entry.kept for entry in self.open) < MAX_DEPTH
            self.open.append(_Open(PDF if char in EMBEDDINGS else PDI, kept))
            return char if kept else ""
        if char == PDF:
            if self.open and self.open[-1].closer == PDF:
                return char if self.open.pop().kept else ""
            return ""
        if char == PDI:
            if not any(entry.closer == PDI for entry in self.open):
                return ""
            closed = ""
            while (entry := self.open.pop()).closer != PDI:
                closed += entry.closer if entry.kept else ""
            return closed + (char if entry.kept else "")
        return char


def balance(text: str) -> str:
    """``text`` with every embedding, override and isolate closed within it."""
    if not CONTROLS.search(text):
        return text
    balancer = Balancer()
    return balancer.feed(text) + balancer.close()


def is_balanced(text: str) -> bool:
    """Whether `balance` would leave ``text`` as it is."""
    return balance(text) == text
