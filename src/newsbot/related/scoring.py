"""Picking related articles: the editors' choice first, then the most similar recent ones.

An article is reduced to a small vector of its strongest terms: words of its
title and body, folded (case, accents), without stop words (English and
French), plurals folded. A term weighs ``(1 + ln tf) * idf``, title
occurrences counting ``title_boost`` times; only the ``max_terms`` strongest
are kept (every title term among them) and the vector has unit length. Small
vectors can live in the state database, and the dot product of two of them,
summed by the database over the shared terms only, is their cosine.

The score of a candidate is that similarity times a recency factor (a
half-life decay on the time between the two articles, with a floor). A
candidate with the same headline as the article, or too similar to it or to a
candidate already taken, is a near-duplicate and never offered.

Stemming is deliberately light (plural endings only): news similarity rests
on names of people, places and events, and a full stemmer such as Porter's
conflates words that mean different things ("general"/"generous",
"university"/"universe", "news"/"new"); folding plurals gets the recall on
common nouns ("protesters", "elections") at no such risk. On the labelled
Wikinews stories it adds 1.4 points of precision@3 (``bench/related_eval.py``).

Everything here is pure: no database, no clock (dates are passed in).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

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
SECONDS_PER_DAY = 86_400.0


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


@dataclass(frozen=True, slots=True)
class Ranking:
    """How candidates are scored and which are left out.

    ``duplicate_similarity``: in the Wikinews corpus the closest two distinct
    articles (templated COVID-19 milestone reports) have a cosine of 0.72, and
    none other passes 0.62; the same text under a new headline scores about
    0.9 (title terms weigh more). 0.8 lies between. ``pool`` is how many
    candidates the database returns for the recency factor to reorder.
    ``probe_budget``: how many postings (stored term weights) a query may read
    to find candidates, the strongest terms first; the pool is then ranked on
    whole vectors. It bounds the work of a query in any store; in ordinary ones
    every term fits (a generated 100,000-article store needs 8,000 postings a
    query in the median). Leaving terms out costs precision: probing with 15
    terms instead of 30 loses 3 points on the labelled Wikinews stories.
    """

    half_life_days: float = 60.0
    recency_floor: float = 0.4
    duplicate_similarity: float = 0.8
    pool: int = 40
    probe_budget: int = 20_000
    title_weight: float = 0.6
    tag_bonus: float = 0.3
    section_bonus: float = 0.1
    floor: float = 0.08
    story_level: float = 0.2
    names_weight: float = 0.0
    names_floor: float = 0.02
    overlap_floor: float = 0.3
    strong_similarity: float = 0.3


WEIGHTING = Weighting()
RANKING = Ranking()


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


@dataclass(frozen=True, slots=True)
class Profile:
    """What the ranking needs to know of the article it finds related ones for."""

    id: str
    path: str
    published: datetime
    title_key: str
    section: str | None = None
    tags: frozenset[str] = frozenset()
    lang: str | None = None
    names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A computed related article: its cosine ``similarity``, and ``score`` once dated."""

    id: str
    path: str
    published: datetime
    title_key: str
    similarity: float
    score: float = 0.0
    section: str | None = None
    tags: frozenset[str] = frozenset()
    names: float = 0.0

    def kind(self, ranking: Ranking) -> str:
        """ "story" when its score says it follows the same events, "topic" otherwise."""
        return "story" if self.score >= ranking.story_level else "topic"


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
    """
    runs: list[list[str]] = []
    current: list[str] = []
    pending = ""
    end = 0
    for match in _WORD.finditer(text):
        word = match.group()
        gap = text[end : match.start()]
        starts = end == 0 or bool(_SENTENCE_END.search(gap))
        end = match.end()
        proper = word[:1].isupper() and not word.isdigit()
        joined = gap in (" ", "-", "\u00a0")
        if proper and (not starts or (len(word) > 1 and word.isupper())):
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
        pending = word if proper and starts else ""
    if current:
        runs.append(current)
    return runs


def idf(df: int, documents: int) -> float:
    """Inverse document frequency, smoothed so a term in every document still weighs a little."""
    return math.log1p(max(documents, 1) / max(df, 1))


def vector(counts: Counts, idf_of: Mapping[str, float], weighting: Weighting) -> dict[str, float]:
    """The unit tf-idf vector of the kept terms: every title term, then the strongest others."""
    weight = {term: tf * idf_of.get(term, 0.0) for term, tf in _tf(counts, weighting).items()}
    order = sorted(sorted(weight), key=weight.__getitem__, reverse=True)  # ties by term
    titled = [term for term in order if term in counts.title][: weighting.max_terms]
    room = max(weighting.max_terms - len(titled), 0)
    kept = titled + [term for term in order if term not in counts.title][:room]
    norm = math.sqrt(sum(weight[term] ** 2 for term in kept))
    return {term: weight[term] / norm for term in kept if weight[term] > 0} if norm else {}


def probe(
    vector: Mapping[str, float], postings: Mapping[str, int], budget: int
) -> dict[str, float]:
    """The terms of ``vector`` to look candidates up by: the heaviest whose postings fit ``budget``.

    A term that does not fit is skipped, not the end: the lighter terms after it
    may be rarer. ``postings`` gives each term's number of postings (0 if absent).
    """
    chosen: dict[str, float] = {}
    spent = 0
    for term, weight in sorted(vector.items(), key=lambda item: (-item[1], item[0])):
        cost = postings.get(term, 0)
        if spent + cost <= budget:
            chosen[term] = weight
            spent += cost
    return chosen


def rescore(
    found: Iterable[Candidate],
    query: Mapping[str, float],
    vectors: Mapping[str, Mapping[str, float]],
    names: Iterable[str] = (),
) -> list[Candidate]:
    """``found`` with their similarity computed on whole vectors (by path), and the part
    of it the query's named entities ``names`` make."""
    named = {term: weight for term, weight in query.items() if term in set(names)}
    return [
        replace(
            c,
            similarity=similarity(query, vectors.get(c.path, {})),
            names=similarity(named, vectors.get(c.path, {})),
        )
        for c in found
    ]


