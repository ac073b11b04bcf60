"""Related articles: the term index, the ranking rules and the editors' picks, on real databases.

Every test runs on a real SQLite file; with ``NEWSBOT_TEST_POSTGRES_URL`` set
(``tests/setup/postgres.sh`` prints one) the same tests also run on
PostgreSQL, each in a database of its own (the ``database_url`` fixture of
``conftest.py``). Articles go in and out through
`StoreIndex.store` and `StoreIndex.remove`, as a build does. Texts are made
of topic words so that which article is related to which is known.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, select, text

from newsbot.articles import Article
from newsbot.related import scoring as related
from newsbot.related import tokens
from newsbot.related import vectors as tfidf
from newsbot.related.places import countries, is_place
from newsbot.related.references import TitleIndex, normalise
from newsbot.related.scoring import RANKING, Candidate, Profile
from newsbot.related.tokens import WEIGHTING
from newsbot.state.database import MIGRATIONS, open_database
from newsbot.state.index import StoreIndex
from newsbot.state.related import RelatedFinder, related_for
from newsbot.state.schema import article_terms, term_stats
from newsbot.store.fields import Site
from newsbot.store.reader import Parsed, read
from newsbot.store.scan import FileStat, walk

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CONTENT = Path(__file__).parent.parent / "content"

TOPICS = {
    "volcano": "volcano eruption lava magma ash crater seismic evacuation vulcanologist plume "
    "caldera tremor pyroclastic summit lahar fissure",
    "election": "election ballot candidate voters polling campaign senate constituency turnout "
    "referendum incumbent runoff precinct caucus primary",
    "football": "football striker goalkeeper league penalty midfielder stadium referee tournament "
    "championship defender coach transfer derby trophy",
    "vaccine": "vaccine immunisation measles outbreak clinic dose epidemic pathogen antibody "
    "quarantine infection hospital virologist booster trial",
    "railway": "railway locomotive train station commuters platform timetable signalling track "
    "derailment carriage freight conductor junction tunnel",
}
FILLER = (
    "city people government officials week report local national public group members "
    "program plan service area community center school business market family history "
    "water power energy street house office water money price cost level number support"
).split()


# -- databases ---------------------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


class Store:
    """The store index of a test: articles go in and out as a build puts them."""

    def __init__(self, engine: Engine) -> None:
        self.index = StoreIndex(engine)
        self.generation = 0

    def add(self, *articles: Article) -> None:
        self.generation += 1
        with self.index.engine.begin() as conn:
            for start in range(0, len(articles), 500):
                self.index.store(
                    conn,
                    [_parsed(a) for a in articles[start : start + 500]],
                    self.generation,
                    now=NOW,
                )

    def remove(self, *articles: Article) -> None:
        with self.index.engine.begin() as conn:
            self.index.remove(conn, [a.path for a in articles])

    def related(self, article: Article, k: int = 3, now: datetime = NOW) -> list[str]:
        return [a.id for a in related_for(self.index.engine, article, k, now)]


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


def _parsed(article: Article) -> Parsed:
    digest = hashlib.blake2b(article.body.encode(), digest_size=16).hexdigest()
    return Parsed(FileStat(article.path, len(article.body), 1), digest, article, "", ())


# -- articles ----------------------------------------------------------------------------------


def make(article_id: str, title: str, body: str, days_ago: float = 10, **fields: Any) -> Article:
    """An article published ``days_ago`` before `NOW`."""
    published = NOW - timedelta(days=days_ago)
    return Article(
        id=article_id,
        path=f"{article_id}.md",
        title=title,
        published=published,
        updated=published,
        body=body,
        url=fields.pop("url", f"https://news.example/{article_id}/"),
        lang="en",
        **fields,
    )


def story(topic: str, seed: int, words: int = 120, title_words: int = 6) -> tuple[str, str]:
    """A title and body on ``topic``: its words, common words, the story's names and its own."""
    rng = random.Random(f"{topic}-{seed}")
    vocabulary = TOPICS[topic].split()
    cast = random.Random(topic)  # the people and places of the story, in each of its articles
    names = [_name(cast) for _ in range(4)] + [_name(rng) for _ in range(4)]
    title = " ".join([*rng.sample(vocabulary, title_words - 1), names[0]])
    pools = (vocabulary, FILLER, names)
    body = " ".join(rng.choice(rng.choices(pools, weights=(4, 4, 2))[0]) for _ in range(words))
    return title.capitalize(), body


