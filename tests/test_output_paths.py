"""Output paths made from ids, slugs, tags, sections and links stay plain names in the folder.

Stores are real folders built by the real `Builder` on a real SQLite file;
the rules themselves (`id_problem`, `slug_of`, `tag_slug`, `page_path`) are
also checked over generated input with hypothesis.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from newsbot.articles import SEGMENT_BYTES, id_from_path, id_problem, slug_of, tag_slug
from newsbot.build.builder import BuildReport
from newsbot.layout import NAME_MAX, page_path
from newsbot.settings import Settings, SiteSettings, StateSettings
from support.posting import write_article
from support.stores import BASE_URL, make_settings, opened, rss_items

NOW = datetime.now(UTC)
SLUG_SEGMENT = re.compile(r"^(?:[a-z0-9-]+|_)$")


def _build(tmp: Path, articles: dict[str, dict[str, Any]], permalink: str | None = None) -> Run:
    content = tmp / "content"
    for number, (path, fields) in enumerate(articles.items()):
        published = NOW - timedelta(hours=len(articles) - number)
        write_article(content, path, f"Article {path}", published, **fields)
    settings = make_settings(tmp, content)
    if permalink is not None:
        site = SiteSettings(base_url=BASE_URL, permalink=permalink)  # type: ignore[arg-type]
        settings = settings.model_copy(update={"site": site})
    with opened(settings) as app:
        report = app.builder.build(NOW)
    return Run(settings, report)


class Run:
    """A store built once: its settings, its report and what its output holds."""

    def __init__(self, settings: Settings, report: BuildReport) -> None:
        self.settings = settings
        self.report = report
        self.out = settings.feeds.output_dir

    def guids(self) -> list[str]:
        prefix = self.settings.site.id_prefix
        # Item ids are written as URIs: percent-encoded beyond ASCII.
        return sorted(unquote(i.guid.removeprefix(prefix)) for i in rss_items(self.out / "rss.xml"))

    def links(self) -> dict[str, str]:
        prefix = self.settings.site.id_prefix
        return {i.guid.removeprefix(prefix): i.link for i in rss_items(self.out / "rss.xml")}

    def files(self) -> list[str]:
        return sorted(
            p.relative_to(self.out).as_posix() for p in self.out.rglob("*") if p.is_file()
        )

    def problems(self, path: str) -> list[tuple[int | None, str | None, str]]:
        return [(p.line, p.field, p.message) for p in self.report.problems if p.path == path]


# -- ids with "/" ------------------------------------------------------------------------------


def test_an_id_with_slashes_keeps_its_item_id_and_gets_folders_of_slugs(tmp_path: Path) -> None:
    run = _build(tmp_path, {"deal.md": {"id": "world/Europe/calais-deal"}})
    assert run.guids() == ["world/Europe/calais-deal"]  # the item id is what the editor wrote
    link = BASE_URL + "articles/world/europe/calais-deal/"
    assert run.links() == {"world/Europe/calais-deal": link}
    assert "articles/world/europe/calais-deal/index.html" in run.files()
    assert run.report.problems == []


def test_ids_derived_from_paths_keep_their_links(tmp_path: Path) -> None:
    run = _build(tmp_path, {"2015/Calais Deal.md": {}, "2015/08/notre-dame.md": {}})
    assert run.links() == {
        "2015/calais-deal": BASE_URL + "articles/2015/calais-deal/",
        "2015/08/notre-dame": BASE_URL + "articles/2015/08/notre-dame/",
    }
    pages = [f for f in run.files() if f.startswith("articles/")]
    assert pages == [
        "articles/2015/08/notre-dame/index.html",
        "articles/2015/calais-deal/index.html",
    ]


BAD_IDS = [
    ("a/../../../etc", "no '.' or '..'"),
    ("../outside", "no '.' or '..'"),
    ("a/./b", "no '.' or '..'"),
    ("world//calais", "double '/'"),
    ("world/", "trailing"),
    ("/etc/passwd", "leading"),
    ("a\\..\\b", "'\\\\'"),
    ("a%2f..%2fb", "'%'"),
    ("deal?x=1", "'?'"),
    ("deal#top", "'#'"),
    ("x" * 201, "1 to 200 characters"),
]


def test_an_id_that_is_not_names_separated_by_slashes_is_a_named_problem(tmp_path: Path) -> None:
    articles = {f"bad-{n}.md": {"id": bad} for n, (bad, _) in enumerate(BAD_IDS)}
    articles["good.md"] = {}
    run = _build(tmp_path, articles)
    assert run.guids() == ["good"]
    for n, (bad, reason) in enumerate(BAD_IDS):
        [(line, field, message)] = run.problems(f"bad-{n}.md")
        assert (line, field) == (4, "id")
        assert reason in message and repr(bad) in message
    assert [f for f in run.files() if f.startswith("articles/")] == ["articles/good/index.html"]


@pytest.mark.parametrize("permalink", ["articles/{id}/", "{year}/{id}.html", "articles/{slug}"])
def test_permalinks_keep_ids_with_slashes_inside_the_folder(
    tmp_path: Path, permalink: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        ids = {"a.md": {"id": "world/europe/calais-deal"}, "b.md": {"id": "world"}}
        run = _build(tmp_path, ids, permalink=permalink)
    assert run.guids() == ["world", "world/europe/calais-deal"]
    out = run.out.resolve()
    for name in run.files():
        assert (run.out / name).resolve().is_relative_to(out)
    if permalink == "articles/{slug}":  # one page is a file where the other needs a folder
        assert "articles/world/europe/calais-deal" in run.files()
        [record] = caplog.records
        assert record.getMessage().startswith("article page not written: ")
        assert record.path == "b.md"  # type: ignore[attr-defined]
    else:
        assert caplog.records == []
        assert len([f for f in run.files() if "world" in f]) == 2


def test_an_id_too_long_for_a_file_name_gets_no_page_and_a_named_problem(tmp_path: Path) -> None:
    long_id = "é" * 150  # 300 bytes: too long for one file name with {id} in the link
    run = _build(tmp_path, {"a.md": {"id": long_id}, "b.md": {}}, permalink="articles/{id}/")
    assert run.guids() == sorted(["b", long_id])
    [(line, field, message)] = run.problems("a.md")
    assert (line, field) == (4, "id")
    assert f"longer than {NAME_MAX} bytes" in message
    assert [f for f in run.files() if f.startswith("articles/")] == ["articles/b/index.html"]


# -- non-Latin names and Unicode normalisation ------------------------------------------------

NFC_CAFE, NFD_CAFE = "caf\u00e9", "cafe\u0301"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Calais deal.md", "calais-deal"),
        ("2015/Calais Deal.md", "2015/calais-deal"),
        ("Café.md", "cafe"),
        (NFD_CAFE + ".md", "cafe"),  # a macOS file name folds as before
        ("Ünïcode/Crème brûlée.md", "unicode/creme-brulee"),
        ("½ price.md", "12-price"),
    ],
)
def test_names_that_fold_to_ascii_keep_their_ids(path: str, expected: str) -> None:
    """An id that changed would make its article new again: posted a second time."""
    assert id_from_path(path) == expected


def test_non_latin_file_names_keep_ids_pages_and_items_of_their_own(tmp_path: Path) -> None:
    names = ["北京", "上海", "2020-北京", "2020-上海", "Москва", "Straße"]
    run = _build(tmp_path, {f"{name}.md": {} for name in names} | {"Calais deal.md": {}})
    ids = ["北京", "上海", "2020-北京", "2020-上海", "москва", "straße", "calais-deal"]
    assert run.guids() == sorted(ids)
    assert run.report.problems == []
    pages = [f for f in run.files() if f.startswith("articles/")]
    assert pages == sorted(f"articles/{i}/index.html" for i in ids)
    links = {unquote(link) for link in run.links().values()}
    assert links == {f"{BASE_URL}articles/{i}/" for i in ids}


def test_non_latin_ids_in_front_matter_get_pages_of_their_own(tmp_path: Path) -> None:
    run = _build(tmp_path, {"a.md": {"id": "news/北京"}, "b.md": {"id": "news/上海"}})
    assert run.guids() == ["news/上海", "news/北京"]
    pages = [f for f in run.files() if f.startswith("articles/")]
    assert pages == ["articles/news/上海/index.html", "articles/news/北京/index.html"]
    assert len({slug_of(i) for i in ("北京", "上海", "2020-北京", "2020-上海")}) == 4


def test_ids_that_differ_only_in_normalisation_are_one_id_used_twice(tmp_path: Path) -> None:
    """The feeds give both one item id (Atom's canonical form is NFC): the second is refused,
    naming the file that has it."""
    run = _build(tmp_path, {"a.md": {"id": NFC_CAFE}, "b.md": {"id": NFD_CAFE}})
    assert run.guids() == [NFC_CAFE]
    [(_, field, message)] = run.problems("b.md")
    assert field == "id" and "already used by a.md" in message


@pytest.mark.parametrize(
    ("articles", "field", "page"),
    [
        ({"a.md": {"id": "Cafe"}, "b.md": {"id": "cafe"}}, "id", "cafe"),
        ({"a.md": {"id": "calais_deal"}, "calais-deal.md": {}}, "id", "calais-deal"),
        (
            {"a.md": {"id": "cafe"}, "b.md": {"url": BASE_URL + "articles/cafe/index.html"}},
            "url",
            "cafe",
        ),
        (
            {"a.md": {"id": "cafe"}, "b.md": {"url": BASE_URL + "articles/caf%65/#top"}},
            "url",
            "cafe",
        ),
    ],
)
def test_two_ids_with_one_page_leave_out_the_second(
    tmp_path: Path, articles: dict[str, dict[str, Any]], field: str, page: str
) -> None:
    """One page cannot hold two articles: the second would overwrite the first, and both
    items and posts would link to it. The file stored first keeps it, as with an id."""
    run = _build(tmp_path, articles)
    owner_id, other = articles["a.md"]["id"], list(articles)[1]
    assert run.links() == {owner_id: f"{BASE_URL}articles/{page}/"}
    [(_, problem_field, message)] = run.problems(other)
    assert problem_field == field
    assert message.startswith("its page https://") and message.endswith(
        " is already that of a.md; left out"
    )
    pages = [f for f in run.files() if f.startswith("articles/")]
    assert pages == [f"articles/{page}/index.html"]
    assert "Article a.md" in (run.out / pages[0]).read_text(encoding="utf-8")


def test_a_page_changes_hands_when_its_owner_goes(tmp_path: Path, database_url: str) -> None:
    """On either database: the second file keeps out, then takes the page over."""
    content = tmp_path / "content"
    write_article(content, "a.md", "First", NOW - timedelta(hours=2), id="Cafe")
    write_article(content, "b.md", "Second", NOW - timedelta(hours=1), id="cafe")
    settings = make_settings(tmp_path, content)
    state = StateSettings(data_dir=tmp_path / "data", database_url=database_url)
    settings = settings.model_copy(update={"state": state})
    page = settings.feeds.output_dir / "articles/cafe/index.html"
    with opened(settings) as app:
        report = app.builder.build(NOW)
        assert [(p.path, p.field) for p in report.problems] == [("b.md", "id")]
        assert "First" in page.read_text(encoding="utf-8")
        (content / "a.md").unlink()
        assert app.builder.build(NOW).problems == []
        assert "Second" in page.read_text(encoding="utf-8")


def test_an_id_with_a_replacement_character_keeps_its_own_item_id(tmp_path: Path) -> None:
    # Both ids make the page articles/ab/: b.md links elsewhere, so that both are published.
    elsewhere = {"id": "ab", "url": "https://elsewhere.example/ab"}
    run = _build(tmp_path, {"a.md": {"id": "a\ufffdb"}, "b.md": elsewhere})
    assert run.guids() == sorted(["a\ufffdb", "ab"])


# -- links that point into the site ------------------------------------------------------------

BAD_LINKS = {
    "home.md": (BASE_URL, "site's index"),
    "index.md": (BASE_URL + "index.html", "site's index"),
    "feed.md": (BASE_URL + "rss.xml", "a feed"),
    "tag-feed.md": (BASE_URL + "tags/calais/atom.xml", "a feed"),
    "tag-page.md": (BASE_URL + "tags/calais/", "a feed"),
    "media.md": (BASE_URL + "media/calais.jpg", "an image"),
    "nul.md": (BASE_URL + "articles/a%00b/", "control character"),
    "long.md": (BASE_URL + "articles/" + "y" * 300 + "/", "longer than 255 bytes"),
    "climb.md": (BASE_URL + "articles/a%2f..%2f..%2f/", "'..'"),
    "hidden.md": (BASE_URL + "articles/.x/", "hidden"),
}


def test_a_link_where_no_page_can_go_is_published_without_a_page(tmp_path: Path) -> None:
    articles: dict[str, dict[str, Any]] = {
        path: {"url": url, "tags": ["Calais"]} for path, (url, _) in BAD_LINKS.items()
    }
    articles["good.md"] = {"tags": ["Calais"]}
    run = _build(tmp_path, articles)

    assert run.guids() == sorted(p.removesuffix(".md") for p in articles)
    for path, (_, reason) in BAD_LINKS.items():
        [(line, field, message)] = run.problems(path)
        assert (line, field) == (4, "url")
        assert message.startswith("no page is written: ") and reason in message
    # The feeds and list pages are still what the build makes of them.
    assert b"<rss" in (run.out / "rss.xml").read_bytes()
    assert b"<rss" in (run.out / "tags" / "calais" / "rss.xml").read_bytes()
    assert b"<feed" in (run.out / "tags" / "calais" / "atom.xml").read_bytes()
    for index in ("index.html", "tags/calais/index.html"):
        assert b"Article good.md" in (run.out / index).read_bytes()
    assert [f for f in run.files() if f.startswith("articles/")] == ["articles/good/index.html"]
    assert not (run.out / "media").exists()


# -- tags and sections -------------------------------------------------------------------------


def test_long_tags_and_sections_get_feeds_of_their_own(tmp_path: Path) -> None:
    tag_a, tag_b = "Calais " * 60 + "A", "Calais " * 60 + "B"
    section = "Европа" * 40  # 480 bytes
    run = _build(
        tmp_path, {"a.md": {"tags": [tag_a], "section": section}, "b.md": {"tags": [tag_b]}}
    )
    assert run.guids() == ["a", "b"]
    tag_feeds = sorted(f for f in run.files() if f.startswith("tags/") and f.endswith("rss.xml"))
    assert len(tag_feeds) == 2
    assert [f for f in run.files() if f.startswith("sections/") and f.endswith("rss.xml")]
    for name in run.files():
        assert all(len(part.encode()) <= NAME_MAX for part in name.split("/"))


@pytest.mark.parametrize("tag", ["..", ".", "../../etc", "a/b", "a\\b", "%2e%2e", "\u2024\u2024"])
def test_a_tag_is_one_plain_folder_name(tag: str) -> None:
    slug = tag_slug(tag)
    assert "/" not in slug and "\\" not in slug
    assert slug not in (".", "..") and not slug.startswith(".")


# -- the rules over generated input ------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)
_PATHY = st.lists(st.sampled_from(["a", "Ünï", "..", ".", "", "%2e", "\\", "x y", "?", "é" * 130]),
                  max_size=6).map("/".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(_TEXT, _PATHY))
def test_an_accepted_id_gives_a_slug_of_plain_segments(article_id: str) -> None:
    if id_problem(article_id) is None:
        for segment in slug_of(article_id).split("/"):
            assert SLUG_SEGMENT.match(segment) or _letters_and_digits(segment), segment
            assert len(segment) <= 80 and len(segment.encode()) <= SEGMENT_BYTES
        assert page_path(BASE_URL, f"{BASE_URL}articles/{slug_of(article_id)}/")


def _letters_and_digits(segment: str) -> bool:
    """Letters, marks and digits joined by single dashes, one of them beyond ASCII."""
    words = segment.split("-")
    return not segment.isascii() and all(
        word and all(unicodedata.category(c)[0] in "LMN" for c in word) for word in words
    )


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_a_tag_slug_is_always_one_name_that_fits(tag: str) -> None:
    slug = tag_slug(tag)
    assert slug and "/" not in slug and "\\" not in slug and "\x00" not in slug
    assert slug not in (".", "..") and not slug.startswith(".")
    assert len(slug.encode()) <= NAME_MAX


@settings(max_examples=300, deadline=None)
@given(st.one_of(_PATHY, _TEXT, st.lists(st.sampled_from(["%2e", "%2f", "%00", "%5c", "a/", ".."]))
                 .map("".join)))  # fmt: skip
def test_a_page_path_is_plain_names_or_refused(rest: str) -> None:
    try:
        rel = page_path(BASE_URL, BASE_URL + rest)
    except ValueError:
        return
    assert rel is not None
    for part in rel.split("/"):
        assert part and part not in (".", "..") and not part.startswith(".")
        assert "\\" not in part and "\x00" not in part
        assert len(part.encode()) <= NAME_MAX


@pytest.mark.parametrize(
    "permalink",
    ["../{slug}/", "articles/../../{slug}/", "./{slug}/", "articles//{slug}/", "a\\{slug}/"],
)
def test_a_permalink_with_dot_or_empty_segments_is_a_bad_setting(permalink: str) -> None:
    with pytest.raises(ValidationError, match="permalink"):
        SiteSettings(permalink=permalink)
