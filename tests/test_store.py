"""The store full of broken files: each one reported exactly, the good articles unharmed.

The store is written by ``tests/fixtures/make_broken.py`` into a temporary
folder, built once with the real `Builder` on a real SQLite file and checked
with `check_store`; the command line is run on it through click's runner.
Line numbers below count the lines of the texts in ``make_broken``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from click.testing import CliRunner
from lxml import etree

from fixtures.make_broken import (
    GOOD,
    GOOD_IDS,
    LRI,
    MAX_FILE_BYTES,
    OUTSIDE_MARKER,
    PDF,
    PDI,
    RLO,
    Store,
    alias_bomb,
    deep_nesting,
    make_store,
)
from newsbot.build.builder import BuildReport
from newsbot.build.check import check_store
from newsbot.cli import main
from newsbot.errors import ArticleError, Problem
from newsbot.settings import Settings
from newsbot.store import frontmatter
from newsbot.store.fields import Site
from newsbot.store.reader import Parsed, read
from newsbot.store.scan import FileStat, walk
from support.outputcheck import tree_problems
from support.stores import (
    BASE_URL,
    ESCAPED_FORBIDDEN,
    FORBIDDEN,
    ID_PREFIX,
    make_settings,
    opened,
    rss_items,
    settings_env,
    without_newsbot_environment,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Expect:
    """A problem the store must report: where, and a fragment of what."""

    path: str
    line: int | None
    field: str | None
    fragment: str
    build: bool = True  # False: only `check` sees it (it needs the whole store)

    def matches(self, problem: Problem) -> bool:
        return (problem.path, problem.line, problem.field) == (
            self.path,
            self.line,
            self.field,
        ) and self.fragment in problem.message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.field}"


CONTROL = "control characters removed"
BIDI = "bidirectional controls left open closed"
EXPECTED = [
    Expect("invalid-yaml.md", 4, "date", "invalid YAML: mapping values are not allowed"),
    Expect("unclosed.md", 1, None, "front matter is not closed"),
    Expect("no-front-matter.md", 1, None, "no front matter"),
    Expect("missing-title.md", None, "title", "is required"),
    Expect("title-number.md", 2, "title", "must be text, got a number"),
    Expect("title-list.md", 2, "title", "must be text, got a list"),
    Expect("title-empty.md", 2, "title", "must not be empty"),
    Expect("date-feb-30.md", 3, "date", "impossible date '2015-02-30'"),
    Expect("date-month-13.md", 3, "date", "impossible date '2015-13-01'"),
    Expect("date-yesterday.md", 3, "date", "cannot read 'yesterday' as a date"),
    Expect("date-number.md", 3, "date", "must be a date, got a number"),
    Expect("binary.md", None, None, "binary file"),
    Expect("latin1.md", 2, None, "not UTF-8: byte 0xe9"),
    Expect("caf\ufffd.md", None, None, "name is not UTF-8"),
    Expect("empty.md", None, None, "the file is empty"),
    Expect("whitespace.md", None, None, "the file is empty"),
    Expect("huge.md", None, None, f"over the {MAX_FILE_BYTES:,} limit"),
    Expect("python-tag.md", 4, "x", "could not determine a constructor"),
    Expect("alias-bomb.md", 2, None, "too large once aliases are expanded"),
    Expect("deep-nesting.md", 4, "x", "nesting depth"),
    Expect("dup-b.md", None, "id", "'shared-id' is already used by dup-a.md"),
    Expect("dup-page.md", None, "id", "/articles/shared-id/ is already that of dup-a.md"),
    Expect("outside-link.md", None, None, "symbolic link pointing outside the store"),
    Expect("2015/up", None, None, "symbolic link to a folder already read"),
    Expect("again", None, None, "symbolic link to a folder already read"),
    Expect("control-raw-title.md", 2, "title", "character U+001B is not allowed"),
    Expect("control-raw-tags.md", 6, "tags", "character U+001B is not allowed"),
    Expect("control-escaped.md", 2, "title", CONTROL),
    Expect("control-escaped.md", 4, "summary", CONTROL),
    Expect("control-escaped.md", 5, "author", CONTROL),
    Expect("control-escaped.md", 6, "section", CONTROL),
    Expect("control-escaped.md", 7, "tags", CONTROL),
    Expect("control-escaped.md", 8, "image", CONTROL),
    Expect("control-escaped.md", 9, "content_warning", CONTROL),
    Expect("control-escaped.md", 13, "body", "control characters removed from the body"),
    Expect("bad-lang.md", 4, "lang", "must be a language tag like 'en' or 'pt-BR', got 'english"),
    Expect("made-up-lang.md", 4, "lang", "'xx' is no language of the ISO 639 registry"),
    Expect("relative-url.md", 4, "url", "must be an absolute http(s) URL"),
    Expect("bad-idn-url.md", 4, "url", "host 'b\u00fccher..example' is not a valid"),
    Expect("bad-idn-image.md", 4, "image", f"host '{'a' * 60}b\u00fccher.example' is not a valid"),
    Expect("bad-image.md", 4, "image", "unknown key(s) size"),
    Expect("related-nothing.md", None, "related", "matches no article", build=False),
    Expect("tags-mapping.md", 4, "tags", "must be text or a list of text, got a mapping"),
    Expect(
        "tags-odd-items.md", 4, "tags", "item(s) 2 (true/false), 3 (a list), 5 (a mapping) not text"
    ),
    Expect("dup-title.md", 4, "title", "given twice, on lines 2 and 4; keep one"),
    Expect("dup-nested.md", 7, "image", "key 'url' given twice, on lines 5 and 7"),
    Expect("dup-alias.md", 4, "date", "given twice, as 'date' (line 3) and 'published' (line 4)"),
    Expect("bidi.md", 2, "title", BIDI),
    Expect("bidi.md", 4, "summary", BIDI),
    Expect("bidi.md", 5, "tags", BIDI),
    Expect("bidi.md", 6, "author", BIDI),
    Expect("bidi.md", 9, "body", BIDI),
    Expect("scraped-no-body.txt", 9, "body", "no body text found"),
    Expect("draft-yes.md", 4, "draft", "must be true or false, got text"),
    Expect("scraped-no-headline.txt", 7, "title", "no headline"),
]


def _where(problem: Problem | Expect) -> tuple[str, int | None, str | None]:
    return (problem.path, problem.line, problem.field)


@dataclass(frozen=True)
class Run:
    """The broken store, built once and checked once."""

    store: Store
    settings: Settings
    report: BuildReport
    checked: list[Problem]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("broken")
    store = make_store(tmp / "content")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            without_newsbot_environment(monkeypatch)  # module scope: before the autouse one
            settings = make_settings(tmp, store.root, max_file_bytes=MAX_FILE_BYTES)
            with opened(settings) as app:
                report = app.builder.build(NOW)
                checked = check_store(settings, app.index)
            yield Run(store, settings, report, checked)
    finally:
        store.pwned.unlink(missing_ok=True)


# -- every problem, exactly ---------------------------------------------------------------


@pytest.mark.parametrize("expected", EXPECTED, ids=str)
def test_check_reports_the_problem_of_each_broken_file(run: Run, expected: Expect) -> None:
    of_file = [p for p in run.checked if p.path == expected.path]
    assert any(expected.matches(p) for p in of_file), of_file


@pytest.mark.parametrize("expected", [e for e in EXPECTED if e.build], ids=str)
def test_build_reports_the_problem_of_each_broken_file(run: Run, expected: Expect) -> None:
    of_file = [p for p in run.report.problems if p.path == expected.path]
    assert any(expected.matches(p) for p in of_file), of_file


def test_check_reports_nothing_else(run: Run) -> None:
    assert sorted(map(_where, run.checked), key=str) == sorted(map(_where, EXPECTED), key=str)


def test_build_reports_nothing_else(run: Run) -> None:
    wanted = [e for e in EXPECTED if e.build]
    assert sorted(map(_where, run.report.problems), key=str) == sorted(map(_where, wanted), key=str)


# -- the good articles come through, and nothing bad does ---------------------------------


def test_every_good_article_is_in_the_feed(run: Run) -> None:
    items = rss_items(run.settings.feeds.output_dir / "rss.xml")
    assert sorted(item.guid for item in items) == sorted(ID_PREFIX + i for i in GOOD_IDS)
    titles = {item.guid: item.title for item in items}
    assert titles[ID_PREFIX + "shared-id"] == "First article using the shared id"
    assert " ".join(titles[ID_PREFIX + "control-escaped"].split()) == "Control characters"


def test_an_article_in_a_language_feeds_cannot_carry_is_in_the_sites(run: Run) -> None:
    """The feed validator refuses a made-up language (``xx``) as it refuses a malformed
    one: the article is kept, in the site's language, and the problem says so."""
    feed = json.loads((run.settings.feeds.output_dir / "feed.json").read_text(encoding="utf-8"))
    languages = {item["id"]: item.get("language") for item in feed["items"]}
    assert languages[ID_PREFIX + "made-up-lang"] is None  # the feed's own: the site's
    assert languages[ID_PREFIX + "bad-lang"] is None
    assert feed["language"] == run.settings.site.language
    [problem] = [p for p in run.report.problems if p.path == "made-up-lang.md"]
    assert problem.message.endswith("got 'xx-GB'; the site's language is used")