def _name(rng: random.Random) -> str:
    syllables = "ka lo mi ra ve tu sen dor pal gri nox fe bal zu".split()
    return "".join(rng.choice(syllables) for _ in range(3)).capitalize()  # a proper noun


def corpus(per_topic: int = 6, days: float = 30) -> list[Article]:
    """``per_topic`` articles on each topic, spread over ``days``."""
    found = []
    for topic in TOPICS:
        for n in range(per_topic):
            title, body = story(topic, n)
            found.append(make(f"{topic}-{n}", title, body, days_ago=1 + (n * days) / per_topic))
    return found


def topic_of(article_id: str) -> str:
    return article_id.split("-")[0]


# -- the pure rules ----------------------------------------------------------------------------


def test_words_fold_case_accents_plurals_and_drop_stop_words() -> None:
    assert tokens.words("The Governors of Puerto Rico said: Vázquez, 2019", "en") == [
        "governor",
        "puerto",
        "rico",
        "vazquez",
    ]
    assert tokens.words("Les élections régionales", "fr") == ["election", "regionale"]
    assert tokens.words("news bus glass", "en") == ["news", "bus", "glass"]


def test_pick_puts_editors_first_without_repeats_or_the_article_itself() -> None:
    def candidate(article_id: str) -> Candidate:
        return Candidate(article_id, article_id + ".md", NOW, article_id, 0.5)

    computed = [candidate("b"), candidate("self"), candidate("c"), candidate("d")]
    assert related.pick(["a", "b", "a"], computed, 3, exclude="self") == ["a", "b", "c"]
    assert related.pick(["a", "b", "c", "e"], computed, 3) == ["a", "b", "c"]
    assert related.pick([], computed, 0) == []


def test_probe_takes_the_heaviest_terms_whose_postings_fit_the_budget() -> None:
    vector = {"rare": 0.6, "common": 0.5, "medium": 0.4, "light": 0.1, "new": 0.05}
    postings = {"rare": 10, "common": 50_000, "medium": 9_000, "light": 20_000}
    assert tfidf.probe(vector, postings, 20_000) == {"rare": 0.6, "medium": 0.4, "new": 0.05}
    assert tfidf.probe(vector, postings, 10**9) == vector


def test_recency_prefers_the_closer_of_two_equally_similar_candidates() -> None:
    query = Profile("q", "q.md", NOW, "q")
    old = Candidate("old", "old.md", NOW - timedelta(days=400), "old", 0.5, agreeing=3)
    new = Candidate("new", "new.md", NOW - timedelta(days=2), "new", 0.5, agreeing=3)
    assert [c.id for c in related.rank(query, [old, new], RANKING)] == ["new", "old"]
    # A preference, not a filter: a much closer match still wins over a recent weak one.
    weak_new = replace(new, similarity=0.25)
    strong_old = replace(old, similarity=0.75)
    assert related.rank(query, [strong_old, weak_new], RANKING)[0].id == "old"


def test_a_weak_link_must_rest_on_several_shared_terms() -> None:
    query = Profile("q", "q.md", NOW, "q")
    one_word = Candidate("one", "one.md", NOW, "one", 0.2, names=0.1, agreeing=1)
    several = replace(one_word, id="several", path="several.md", agreeing=3)
    assert [c.id for c in related.rank(query, [one_word, several], RANKING)] == ["several"]
    # A strong match stands on its own.
    strong = replace(one_word, similarity=0.5)
    assert [c.id for c in related.rank(query, [strong], RANKING)] == ["one"]


def test_headlines_name_countries_by_their_places_and_people() -> None:
    assert countries(normalise("US state of Wisconsin holds 2020 election")) == {"us"}
    assert countries(normalise("Sixteen states sue U.S. President Trump")) == {"us"}
    assert countries(normalise("Bangladesh reports five new deaths due to COVID-19")) == {"bd"}
    assert countries(normalise("200 in New Delhi, India drink cow urine")) == {"in"}
    # The longest name wins: New South Wales is Australia, not Wales.
    assert countries(normalise("New South Wales decriminalizes abortion")) == {"au"}
    assert countries(normalise("World Health Organization declares COVID-19 pandemic")) == set()
    # Vector terms have their plurals folded.
    assert is_place("united state") and is_place("cuba") and not is_place("covid")


