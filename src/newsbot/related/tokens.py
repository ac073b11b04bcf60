"""An article's text into counted terms: what relatedness is computed from.

Words of the title and body are folded (case, accents), stop words (English
and French) and bare numbers left out, plurals folded. Named entities (proper
nouns and runs of them) are counted apart, as the ranking weighs them above
other words.

Stemming is deliberately light (plural endings only): news similarity rests
on names of people, places and events, and a full stemmer such as Porter's
conflates words that mean different things ("general"/"generous",
"university"/"universe", "news"/"new"); folding plurals gets the recall on
common nouns ("protesters", "elections") at no such risk. On the labelled
Wikinews stories it adds 1.4 points of precision@3 (``bench/related_eval.py``).

Pure: no database, no clock.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

STOP_WORDS: Mapping[str, frozenset[str]] = {
    "en": frozenset(
        """
        a about above across after again against all almost along also although am among an
        and another any are around as at be because been before being below between both but
        by can cannot could did didn do does doesn doing don down during each either even ever
        every few for from further had has have having he her here hers herself him himself his
        how however i if in into is isn it its itself just least less many may me might more
        most much must my myself neither no nor not now of off on once one only onto or other
        others our ours ourselves out over own per same several shall she should since so some
        still such than that the their theirs them themselves then there these they this those
        though through to too toward towards under until up upon us very via was wasn we were
        what when where whether which while who whom whose why will with within without would
        yet you your yours yourself yourselves
        said says say saying told tell according reported reportedly added stated mr mrs ms
        yesterday today tomorrow
        monday tuesday wednesday thursday friday saturday sunday
        january february april june july august september october november december
        """.split()
    ),
    "fr": frozenset(
        """
        a afin ai ainsi alors apres au aucun aujourd aussi autre autres aux avait avant avec
        avoir c ca car ce ceci cela celle celles celui ces cet cette ceux chez comme comment d
        dans de depuis des deux donc dont du elle elles en encore entre est et etaient etait
        ete etre eu eux fait faire hui il ils j je jusqu l la le les leur leurs lors lui m ma
        mais me meme mes moi moins mon n ne ni non nos notre nous on ont ou par parce pas pendant
        peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui s sa sans se selon
        ses si sinon son sont sous sur t ta te tes toi ton tous tout toute toutes tres tu un une
        vers vos votre vous y
        dit declare indique hier demain
        lundi mardi mercredi jeudi vendredi samedi dimanche
        janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre
        """.split()
    ),
}
"""Words that say nothing about a story, folded like the tokens (no accents, lower case)."""

_ALL_STOP_WORDS = frozenset().union(*STOP_WORDS.values())
_WORD = re.compile(r"[^\W_]+")
_NOISE = re.compile(r"https?://\S+|\]\([^)]*\)|<[^>]+>")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_SENTENCE_END = re.compile(r"[.!?:;\"“”‘(\[\n|—–]")
_MIN_STEM_LENGTH = 5
TERM_CACHE = 1 << 16
"""Distinct words whose term is remembered: bounded, a few megabytes at most."""
MAX_WORD_LENGTH = 40
"""Longer runs of letters are markup or garbage, not words (terms are stored in 64 characters)."""


@dataclass(frozen=True, slots=True)
class Weighting:
    """How an article becomes weighted terms.

    The defaults sit on the plateau ``bench/related_eval.py`` finds (20 to 60
    terms, boost 1 to 3, all within 3 points); 30 terms keep the index at 30
    rows an article. ``body_chars`` only bounds the work on an abnormally long
    body: the whole text of an article matters (leads alone lost 3 to 6 points).
    """

    max_terms: int = 30
    title_boost: float = 3.0
    lead_chars: int = 600
    lead_boost: float = 1.0
    names_chars: int = 2_000
    name_boost: float = 1.6
    stem: bool = True
    body_chars: int = 100_000


WEIGHTING = Weighting()


@dataclass(frozen=True, slots=True)
class Counts:
    """Occurrences of each term in the title, the lead and the body of one article.

    ``names`` counts the named entities of the title and the first
    ``names_chars`` of the body: words written as proper nouns (capitalised
    inside a sentence, or acronyms) and runs of them ("hong kong", "joe
    biden") as terms of their own.
    """

    title: Counter[str]
    body: Counter[str]
    lead: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)

    def distinct(self) -> set[str]:
        """Every term the article contains once or more: what document frequencies count."""
        return set(self.title) | set(self.body) | set(self.names)


def words(text: str, lang: str | None, stem: bool = True) -> list[str]:
    """The terms of ``text`` in order: folded, without stop words or bare numbers."""
    language = _language(lang)
    found = (_term(word, language, stem) for word in _WORD.findall(_fold(_plain(text))))
    return [term for term in found if term]


def count(title: str, body: str, lang: str | None, weighting: Weighting) -> Counts:
    """The term counts of one article (of the first ``body_chars`` of its body)."""
    language = _language(lang)
    text = body[: weighting.body_chars]
    lead = (
        text[: weighting.lead_chars].rsplit(None, 1)[0]
        if len(text) > weighting.lead_chars
        else text
    )
    return Counts(
        _counted(title, language, weighting.stem),
        _counted(text, language, weighting.stem),
        _counted(lead, language, weighting.stem),
        names(title, text[: weighting.names_chars], language, weighting.stem),
    )


def names(title: str, text: str, lang: str | None, stem: bool = True) -> Counter[str]:
    """Named entities of a title and a text: proper-noun words, and runs of them as phrases.

    A word counts when it is capitalised where a sentence does not start (or
    is an acronym); a headline written in title case gives no evidence and is
    skipped. Runs of two to four such words also count as a phrase term
    ("hong kong"), which keeps apart stories that share a common first name
    or place word.
    """
    language = _language(lang)
    found: Counter[str] = Counter()
    title_words = _WORD.findall(title)
    lower = sum(1 for w in title_words if w[:1].islower())
    sources = [text]
    if lower >= 2 or len(title_words) < 4:
        sources.append(". " + title)
    for source in sources:
        for run in _name_runs(_plain(source)):
            terms = [t for t in (_term(_fold(w), language, stem) for w in run) if t]
            found.update(terms)
            if 2 <= len(terms) <= 4:
                found[" ".join(terms)] += 1
    return found


def _name_runs(text: str) -> list[list[str]]:
    """Runs of proper-noun words in ``text``.

    A capitalised word that starts a sentence says nothing by itself; it
    counts only when the next word continues a run ("United States ...").
    The gap before a word is looked at only for a capitalised one: most words
    are not, and this loop runs over the first characters of every article.
    """
    runs: list[list[str]] = []
    current: list[str] = []
    pending = ""
    end = 0
    for match in _WORD.finditer(text):
        word = match.group()
        if not word[:1].isupper():  # not a proper noun (nor a number): ends any run
            end = match.end()
            if current:
                runs.append(current)
                current = []
            pending = ""
            continue
        gap = text[end : match.start()]
        starts = end == 0 or bool(_SENTENCE_END.search(gap))
        end = match.end()
        joined = gap in (" ", "-", "\u00a0")
        if not starts or (len(word) > 1 and word.isupper()):
            if current and not joined:
                runs.append(current)
                current = []
            if pending and joined and not current:
                current.append(pending)
            current.append(word)
            pending = ""
            continue
        if current:
            runs.append(current)
            current = []
        pending = word if starts else ""
    if current:
        runs.append(current)
    return runs


def _counted(text: str, language: str, stem: bool) -> Counter[str]:
    """Term counts of ``text``: each distinct word is looked at once.

    Summed in a plain dict, then made a `Counter` (same order): adding to a
    `Counter` one word at a time goes through its Python-level ``__missing__``.
    """
    counts: dict[str, int] = {}
    for word, n in Counter(_WORD.findall(_fold(_plain(text)))).items():
        term = _term(word, language, stem)
        if term:
            counts[term] = counts.get(term, 0) + n
    return Counter(counts)


@functools.lru_cache(maxsize=TERM_CACHE)
def _term(word: str, language: str, stem: bool) -> str:
    """The term a folded word stands for, or "" when it is left out."""
    if not 2 <= len(word) <= MAX_WORD_LENGTH or word.isdigit():
        return ""
    if word in STOP_WORDS.get(language, _ALL_STOP_WORDS):
        return ""
    return _stem(word, language) if stem else word


def _plain(text: str) -> str:
    """``text`` without link targets, addresses and HTML tags (their words are not the story's)."""
    if "://" in text or "](" in text or "<" in text:
        return _NOISE.sub(" ", text)
    return text


def _language(lang: str | None) -> str:
    """The primary subtag of ``lang``, lower case ("" when unknown)."""
    return (lang or "").split("-")[0].lower()


def _fold(text: str) -> str:
    """Lower case without accents, so "Vázquez" and "Vazquez" are one term."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    return _COMBINING.sub("", unicodedata.normalize("NFKD", folded))


def _stem(word: str, language: str) -> str:
    """Plural endings only (Harman's S-stemmer for English, final s/x for French)."""
    if len(word) < _MIN_STEM_LENGTH:
        return word
    if language == "fr":
        return word[:-1] if word[-1] in "sx" and word[-2] != "s" else word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word