def test_every_good_article_has_its_page(run: Run) -> None:
    out = run.settings.feeds.output_dir
    pages = sorted(p.parent.name for p in (out / "articles").glob("*/index.html"))
    assert pages == sorted(GOOD_IDS)


def test_no_control_character_reaches_any_output_file(run: Run) -> None:
    files = [p for p in run.settings.feeds.output_dir.rglob("*") if p.is_file()]
    assert len(files) > 10
    dirty = {
        str(path): FORBIDDEN.findall(data) + ESCAPED_FORBIDDEN.findall(data)
        for path in files
        if FORBIDDEN.search(data := path.read_bytes()) or ESCAPED_FORBIDDEN.search(data)
    }
    assert dirty == {}


def test_the_file_behind_an_outside_link_is_never_read(run: Run) -> None:
    files = [p for p in run.settings.feeds.output_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if OUTSIDE_MARKER.encode() in p.read_bytes()]
    with opened(run.settings) as app:
        assert not [a for a in app.index.articles() if OUTSIDE_MARKER in a.title]


def test_yaml_tags_never_run_code(run: Run) -> None:
    assert "touch" in (run.store.root / "python-tag.md").read_text()
    assert not run.store.pwned.exists()


# -- hostile YAML, read alone -------------------------------------------------------------