def test_links_across_countries_or_on_places_alone_score_lower() -> None:
    query = Profile("q", "q.md", NOW, normalise("Prime Minister of Slovakia tests positive"))
    same = Candidate("same", "same.md", NOW, normalise("Slovak minister resigns"), 0.4, agreeing=3)
    abroad = replace(same, id="abroad", path="abroad.md", title_key=normalise("UK minister quits"))
    neutral = replace(same, id="neutral", path="neutral.md", title_key=normalise("Minister quits"))
    ranking = replace(RANKING, title_weight=0.0)  # the headlines' shared words aside
    scores = {c.id: c.score for c in related.rank(query, [same, abroad, neutral], ranking)}
    assert scores["same"] == scores["neutral"]
    assert scores["abroad"] == pytest.approx(scores["same"] * ranking.place_disagreement)
    # A link whose evidence is only a place name weighs less than one on its subject.
    placed = replace(neutral, places_only=True)
    (weak,) = related.rank(query, [placed], ranking)
    assert weak.score == pytest.approx(scores["neutral"] * ranking.place_only)


@pytest.mark.parametrize(
    ("theirs", "expected"),
    [
        ("Zanzibar measles outbreak", 9.0 / math.sqrt(14.0 * 17.0)),  # the rare word: idf 3
        ("Ferry measles outbreak", 1.0 / math.sqrt(14.0 * 9.0)),  # the common word: idf 1
        ("Measles outbreak", 0.0),  # nothing in common
        ("Ferry to Zanzibar", 10.0 / math.sqrt(14.0 * 10.0)),  # both
    ],
)
def test_headline_similarity_weighs_rare_words_above_common_ones(
    theirs: str, expected: float
) -> None:
    idf = {"ferry": 1.0, "zanzibar": 3.0, "clinic": 2.0, "measle": 2.0, "outbreak": 2.0}
    query = Profile("q", "q.md", NOW, normalise("Ferry clinic in Zanzibar"), lang="en")
    # The query's headline: ferry 1, clinic 2, zanzibar 3 (norm sqrt 14).
    found = [Candidate("c", "c.md", NOW, normalise(theirs), 0.3)]
    (scored,) = related.headlines(query, found, idf)
    assert scored.headline == pytest.approx(expected)
    # Symmetric, as offers to other lists need.
    mirrored = Profile("c", "c.md", NOW, normalise(theirs), lang="en")
    back = [Candidate("q", "q.md", NOW, query.title_key, 0.3)]
    assert related.headlines(mirrored, back, idf)[0].headline == pytest.approx(expected)
    assert related.headline_terms(query, found) >= {"ferry", "clinic", "zanzibar"}


def test_similar_headlines_raise_the_score_by_their_weight() -> None:
    query = Profile("q", "q.md", NOW, "q")
    plain = Candidate("plain", "plain.md", NOW, "plain", 0.3, names=0.1, agreeing=3)
    titled = replace(plain, id="titled", path="titled.md", similarity=0.28, headline=0.5)
    ranked = related.rank(query, [plain, titled], RANKING)
    assert [c.id for c in ranked] == ["titled", "plain"]
    assert ranked[0].score - ranked[1].score == pytest.approx(RANKING.headline_weight * 0.5 - 0.02)
    off = replace(RANKING, headline_weight=0.0)
    assert [c.id for c in related.rank(query, [plain, titled], off)] == ["plain", "titled"]


def test_rescore_marks_links_that_rest_on_places_only() -> None:
    query = {"cuba": 0.8, "bus": 0.6}
    found = [Candidate(n, f"{n}.md", NOW, n, 0.0) for n in ("flights", "crash")]
    vectors = {"flights.md": {"cuba": 0.9, "flight": 0.4}, "crash.md": {"cuba": 0.5, "bus": 0.8}}
    rescored = {c.id: c for c in related.rescore(found, query, vectors)}
    assert rescored["flights"].places_only
    assert not rescored["crash"].places_only
    assert tfidf.carrying(query, vectors["crash.md"], 0.1) == ["bus", "cuba"]


def test_agreeing_counts_the_terms_that_carry_the_cosine() -> None:
    a = {"gdansk": 0.6, "mayor": 0.6, "poland": 0.5}
    b = {"poland": 0.9, "fire": 0.4}
    assert tfidf.agreeing(a, b, 0.1) == 1
    c = {"gdansk": 0.5, "mayor": 0.5, "poland": 0.5}
    assert tfidf.agreeing(a, c, 0.1) == 3
    assert tfidf.agreeing(a, {"fire": 1.0}, 0.1) == 0