def similarity(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two unit vectors."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return sum(weight * large[term] for term, weight in small.items() if term in large)


def recency(published: datetime, reference: datetime, ranking: Ranking) -> float:
    """Between the floor and 1: halves towards the floor every ``half_life_days`` apart."""
    days = abs((reference - published).total_seconds()) / SECONDS_PER_DAY
    decay = math.pow(0.5, days / ranking.half_life_days)
    return ranking.recency_floor + (1.0 - ranking.recency_floor) * decay


def is_near_duplicate(title_a: str, title_b: str, cosine: float, ranking: Ranking) -> bool:
    """Whether two articles tell the same story: same headline, or nearly the same terms."""
    return (bool(title_a) and title_a == title_b) or cosine > ranking.duplicate_similarity


def rank(query: Profile, found: Iterable[Candidate], ranking: Ranking) -> list[Candidate]:
    """``found`` scored and best first, without the article itself, near-duplicates of it
    and anything under the similarity floor (two right links beat three with a wrong one).

    The score is what an editor weighs: the similarity of the two texts
    (named entities, title and lead above the body), plus the share of their
    headlines' terms, times the time proximity, raised by shared tags and
    section.
    """
    mine = set(words(query.title_key, query.lang))
    kept = []
    for c in found:
        if (
            c.id == query.id
            or c.path == query.path
            or c.similarity <= 0.0
            or is_near_duplicate(query.title_key, c.title_key, c.similarity, ranking)
        ):
            continue
        overlap = _overlap(mine, c.title_key, query.lang)
        if (
            c.names < ranking.names_floor
            and overlap < ranking.overlap_floor
            and c.similarity < ranking.strong_similarity
        ):
            continue  # no named entity, little of the headline, few words in common
        score = (c.similarity + ranking.title_weight * overlap + ranking.names_weight * c.names) * (
            recency(c.published, query.published, ranking) * agreement(query, c, ranking)
        )
        if score >= ranking.floor:
            kept.append(replace(c, score=score))
    return sorted(kept, key=lambda c: (-c.score, c.path))


def agreement(query: Profile, candidate: Candidate, ranking: Ranking) -> float:
    """1, raised by the share of tags the two articles have in common and by one section."""
    factor = 1.0
    if query.tags and candidate.tags:
        shared = len(query.tags & candidate.tags) / len(query.tags | candidate.tags)
        factor += ranking.tag_bonus * shared
    if query.section and query.section == candidate.section:
        factor += ranking.section_bonus
    return factor


def _overlap(mine: set[str], title_key: str, lang: str | None) -> float:
    """Jaccard share of headline terms (series and follow-ups share their headline's words)."""
    theirs = set(words(title_key, lang))
    union = mine | theirs
    return len(mine & theirs) / len(union) if union else 0.0


def distinct(
    ranked: Sequence[Candidate],
    vectors: Mapping[str, Mapping[str, float]],
    ranking: Ranking,
    limit: int,
) -> list[Candidate]:
    """The first ``limit`` of ``ranked`` that are not near-duplicates of one taken before.

    ``vectors`` holds the vectors of the candidates by path; one without is taken as unique.
    """
    taken: list[Candidate] = []
    for candidate in ranked:
        if len(taken) >= limit:
            break
        if not any(_same_story(kept, candidate, vectors, ranking) for kept in taken):
            taken.append(candidate)
    return taken


def pick(
    editors: Sequence[str], computed: Sequence[Candidate], k: int, exclude: str | None = None
) -> list[str]:
    """Up to ``k`` ids: the editors' picks in their order, then computed ones; no repeats."""
    chosen: list[str] = []
    for article_id in [*editors, *(candidate.id for candidate in computed)]:
        if len(chosen) >= k:
            break
        if article_id != exclude and article_id not in chosen:
            chosen.append(article_id)
    return chosen


def _same_story(
    a: Candidate, b: Candidate, vectors: Mapping[str, Mapping[str, float]], ranking: Ranking
) -> bool:
    if a.id == b.id:
        return True
    cosine = similarity(vectors.get(a.path, {}), vectors.get(b.path, {}))
    return is_near_duplicate(a.title_key, b.title_key, cosine, ranking)


def _tf(counts: Counts, weighting: Weighting) -> dict[str, float]:
    """Sublinear term frequency: title and lead occurrences boosted, named entities raised."""
    raw: dict[str, float] = dict(counts.body)
    for term, n in counts.title.items():
        raw[term] = raw.get(term, 0) + weighting.title_boost * n
    for term, n in counts.lead.items():
        raw[term] = raw.get(term, 0) + weighting.lead_boost * n
    for term, n in counts.names.items():
        if " " in term:  # phrases are not counted elsewhere
            raw[term] = raw.get(term, 0) + n
    return {
        term: (1.0 + math.log(n)) * (weighting.name_boost if term in counts.names else 1.0)
        for term, n in raw.items()
        if n > 0
    }


def _counted(text: str, language: str, stem: bool) -> Counter[str]:
    """Term counts of ``text``: each distinct word is looked at once."""
    counts: Counter[str] = Counter()
    for word, n in Counter(_WORD.findall(_fold(_plain(text)))).items():
        term = _term(word, language, stem)
        if term:
            counts[term] += n
    return counts


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
