"""Resolving the editors' related references to articles of the store.

A reference may be an article id, a path in the store, the article's URL, or
its headline as another page printed it. Headlines are matched tolerantly:
quote characters, dashes, case, accents and punctuation do not matter, and
small wording differences are accepted above a high similarity score. A
reference that matches nothing is left unresolved, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from newsbot.articles import Article

MIN_SCORE = 88.0
"""Lowest token-sort similarity (0-100) for a headline that is not an exact match."""

_QUOTES = str.maketrans({c: "'" for c in '‘’‚‛′`´«»‹›“”„‟″"'} | {c: "-" for c in "‐‑‒–—―"})
_PUNCT = re.compile(r"[^\w\s]+")


@dataclass(frozen=True, slots=True)
class Resolution:
    """A reference and the id of the article it names, or None."""

    ref: str
    article_id: str | None


class TitleIndex:
    """Every article of the store by id, path, URL and normalised headline."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self.by_key: dict[str, str] = {}
        self.titles: dict[str, str] = {}
        for article in articles:
            for key in (article.id, article.path, _strip_suffix(article.path), article.url):
                self.by_key.setdefault(key, article.id)
            self.titles.setdefault(normalise(article.title), article.id)
        self.choices = list(self.titles)

    def resolve(self, ref: str, exclude: str | None = None) -> str | None:
        """The id of the article ``ref`` names (never ``exclude``, the referring article)."""
        ref = ref.strip()
        found = self.by_key.get(ref) or self.by_key.get(ref.rstrip("/") + "/")
        if found is None:
            found = self._by_title(normalise(ref))
        return None if found == exclude else found

    def _by_title(self, title: str) -> str | None:
        if not title:
            return None
        exact = self.titles.get(title)
        if exact is not None or not self.choices:
            return exact
        from rapidfuzz import fuzz, process, utils  # index time only: ~3 MB a service need not hold

        match = process.extractOne(
            title,
            self.choices,
            scorer=fuzz.token_sort_ratio,
            processor=utils.default_process,
            score_cutoff=MIN_SCORE,
        )
        return None if match is None else self.titles[match[0]]


def normalise(title: str) -> str:
    """A headline reduced to what identifies it: folded case and accents, no punctuation."""
    text = unicodedata.normalize("NFKC", title).translate(_QUOTES).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(_PUNCT.sub(" ", text.replace("'", "")).split())


def resolve_all(article: Article, index: TitleIndex) -> list[Resolution]:
    """Each of the article's references with what it resolved to."""
    return [Resolution(ref, index.resolve(ref, exclude=article.id)) for ref in article.related]


def _strip_suffix(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