# -- the rules on a database -------------------------------------------------------------------


def test_related_are_on_topic_and_never_the_article_itself(store: Store) -> None:
    articles = corpus()
    store.add(*articles)
    for article in articles:
        found = store.related(article)
        assert len(found) == 3
        assert article.id not in found
        assert {topic_of(i) for i in found} == {topic_of(article.id)}


def test_near_duplicates_are_left_out(store: Store) -> None:
    articles = corpus()
    original = articles[0]
    same_title = make("copy-1", original.title, story("volcano", 99)[1])
    same_text = make("copy-2", "Lava reaches the sea", original.body + " reported")
    store.add(*articles, same_title, same_text)
    found = store.related(original, k=5)
    assert len(found) == 5
    assert not {"copy-1", "copy-2"} & set(found)
    # The copies are not refused for being off topic: another article gets them, once.
    others = store.related(articles[1], k=5)
    assert len({"copy-1", "copy-2", original.id} & set(others)) == 1


def test_a_headline_the_store_has_hundreds_of_times_does_not_crowd_out_the_others(
    store: Store,
) -> None:
    """A column's issues share one headline: none of them is offered, other stories are."""
    template = "observatory bulletin tremor plume lava level alert colour summit " * 4
    issues = [
        make(
            f"watch-{n}", "Volcano watch", template + story("volcano", 100 + n)[1], days_ago=n / 10
        )
        for n in range(300)
    ]
    others = corpus()
    store.add(*issues, *others)
    # Without a floor, so that what fills the list shows (the real floor may leave it empty).
    anything = replace(RANKING, floor=0.0, agreeing_terms=0)
    finder = RelatedFinder(store.index.engine, ranking=anything)
    found = [a.id for a in finder.related(issues[0], 3, NOW)]
    assert found  # the other stories, not the issues
    assert all(topic_of(i) == "volcano" and not i.startswith("watch") for i in found)


def test_copies_of_one_story_fill_only_one_place(store: Store) -> None:
    """A dozen copies of one story rank first; one is offered, then other stories."""
    shared = story("volcano", 300, words=200)[1]
    query = make(
        "query", "Lava flows reach the coast", shared[:600] + " " + story("volcano", 301)[1]
    )
    copies = [make(f"copy-{n}", f"Lava update {n}", shared, days_ago=10) for n in range(12)]
    store.add(*corpus(), query, *copies)
    found = store.related(query, k=3)
    assert len(found) >= 2  # what else passes the floor
    assert sum(1 for i in found if i.startswith("copy-")) == 1
    assert all(topic_of(i) in ("volcano", "copy") for i in found)


def test_only_live_articles_with_a_link(store: Store) -> None:
    articles = corpus()
    query = articles[0]

    def fresh(name: str, seed: int, **fields: Any) -> Article:
        """A recent story on the query's topic: it would be picked if it could be."""
        title, body = story("volcano", seed)
        return make(name, title, body, days_ago=fields.pop("days_ago", 0.5), **fields)

    control = fresh("visible", 40)
    hidden = [
        fresh("draft", 41, draft=True),
        fresh("withdrawn", 42, withdrawn=True),
        fresh("scheduled", 43, days_ago=-1),
        fresh("nolink", 44, url=""),
    ]
    store.add(*articles, control, *hidden)
    for k in (3, 10):
        found = store.related(query, k=k)
        assert "visible" in found
        assert not {a.id for a in hidden} & set(found)
    later = store.related(query, k=10, now=NOW + timedelta(days=2))
    assert "scheduled" in later
    assert not {"draft", "withdrawn", "nolink"} & set(later)


@pytest.mark.parametrize("recent", ["half-a", "half-b"])
def test_recent_articles_come_first_at_equal_similarity(store: Store, recent: str) -> None:
    """Two candidates as similar as each other to the query, unlike each other: the date decides.

    Both orders are tried, so neither the path (the tie-break) nor storage order can pass it.
    """
    first = "lavaflow ashcloud magmapool cratersea plumerise"
    second = "fissureline calderarim tremorzone summitvent eruptionday"
    query = make("query", "Island watch", f"{first} {second} " * 3, days_ago=1)
    half_a = make("half-a", "Alphaname report", f"{first} " * 3 + "alphaname betaname gammaname")
    half_b = make("half-b", "Deltaname report", f"{second} " * 3 + "deltaname epsiname zetaname")
    dated = {
        a.id: replace(a, published=NOW - timedelta(days=3 if a.id == recent else 300))
        for a in (half_a, half_b)
    }
    store.add(*corpus(), query, *dated.values())
    assert store.related(query, k=2) == [recent, ({"half-a", "half-b"} - {recent}).pop()]