DANGEROUS_TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/new:os.system ["touch {marker}"]',
    "!!python/name:os.system",
    "!!python/module:os",
    '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
]


@pytest.mark.parametrize("tag", DANGEROUS_TAGS)
def test_python_tags_are_refused_not_constructed(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "PWNED"
    with pytest.raises(ArticleError, match="could not determine a constructor") as caught:
        frontmatter.load("title: T\nx: " + tag.format(marker=marker), first_line=2)
    assert caught.value.line == 3
    assert not marker.exists()


REPEATED_KEYS = [
    # (front matter, line, field, message)
    ("title: A\ndate: 2015-08-20\ntitle: B", 4, "title", "given twice, on lines 2 and 4"),
    ('title: A\n"title": B', 3, "title", "given twice, on lines 2 and 3"),
    ("title: A\nimage: {url: a.jpg, url: b.jpg}", 3, "image", "key 'url' given twice, on line 3"),
    ("title: A\nx:\n  - {a: 1}\n  - b: 1\n    b: 2", 6, "x", "key 'b' given twice, on lines 5 and"),
    ("title: A\nx: {0: a, 00: b}", 3, "x", "key '00' given twice"),  # both the number 0
]


@pytest.mark.parametrize(("source", "line", "field", "message"), REPEATED_KEYS)
def test_a_key_given_twice_is_refused_naming_both_lines(
    source: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(ArticleError) as caught:
        frontmatter.load(source, first_line=2)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert message in caught.value.message


def test_a_key_that_overrides_a_merged_one_is_not_a_repeat() -> None:
    source = "base: &b {alt: x, credit: y}\nimage:\n  <<: *b\n  alt: z\n  url: a.jpg"
    fields, _ = frontmatter.load(source)
    assert fields["image"] == {"alt": "z", "credit": "y", "url": "a.jpg"}


YAML_ERRORS = [
    # (front matter, line, field, message): the field is the entry the error is in
    ("title: A\ntags: [a, b\ndate: 2015-08-20", 4, "tags", "expected ',' or ']'"),
    # U+2028 breaks a line for YAML, not in the file: the line is the file's
    ('title: "A\u2028B"\ntags: [a, b\ndate: 2015-08-20', 4, "tags", "expected ',' or ']'"),
    ("title: A\nsummary: a\x07b", 3, "summary", "character U+0007 is not allowed"),
    ("title: A\nimage:\n  url: a\n  alt: \x1b", 5, "image", "character U+001B"),
    ("title: A\nx: !!python/name:os.system", 3, "x", "could not determine a constructor"),
    ("title: A\nx: *nowhere", 3, "x", "found undefined alias"),
    ("\x01: A", 2, None, "character U+0001"),
]


@pytest.mark.parametrize(("source", "line", "field", "message"), YAML_ERRORS)
def test_a_yaml_error_names_the_field_it_is_in(
    source: str, line: int, field: str | None, message: str
) -> None:
    with pytest.raises(ArticleError) as caught:
        frontmatter.load(source, first_line=2)
    assert (caught.value.line, caught.value.field) == (line, field)
    assert message in caught.value.message


def _read_alone(tmp_path: Path, text: str) -> Problem:
    path = tmp_path / "hostile.md"
    path.write_text(text, encoding="utf-8")
    site = Site(
        BASE_URL, "articles/{slug}/", make_settings(tmp_path, tmp_path / "content").site.zone
    )
    info = path.stat()
    parsed = read(tmp_path, FileStat("hostile.md", info.st_size, info.st_mtime_ns), site, 10**8)
    assert parsed.article is None
    [problem] = parsed.problems
    return problem


@pytest.mark.timeout(20)
@pytest.mark.parametrize("levels", [9, 30])
def test_an_alias_bomb_is_refused_quickly(tmp_path: Path, levels: int) -> None:
    problem = _read_alone(tmp_path, alias_bomb(levels=levels))
    assert "too large once aliases are expanded" in problem.message
    assert problem.line == 2


@pytest.mark.timeout(20)
@pytest.mark.parametrize("levels", [10_000, 1_000_000])
def test_deep_nesting_is_refused_quickly(tmp_path: Path, levels: int) -> None:
    problem = _read_alone(tmp_path, deep_nesting(levels))
    assert "nest" in problem.message
    assert problem.line == 4


# -- the command line ---------------------------------------------------------------------


def _shown(expected: Expect) -> str:
    """How ``newsbot check`` starts the line of a problem: ``path:line: field: ``."""
    where = expected.path if expected.line is None else f"{expected.path}:{expected.line}"
    warning = "warning: " if expected.field == "related" else ""
    return f"{where}: {warning}" + (f"{expected.field}: " if expected.field else "")


@pytest.mark.parametrize("indexed", [True, False], ids=["after-build", "cold"])
def test_check_command_lists_every_problem_and_exits_1(
    run: Run, tmp_path: Path, indexed: bool
) -> None:
    env = settings_env(run.settings)
    if not indexed:  # a state database of its own: every file is read by the check
        env["NEWSBOT_STATE__DATA_DIR"] = str(tmp_path / "data")
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPECTED)
    for expected in EXPECTED:
        assert any(
            line.startswith(_shown(expected)) and expected.fragment in line for line in lines
        ), expected
    warnings = sum(1 for e in EXPECTED if e.field == "related")
    assert f"{len(EXPECTED) - warnings} error(s), {warnings} warning(s)" in result.stderr
    assert not run.store.pwned.exists()


def test_check_command_json_gives_path_line_and_field(run: Run) -> None:
    result = CliRunner().invoke(main, ["check", "--json"], env=settings_env(run.settings))
    assert result.exit_code == 1, result.output
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(((f["path"], f["line"], f["field"]) for f in found), key=str) == sorted(
        map(_where, EXPECTED), key=str
    )
    assert all(set(f) == {"path", "line", "field", "message", "severity"} for f in found)
    assert {f["severity"] for f in found if f["field"] == "related"} == {"warning"}
    assert {f["severity"] for f in found if f["field"] != "related"} == {"error"}


def test_check_command_exits_0_on_a_clean_store(tmp_path: Path) -> None:
    content = tmp_path / "content"
    for rel in ("2015/good-calais.md", "2016/good-budget.md", "good-page.txt"):
        (content / rel).parent.mkdir(parents=True, exist_ok=True)
        (content / rel).write_text(GOOD[rel], encoding="utf-8")
    settings = make_settings(tmp_path, content)
    result = CliRunner().invoke(main, ["check"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "0 error(s), 0 warning(s)" in result.stderr


def test_check_warns_of_unresolved_related_headlines_and_fails_only_when_strict(
    tmp_path: Path,
) -> None:
    """The sample store: the seed's three related headlines match nothing (correctly)."""
    sample = Path(__file__).resolve().parents[1] / "content"
    settings = make_settings(tmp_path, sample)
    result = CliRunner().invoke(main, ["check"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(": warning: related: " in line and "matches no article" in line for line in lines)
    assert "0 error(s), 3 warning(s)" in result.stderr
    strict = CliRunner().invoke(main, ["check", "--strict"], env=settings_env(settings))
    assert strict.exit_code == 1
    assert strict.stdout == result.stdout


def test_no_output_file_carries_controls_open_bidi_or_script(run: Run) -> None:
    out = run.settings.feeds.output_dir
    assert len(list(out.rglob("*.html"))) >= len(GOOD_IDS)
    assert tree_problems(out) == {}


def test_bidirectional_controls_are_closed_where_they_were_left_open(run: Run) -> None:
    items = {item.guid: item for item in rss_items(run.settings.feeds.output_dir / "rss.xml")}
    assert items[ID_PREFIX + "bidi"].title == f"Override {RLO}left open in the title{PDF}"
    page = (run.settings.feeds.output_dir / "articles/bidi/index.html").read_text()
    assert f"<h1>Override {RLO}left open in the title{PDF}</h1>" in page
    assert f"<p>A paragraph {RLO}with an override left open.{PDF}</p>" in page
    assert f"<p>A closed {LRI}isolate{PDI} and a stray  terminator.</p>" in page
    assert f"<li>an item {LRI}open{PDI}</li>" in page
    assert f"<li>an item with {RLO}a reference{PDF}</li>" in page
    assert f'<p title="an {RLO}attribute{PDF}">Raw HTML {RLO}open{PDF}</p>' in page


def test_character_references_to_controls_leave_the_rest_of_the_text(run: Run) -> None:
    page = (run.settings.feeds.output_dir / "articles/control-references/index.html").read_text()
    body = lxml.html.document_fromstring(page).find(".//article")
    assert body is not None
    paragraphs = [" ".join(p.text_content().split()) for p in body.iter("p")][2:]
    # NUL, surrogates and numbers past U+10FFFF read as U+FFFD (CommonMark and HTML
    # agree); HTML reads &#x9f; as windows-1252's Ÿ; the rest is removed.
    assert paragraphs == [
        "Markdown text \ufffd \ufffd \ufffd \ufffd end.",
        "Raw HTML Ÿ \ufffd \ufffd \ufffd \ufffd end.",
        "link",
    ]


def test_numbers_in_text_lists_are_text(run: Run) -> None:
    root = etree.parse(str(run.settings.feeds.output_dir / "rss.xml")).getroot()
    item = next(i for i in root.iter("item") if i.findtext("guid") == ID_PREFIX + "tags-mixed")
    assert [c.text for c in item.iter("category")] == ["Calais", "42"]
    creators = [c.text for c in item.iter("{http://purl.org/dc/elements/1.1/}creator")]
    assert creators == ["Jane Doe", "7"]
    odd = next(i for i in root.iter("item") if i.findtext("guid") == ID_PREFIX + "tags-odd-items")
    assert [c.text for c in odd.iter("category")] == ["Calais", "Migration"]


# -- a file swapped between the walk and the read --------------------------------------------


def _swap_for_link(page: Path, outside: Path) -> None:
    page.unlink()
    page.symlink_to(outside)


def _swap_for_fifo(page: Path, outside: Path) -> None:
    page.unlink()
    os.mkfifo(page)


@pytest.mark.parametrize(
    ("swap", "words"),
    [(_swap_for_link, "leading out of the store"), (_swap_for_fifo, "not a regular file")],
    ids=["outside-link", "fifo"],
)
def test_a_file_swapped_after_the_walk_is_checked_again_when_read(
    tmp_path: Path, swap: Callable[[Path, Path], None], words: str
) -> None:
    """The walk refuses links leading out of the store, but a file can become one before it
    is read (a build reads long after its walk, in other processes): the read checks again,
    as every read of an image does, and never waits on a FIFO."""
    store = tmp_path / "content"
    store.mkdir()
    (store / "page.txt").write_text(GOOD["good-page.txt"], encoding="utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_text(GOOD["good-page.txt"].replace("Good", OUTSIDE_MARKER), encoding="utf-8")
    site = Site(BASE_URL, "articles/{slug}/", ZoneInfo("UTC"))
    files, _ = walk(store)
    assert [stat.path for stat in files] == ["page.txt"]
    swap(store / "page.txt", outside)
    result: list[Parsed] = []
    reading = threading.Thread(
        target=lambda: result.append(read(store, files[0], site, MAX_FILE_BYTES)), daemon=True
    )
    reading.start()
    reading.join(timeout=10)
    assert result, "the read is blocked"
    [parsed] = result
    assert parsed.article is None
    assert OUTSIDE_MARKER not in repr(parsed)
    [problem] = parsed.problems
    assert problem.path == "page.txt" and words in problem.message


def test_check_warns_once_of_a_related_headline_a_page_repeats(tmp_path: Path) -> None:
    """A page listing the same unresolved headline twice (in its body and after it) is one
    reference: one warning, as for the seed's headlines."""
    content = tmp_path / "content"
    content.mkdir()
    (content / "page.txt").write_text(
        "A headline\n\nText by FRANCE 24\n\nLatest update : 2015-08-20\n\n"
        "A paragraph.\n\n    Nowhere to be found\n\n    Read more\n\nA closing paragraph.\n\n"
        "Date created : 2015-08-20\n\n    Nowhere to be found\n\n    Read more\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path, content)
    result = CliRunner().invoke(main, ["check"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("'Nowhere to be found' matches no article") == 1, result.stdout
    assert "0 error(s), 1 warning(s)" in result.stderr
