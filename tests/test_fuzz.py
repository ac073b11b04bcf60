"""Property tests: hostile and random input through every reader and renderer.

Each test draws input from strategies made of what breaks parsers (YAML and
Markdown syntax, HTML that runs script, character references to controls,
bidirectional controls, scraped-page landmarks in odd orders) mixed with
random characters, and sends it the whole way a store file goes: the front
matter or scraped-page reader, the Markdown/HTML path, the three feed formats,
the article page and the status. Whatever the input:

- reading gives an article or a named problem (`ArticleError`, as `Problem`),
  never another exception;
- every feed parses (lxml for RSS and Atom, ``json`` for JSON Feed) and,
  like the page and the status, passes `outputcheck`: no forbidden
  character, no bidirectional control left open, no script or event handler;
- every output path stays inside the output folder.

``HYPOTHESIS_PROFILE=long`` runs many more examples (see ``conftest.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

from newsbot.articles import Article, tag_slug
from newsbot.errors import ArticleError
from newsbot.layout import MEDIA_TYPES, FeedPlace, page_file
from newsbot.publish import compose as posts
from newsbot.render import bodies as html
from newsbot.render import feeds
from newsbot.render.pages import Pages
from newsbot.store import frontmatter
from newsbot.store.fields import FIELDS, Site
from newsbot.store.reader import LeadPlan, Parsed, parse_bytes
from newsbot.store.scan import FileStat
from newsbot.summaries import LEAD_LENGTH, summary_text
from support.outputcheck import balanced, forbidden, html_problems, problems, text_problems
from support.stores import BASE_URL, ID_PREFIX

SITE = Site(BASE_URL, "articles/{slug}/", ZoneInfo("Europe/Paris"))
LEADS = LeadPlan(LEAD_LENGTH, ("en",), datetime.min.replace(tzinfo=UTC))
"""Every article's lead is split as a build splits those a target may post."""
NOW = datetime(2026, 1, 1, tzinfo=UTC)
INFO = feeds.FeedInfo(
    title="Fuzz news",
    description="Property tests",
    home_url=BASE_URL,
    language="en",
    id=ID_PREFIX + "feeds/site",
    urls={fmt: f"{BASE_URL}feed.{fmt}" for fmt in feeds.RENDERERS},
)
EXAMPLES = settings().max_examples
"""Examples per test in the loaded profile; whole-path tests run a share of it."""

# -- strategies ----------------------------------------------------------------------------

CONTROLS = "\x00\x01\x08\x0b\x0c\x1b\x7f\x81\x85\x9f\ufdd0\ufffe\uffff\U0001fffe"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SPECIAL = "\t\n\r &<>\"'`\\/:;#@!|>-*_[]{}()%=?.,~^$+\u00a0\u2028\u2029\ufeff\ufffd"
REFERENCES = ["&#x1b;", "&#27;", "&#x81;", "&#x85;", "&#x9f;", "&#0;", "&#xd800;", "&#xfffe;"]
REFERENCES += ["&#xffff;", "&#x1fffe;", "&#x110000;", "&#x202e;", "&#8238;", "&amp;", "&lt;"]
HOSTILE_HTML = [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>', '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>', '<iframe src="https://evil.example/"></iframe>',
    '<object data="x.swf"></object>', "<style>*{}</style>", '<p style="x" onclick="y">p</p>',
    '<a href="data:text/html,<script>alert(1)</script>">d</a>', "<math><mi>x</mi></math>",
    '<img src="vbscript:msgbox(1)">', "<![CDATA[ x ]]>", "<!-- c -->", "]]>", "<?xml x?>",
    '<form action="javascript:alert(1)"><button formaction="javascript:1">b</button></form>',
    '<p title="', '">', "</p>", "<p>", "<b>", "</div>", "<table><tr><td>c", "<br/>",
]  # fmt: skip
MARKDOWN = [
    "\n\n", "\n", "# ", "## ", "* ", "1. ", "> ", "```\n", "    ", "| a | b |\n|---|---|\n",
    "[link](https://x.org/ 'title')", "[j](javascript:alert(1))", "![i](x.png)", "**", "_",
    "~~", "`", "<https://x.org/>", "www.example.org", "---\n", "***", "\\", "[x]: /u\n",
]  # fmt: skip