def test_a_rare_word_of_both_headlines_outweighs_a_common_one(store: Store) -> None:
    # "Ferry" heads nine articles of the store, "Zanzibar" two: at nearly the same
    # similarity of the texts (the other a little ahead), the rare word links.
    ferries = [
        make(f"ferry-{n}", f"Ferry {title.split()[0]} news", body, days_ago=5)
        for n, (title, body) in enumerate(story("railway", 50 + n) for n in range(8))
    ]
    words = [story("vaccine", seed)[1].split() for seed in (90, 91, 92)]
    query = make("q", "Ferry clinic opens in Zanzibar", " ".join(words[0]), days_ago=3)
    rare = make("r", "Zanzibar measles outbreak", " ".join(words[0][:30] + words[1][30:]), 3)
    common = make("c", "Ferry measles outbreak", " ".join(words[0][-36:] + words[2][36:]), 3)
    store.add(*corpus(), *ferries, query, rare, common)
    with store.index.engine.connect() as conn:
        ranked = RelatedFinder(store.index.engine).ranked(conn, query, NOW, 3).candidates
    by_id = {c.id: c for c in ranked}
    assert by_id["c"].similarity > by_id["r"].similarity
    assert by_id["r"].headline > by_id["c"].headline
    assert store.related(query, 2)[0] == "r"


def test_editors_picks_come_first_resolved_and_deduplicated(store: Store) -> None:
    articles = corpus()
    election = next(a for a in articles if a.id == "election-2")
    railway = next(a for a in articles if a.id == "railway-4")
    query = replace(
        articles[0],
        related=(
            election.title.upper() + "!",  # a headline, case and punctuation changed
            railway.id,
            railway.url,  # the same article again, by its link
            "A headline no article has",
            articles[0].title,  # the article itself
        ),
    )
    store.add(*articles[1:], query)
    found = store.related(query, k=4)
    assert found[:2] == ["election-2", "railway-4"]
    assert len(found) == 4
    assert all(topic_of(i) == "volcano" for i in found[2:])
    assert query.id not in found


def test_editors_picks_that_are_not_live_are_dropped(store: Store) -> None:
    articles = corpus()
    gone = make("gone", "Railway tunnel closed", story("railway", 50)[1], withdrawn=True)
    query = replace(articles[0], related=("gone", "Railway tunnel closed", articles[7].id))
    store.add(*articles[1:], gone, query)
    found = store.related(query)
    assert found[0] == articles[7].id
    assert "gone" not in found
    assert len(found) == 3


def test_editors_headlines_with_small_differences_are_found(store: Store) -> None:
    articles = corpus()
    target = make(
        "dorian",
        "Hurricane Dorian strengthens to Category 5, makes landfall in the Bahamas",
        story("volcano", 77)[1],
    )
    query = replace(
        articles[10],
        related=("Hurricane Dorian strengthens to category 5, making landfall in Bahamas",),
    )
    store.add(*articles[:10], *articles[11:], target, query)
    assert store.related(query, k=1) == ["dorian"]


def test_editors_references_resolve_as_a_title_index_over_the_whole_store(store: Store) -> None:
    """The sample store's references (ids, variants of headlines) give what `TitleIndex` gives."""
    files, _ = walk(CONTENT)
    site = Site("http://127.0.0.1:8080/", "articles/{slug}/", ZoneInfo("UTC"))
    parsed = [read(CONTENT, stat, site, 2_000_000) for stat in files]
    articles = [p.article for p in parsed if p.article is not None]
    store.add(*articles)
    whole = TitleIndex(articles)
    finder = RelatedFinder(store.index.engine)
    refs = 0
    with store.index.engine.connect() as conn:
        for article in articles:
            expected = [whole.resolve(ref, exclude=article.id) for ref in article.related]
            refs += len(expected)
            found = [a.id for a in finder.editors(conn, article, NOW)]
            assert found == list(dict.fromkeys(i for i in expected if i is not None))
    assert refs >= 20


def test_adding_then_removing_an_article_restores_the_results(store: Store) -> None:
    articles = corpus()
    store.add(*articles)
    before = {a.id: store.related(a, k=5) for a in articles}
    stats_before = _rows(store, term_stats)
    title, body = story("football", 1)
    newcomer = make("newcomer", title, body + " striker", days_ago=0.5)
    store.add(newcomer)
    assert "newcomer" in store.related(articles[2 * 6], k=5)  # it did change something
    store.remove(newcomer)
    assert {a.id: store.related(a, k=5) for a in articles} == before
    assert _rows(store, term_stats) == stats_before


def test_document_frequencies_count_every_term_of_the_stored_articles(store: Store) -> None:
    articles = corpus()
    store.add(*articles)
    store.remove(*articles[::3])
    kept = [a for i, a in enumerate(articles) if i % 3]
    expected: Counter[str] = Counter()
    for article in kept:
        expected.update(tokens.count(article.title, article.body, "en", WEIGHTING).distinct())
    expected[""] = len(kept)
    assert dict(_rows(store, term_stats)) == dict(expected)
    with store.index.engine.connect() as conn:
        stored_paths = set(conn.execute(select(article_terms.c.path)).scalars())
    assert stored_paths == {a.path for a in kept}


def test_changed_article_is_indexed_by_its_new_text(store: Store) -> None:
    articles = corpus()
    store.add(*articles)
    moved = replace(articles[0], title=articles[13].title, body=articles[13].body + " referee")
    store.remove(articles[0])
    store.add(moved)
    found = store.related(moved, k=3)
    assert {topic_of(i) for i in found} == {"football"}


def test_vectors_have_unit_length_and_keep_every_title_term(store: Store) -> None:
    articles = corpus()
    store.add(*articles)
    with store.index.engine.connect() as conn:
        rows = conn.execute(
            select(article_terms.c.path, article_terms.c.term, article_terms.c.weight)
        ).all()
    by_path: dict[str, dict[str, float]] = {}
    for row in rows:
        by_path.setdefault(row.path, {})[row.term] = row.weight
    for article in articles:
        weights = by_path[article.path]
        assert sum(w * w for w in weights.values()) == pytest.approx(1.0)
        assert set(tokens.words(article.title, "en")) <= set(weights)
        assert len(weights) <= WEIGHTING.max_terms


# -- schema ------------------------------------------------------------------------------------


def test_migration_adds_the_term_index_and_asks_for_a_full_build(database_url: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('fingerprint', 'old')"))
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('generation', '7')"))
    engine.dispose()
    engine = open_database(database_url)
    try:
        tables = inspect(engine).get_table_names()
        assert {"article_terms", "term_stats"} <= set(tables)
        columns = {c["name"] for c in inspect(engine).get_columns("articles")}
        assert {"title_key", "url_key"} <= columns
        with engine.connect() as conn:
            meta = dict(conn.execute(text("SELECT key, value FROM meta")).all())
        assert meta == {"generation": "7"}
    finally:
        engine.dispose()


# -- size --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_query_on_20000_articles_reads_a_bounded_amount(
    store: Store, record_property: Any
) -> None:
    """Statements and Python memory per query do not grow with the store (time is reported)."""
    articles = [
        make(f"{topic}-{n}", *story(topic, n, words=150), days_ago=n / 10)
        for n in range(4_000)
        for topic in TOPICS
    ]
    started = time.perf_counter()
    store.add(*articles)
    build = time.perf_counter() - started
    finder = RelatedFinder(store.index.engine)
    statements = _count_statements(store.index.engine)
    queries = articles[:: len(articles) // 50]
    tracemalloc.start()
    started = time.perf_counter()
    for article in queries:
        found = finder.related(article, 3, NOW)
        assert {topic_of(a.id) for a in found} == {topic_of(article.id)}
    elapsed = (time.perf_counter() - started) / len(queries)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    record_property("store_seconds_per_article", build / len(articles))
    record_property("query_ms", elapsed * 1000)
    print(
        f"\n20,000 articles: stored in {build:.1f} s; a query {elapsed * 1000:.1f} ms, "
        f"peak Python memory {peak / 1e6:.2f} MB, {len(statements) / len(queries):.1f} statements"
    )
    assert len(statements) <= 9 * len(queries)  # one of them the idf of the headlines' terms
    assert peak < 8_000_000


def _count_statements(engine: Engine) -> list[str]:
    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    return statements


def _rows(store: Store, table: Any) -> list[tuple[Any, ...]]:
    with store.index.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(select(*table.c)))