def _quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar: every character but printable ASCII escaped."""
    return (
        '"'
        + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\U{ord(c):08x}" for c in text)
        + '"'
    )


CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
NASTY_CHAR = st.one_of(CHARS, st.sampled_from(CONTROLS + BIDI + SPECIAL))
NASTY_TEXT = st.text(NASTY_CHAR, max_size=40)
BODY = st.lists(
    st.one_of(
        NASTY_TEXT,
        st.sampled_from(REFERENCES),
        st.sampled_from(HOSTILE_HTML),
        st.sampled_from(MARKDOWN),
        st.sampled_from(list(BIDI)),
    ),
    max_size=30,
).map("".join)

KEYS = st.one_of(
    st.sampled_from([*FIELDS, "published", "authors", "categories", "cw", "x", "<<"]),
    st.text(NASTY_CHAR, min_size=1, max_size=10),
)
SCALAR = st.one_of(
    NASTY_TEXT.map(_quoted),  # a quoted string: any character, escaped
    st.text(NASTY_CHAR, max_size=30),  # a plain scalar: whatever YAML makes of it
    st.sampled_from(
        ["2015-08-20", "2015-02-30", "20150820", "yes", "no", "~", "null", "42", "-1", "1e400",
         "0x1F", ".inf", "true", "''", '""', "|", ">", "&a", "*a", "&a x", "!!str x",
         "!!python/object/apply:os.system ['true']", "!!binary aGk=", "!!set {a}", "!!omap [a: 1]",
         "https://img.example.org/a.jpg", "../../etc/passwd", "javascript:alert(1)", "x.png",
         f"{BASE_URL}articles/%2e%2e/x/", f"{BASE_URL}a%00b/", f"{BASE_URL}a//b", "[", "{", "]"]
    ),
)  # fmt: skip
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=8,
)
GOOD_START = "title: A headline\ndate: 2015-08-20\n"
FRONT_MATTER = st.tuples(
    st.sampled_from(["", GOOD_START]),
    st.lists(st.tuples(KEYS, VALUE, st.sampled_from([": ", ":", ":\n  ", " : "])), max_size=8),
).map(lambda parts: parts[0] + "".join(f"{k}{sep}{v}\n" for k, v, sep in parts[1]))
TEXT_FIELDS = ["summary", "author", "section", "cw", "related"]
# Valid YAML whose values are hostile text: most of these files give an article,
# so the feeds, the page and the status get to see the text.
WELL_FORMED = st.tuples(
    st.tuples(NASTY_TEXT, st.text(min_size=1, max_size=10)).map(
        lambda t: _quoted(t[0] + "A" + t[1])
    ),
    st.lists(
        st.tuples(
            st.sampled_from(TEXT_FIELDS),
            st.one_of(
                NASTY_TEXT.map(_quoted),
                st.lists(NASTY_TEXT.map(_quoted), max_size=4).map(lambda v: f"[{', '.join(v)}]"),
            ),
        ),
        max_size=6,
        unique_by=lambda pair: pair[0],
    ),
    st.lists(NASTY_TEXT.map(_quoted), max_size=5).map(lambda v: f"[{', '.join(v)}]"),
    st.tuples(NASTY_TEXT.map(_quoted), NASTY_TEXT.map(_quoted)),
).map(
    lambda parts: f"title: {parts[0]}\ndate: 2015-08-20\ntags: {parts[2]}\n"
    f"image: {{url: https://img.example.org/a.jpg, alt: {parts[3][0]}, credit: {parts[3][1]}}}\n"
    + "".join(f"{key}: {value}\n" for key, value in parts[1])
)
MARKDOWN_FILE = st.one_of(
    st.tuples(WELL_FORMED, BODY).map(lambda parts: f"---\n{parts[0]}---\n{parts[1]}"),
    st.tuples(FRONT_MATTER, st.sampled_from(["---\n", "...\n", ""]), BODY).map(
        lambda parts: f"---\n{parts[0]}{parts[1]}{parts[2]}"
    ),
)

LANDMARKS = [
    "Don't miss", "Read more", "Read more »", "À ne pas manquer", "Lire la suite",
    "france 24 Europe", "FRANCE 24 France", "Text by FRANCE 24", "By Jane Doe and John Roe",
    "Texte par Jean", "© Philippe Huguen, AFP | Ministers in Calais", "Latest update : 2015-08-20",
    "Latest update : 20/08/2015 - 14:32", "Dernière modification : 2015-08-20 14h32",
    "Date created : 2015-08-20", "Date created : 2015-02-30", "Date de création : 2015-08-20",
    "(FRANCE 24 with AFP)", "A headline of the page", "A subheading",
    "A paragraph of body text that says what happened.",
]  # fmt: skip
SKELETON = st.tuples(NASTY_TEXT, NASTY_TEXT, st.lists(st.one_of(NASTY_TEXT, BODY), max_size=6)).map(
    lambda parts: "\n\n".join(
        [
            "Don't miss",
            "Other headline",
            "Read more",
            "france 24 Europe",
            parts[0] or "Headline",
            "© Philippe Huguen, AFP | " + parts[1],
            "Text by FRANCE 24",
            "Latest update : 2015-08-20",
            *parts[2],
            "Body text.",
            "Date created : 2015-08-20",
            parts[1] or "Related",
            "Read more",
        ]
    )
)
SHUFFLED = st.lists(
    st.one_of(st.sampled_from(LANDMARKS), NASTY_TEXT, BODY), min_size=1, max_size=25
).flatmap(
    lambda lines: st.lists(
        st.sampled_from(["\n", "\n\n", "\n\n\n"]), min_size=len(lines), max_size=len(lines)
    ).map(lambda seps: "".join(line + sep for line, sep in zip(lines, seps, strict=True)))
)
SCRAPED_FILE = st.one_of(SKELETON, SHUFFLED)

# -- the whole path of one file ------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store folder with one image, so that local image references can resolve."""
    folder = tmp_path_factory.mktemp("fuzz-store")
    (folder / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return folder


def read(root: Path, name: str, text: str | bytes) -> Parsed:
    """``text`` read as the store file ``name``; the reader must not raise."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return parse_bytes(root, FileStat(name, len(data), 0), "digest", data, SITE, leads=LEADS)


def article_texts(article: Article) -> Iterator[tuple[str, str]]:
    """Every text of an article that reaches readers, by field."""
    yield "title", article.title
    yield "summary", article.summary
    yield "section", article.section or ""
    yield "content_warning", article.content_warning or ""
    yield "url", article.url
    yield "id", article.id
    for name, values in (("author", article.authors), ("tags", article.tags)):
        yield from ((name, value) for value in values)
    if article.image is not None:
        yield from (("image", article.image.alt), ("image", article.image.credit))
        yield "image", article.image.url


def assert_inside(out: Path, relative: str) -> None:
    assert "\x00" not in relative, relative
    target = (out / relative).resolve()
    assert target.is_relative_to(out.resolve()), relative


def assert_outputs_are_safe(parsed: Parsed, out: Path) -> None:
    """Feeds, page, status and output paths of a parsed article pass every check."""
    article = parsed.article
    if article is None:
        assert len(parsed.problems) == 1
        return
    assert article.title.strip()
    for field, text in article_texts(article):
        assert not forbidden(text, references=False), (field, text)
        assert balanced(text), (field, text)
    assert html_problems(parsed.html) == []

    entry = feeds.Entry(article, ID_PREFIX + article.id, parsed.html)
    for fmt, render in feeds.RENDERERS.items():
        data = render(INFO, [entry])
        if fmt == "json":
            json.loads(data)
        else:
            etree.fromstring(data)  # well-formed XML, or it raises
        assert problems(f"feed.{'json' if fmt == 'json' else 'xml'}", data) == [], fmt

    page = Pages().article_page(
        article,
        parsed.html,
        summary=summary_text(article, parsed.html),
        site_title="Fuzz news",
        home=BASE_URL,
        language="en",
        feeds={fmt: (INFO.urls[fmt], MEDIA_TYPES[fmt]) for fmt in feeds.RENDERERS},
    )
    assert problems("index.html", page) == []

    name = page_file(BASE_URL, article.url)
    if name is not None:
        assert_inside(out, name)
    for tag in (*article.tags, article.section or ""):
        for fmt in feeds.RENDERERS:
            assert_inside(out, FeedPlace("tag", tag_slug(tag)).file(fmt))

    lead_text = "\n\n".join(html.paragraphs(parsed.html))
    try:
        status = posts.compose(article, lead_text, [], posts.PostPolicy(), 500, 23)
    except posts.ComposeError as exc:  # the link and warning alone are over the limit: named
        assert "exceed" in str(exc)
        return
    assert status.length <= 500
    assert article.url in status.text
    kept = posts.compose(article, lead_text, [], posts.PostPolicy(), 500, 23, leads=parsed.leads)
    assert kept == status  # the leads a build keeps are the ones a post would split
    assert text_problems(status.text, "status") == []
    assert text_problems(status.spoiler_text, "spoiler") == []


# -- readers ---------------------------------------------------------------------------------


@given(FRONT_MATTER)
def test_front_matter_loads_or_names_the_problem(source: str) -> None:
    try:
        fields, lines = frontmatter.load(source, first_line=2)
    except ArticleError as exc:
        assert exc.message.strip()
        assert exc.line is None or 2 <= exc.line <= source.count("\n") + 2
        return
    assert set(lines) <= set(fields)


@settings(max_examples=max(20, EXAMPLES // 2))
@given(MARKDOWN_FILE)
@example("---\ntitle: A\ndate: 2015-08-20\n---\n&#xfffe; &#xffff;")
@example(f"---\ntitle: A\ndate: 2015-08-20\nurl: {BASE_URL}a%00b%0a/\n---\nBody.")
@example("---\ntitle: \u202eA\ndate: 2015-08-20\nsummary: \u2066s\n---\n\u202ebody")
def test_a_markdown_file_gives_an_article_with_safe_outputs_or_a_problem(
    root: Path, text: str
) -> None:
    assert_outputs_are_safe(read(root, "fuzz/a.md", text), root.parent / "public")


@settings(max_examples=max(20, EXAMPLES // 2))
@given(SCRAPED_FILE)
def test_a_scraped_page_gives_an_article_with_safe_outputs_or_a_problem(
    root: Path, text: str
) -> None:
    assert_outputs_are_safe(read(root, "fuzz/page.txt", text), root.parent / "public")


@given(st.binary(max_size=300), st.sampled_from(["a.md", "a.txt"]))
def test_any_bytes_give_an_article_or_a_problem(root: Path, data: bytes, name: str) -> None:
    assert_outputs_are_safe(read(root, name, data), root.parent / "public")


# -- the Markdown/HTML path alone ----------------------------------------------------------


@given(BODY, st.sampled_from([BASE_URL + "articles/a/", "https://other.example/x?y#z"]))
def test_rendered_bodies_carry_no_script_control_or_open_bidi(body: str, base: str) -> None:
    rendered = html.render(body, base)
    assert html_problems(rendered) == []
    assert html.sanitise(rendered, base) == rendered  # nothing left to clean
    for paragraph in html.paragraphs(rendered):
        assert balanced(paragraph)
        assert not forbidden(paragraph, references=False)


# -- the status composer -------------------------------------------------------------------

URL = st.one_of(
    st.from_regex(r"https://[a-z]{1,12}\.(com|org|fr)/[a-z0-9/_.%-]{0,80}", fullmatch=True),
    st.just(BASE_URL + "articles/a/"),
)


@given(
    title=NASTY_TEXT.filter(str.strip),
    summary=NASTY_TEXT,
    lead_text=BODY,
    warning=st.one_of(st.none(), NASTY_TEXT),
    tags=st.lists(NASTY_TEXT, max_size=6),
    related=st.lists(st.builds(posts.RelatedLink, title=NASTY_TEXT, url=URL), max_size=4),
    link=URL,
    limit=st.integers(min_value=1, max_value=800),
    url_length=st.sampled_from([23, 0, None]),
    related_in=st.sampled_from(["post", "reply"]),
)
@example(  # a related headline cut after an opener lost the terminator balancing gave it
    title="0", summary="", lead_text="", warning="0" * 19, tags=[],
    related=[posts.RelatedLink("0", "https://a.com/0"),
             posts.RelatedLink("0" * 7, BASE_URL + "articles/a/"),
             posts.RelatedLink("0" * 11, "https://a.com/0"),
             posts.RelatedLink("0" * 21 + "\u202a\t0", BASE_URL + "articles/a/")],
    link="https://a.com/", limit=178, url_length=23, related_in="reply",
)  # fmt: skip
def test_the_composer_fits_or_names_why_not(
    title: str,
    summary: str,
    lead_text: str,
    warning: str | None,
    tags: list[str],
    related: list[posts.RelatedLink],
    link: str,
    limit: int,
    url_length: int | None,
    related_in: str,
) -> None:
    article = Article(
        id="a",
        path="a.md",
        title=title,
        published=NOW,
        updated=NOW,
        body="",
        url=link,
        summary=summary,
        tags=tuple(tags),
        content_warning=warning,
    )
    policy = posts.PostPolicy(related_in="reply" if related_in == "reply" else "post")
    try:
        status = posts.compose(article, lead_text, related, policy, limit, url_length)
    except posts.ComposeError as exc:
        assert "exceed" in str(exc)
        return
    assert status.length <= limit
    assert link in status.text
    assert balanced(status.text) and balanced(status.spoiler_text)
    if status.reply_text is not None:
        assert balanced(status.reply_text)


def test_a_summary_whose_cut_balancing_lengthens_is_still_fitted() -> None:
    """Balancing closes the controls a cut leaves open, so the cut counts for more than its
    budget; lowering the budget by the overshoot gave the same budget again, for ever (one
    summary hung the pass). Found by the composer's fuzz test above."""
    summary = "\u061c\u2067`<br/>&#xffff;\u061c\u202b" + "x " * 80
    article = Article(
        id="a", path="a.md", title="T", published=NOW, updated=NOW, body="",
        url="https://a.com/x", summary=summary,
    )  # fmt: skip
    status = posts.compose(article, summary, [], posts.PostPolicy(related_in="post"), 150, None)
    assert status.length <= 150
    assert balanced(status.text)
