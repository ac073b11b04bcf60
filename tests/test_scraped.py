"""The scraped news page reader, and the Markdown writer `newsbot import` uses, on real page files.

The fixtures in ``fixtures/scraped/`` are the seed page (the France 24 page the
project was created from) and pages written to vary it the way real pages do:
French, Windows line endings with a byte-order mark, no photo, dates with
times, no-break spaces and curly quotes, no promo block, no creation date, and
broken pages. Bodies are checked by rendering them with cmark-gfm, the engine
and extensions `newsbot.render.bodies` uses.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from newsbot.articles import Article, Image
from newsbot.errors import ArticleError, Problem
from newsbot.render import cmark as markdown_c
from newsbot.store import fields, markdown, scraped
from newsbot.store.fields import Site, Source
from newsbot.store.text import decode
from newsbot.store.writer import to_markdown

FIXTURES = Path(__file__).parent / "fixtures" / "scraped"
SEED = "000_f8273654f7973075.txt"
SITE = Site(base_url="http://127.0.0.1:8080/", permalink="articles/{slug}/", zone=ZoneInfo("UTC"))
PARIS = replace(SITE, zone=ZoneInfo("Europe/Paris"))

SEED_SUBHEADING = "Soured relations between Paris and London"
SEED_CREDIT_LINE = "(FRANCE 24 with AFP)"
SEED_RELATED = (
    "France and Britain to sign Calais security agreement",
    "Migrant ‘almost' walks to England through Eurotunnel",
    "EU offers to help France, Britain tackle Calais migrant crisis",
)
SEED_PROMO = (
    "Bolivia's Morales: US decision to exit Paris climate deal 'a sign of contempt'",
    "Spain's Tagus river is drying up",
    "'Looking for Oum Kulthum': Breaking the glass ceiling in the art world",
    "'Alabama sent a message to women'",
    "French MPs learn to meditate",
    "African leaders meet in Paris ahead of G5 Sahel summit",
    "USA: Voters speak out ahead of Alabama Senate race",
    "Facebook to pay taxes where it earns advertising revenue",
    "Arnie sets green example in Paris",
)
GOOD_PAGES = (
    SEED,
    "seed_crlf_bom.txt",
    "fr_calais.txt",
    "no_photo_datetime.txt",
    "nbsp_curly.txt",
    "no_promo.txt",
    "no_date_created.txt",
)


def read(name: str, site: Site = SITE, path: str | None = None) -> tuple[Article, list[Problem]]:
    """Parse a fixture the way the store does: bytes decoded, then the scraped reader."""
    source = Source(path=path or name, asset_size=lambda _: None)
    return scraped.parse(decode((FIXTURES / name).read_bytes()), source, site)


def blocks(body: str) -> list[str]:
    return body.split("\n\n")


def render(body: str) -> lxml.html.HtmlElement:
    """The body as cmark-gfm renders it for newsbot, inside one ``div``."""
    return lxml.html.fragment_fromstring(markdown_c.to_html(body), create_parent="div")


def seed_body_lines() -> list[str]:
    """The seed's lines between ``Latest update`` and ``Date created``, read independently."""
    lines = (FIXTURES / SEED).read_text(encoding="utf-8").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Latest update"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Date created"))
    return [line for line in lines[start + 1 : end] if line.strip()]


# --- the seed page -----------------------------------------------------------------------


def test_seed_fields_are_read_exactly() -> None:
    article, warnings = read(SEED)
    assert warnings == []
    assert article.id == "000-f8273654f7973075"
    assert article.path == SEED
    assert article.url == "http://127.0.0.1:8080/articles/000-f8273654f7973075/"
    assert article.title == "France and UK sign Calais cooperation agreement"
    assert article.section == "Europe"
    assert article.extra == {"outlet": "France 24"}
    assert article.authors == ("FRANCE 24",)
    assert article.lang == "en"
    assert article.published == datetime(2015, 8, 20, tzinfo=UTC)
    assert article.updated == datetime(2015, 8, 20, tzinfo=UTC)
    assert article.image == Image(
        url="",
        alt="French Interior minister Bernard Cazeneuve (right) and Britain Home Secretary "
        "Theresa May in Calais, in northern France, on August 20, 2015 in Calais",
        credit="© Philippe Huguen, AFP",
    )
    assert article.related == SEED_RELATED
    assert article.summary == ""
    assert article.tags == ()


def test_seed_body_is_19_paragraphs_a_subheading_and_the_agency_credit() -> None:
    """21 Markdown blocks: 12 paragraphs, the ``##`` subheading, 7 paragraphs, the credit.

    The 19 paragraphs are the seed's text lines unchanged (none needs escaping).
    """
    article, _ = read(SEED)
    body = blocks(article.body)
    assert len(body) == 21
    assert body[12] == f"## {SEED_SUBHEADING}"
    assert body[-1] == f"*{SEED_CREDIT_LINE}*"
    paragraphs = body[:12] + body[13:-1]
    assert len(paragraphs) == 19
    lines = seed_body_lines()
    assert paragraphs == [line for line in lines if line not in (SEED_SUBHEADING, SEED_CREDIT_LINE)]
    assert paragraphs[0].startswith("French Interior Minister Bernard Cazeneuve")
    assert paragraphs[-1].endswith("French Foreign Minister Laurent Fabius said on Thursday.")


def test_seed_body_renders_as_paragraphs_one_heading_and_an_emphasised_credit() -> None:
    article, _ = read(SEED)
    root = render(article.body)
    assert [child.tag for child in root] == ["p"] * 12 + ["h2"] + ["p"] * 8
    assert root[12].text_content() == SEED_SUBHEADING
    assert [(e.tag, e.text_content()) for e in root[-1]] == [("em", SEED_CREDIT_LINE)]
    assert {e.tag for e in root.iter()} == {"div", "p", "h2", "em"}


def test_seed_promo_headlines_appear_nowhere() -> None:
    article, _ = read(SEED)
    written = to_markdown(article)
    for headline in SEED_PROMO:
        assert headline not in repr(article)
        assert headline not in written
    assert "Read more" not in article.body
    assert "Don't miss" not in article.body


def test_crlf_and_byte_order_mark_read_as_the_seed() -> None:
    raw = (FIXTURES / "seed_crlf_bom.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    assert read("seed_crlf_bom.txt", path=SEED) == read(SEED)


@pytest.mark.parametrize(
    "invisible", ["\u200b", "\ufeff", "\u2060", "\u00ad", " \u200b\u00a0"], ids=ascii
)
def test_lines_of_invisible_characters_are_blank_as_in_the_seed(invisible: str) -> None:
    """Scrapers keep the zero-width spaces, joiners and byte-order marks of the page's HTML:
    a line of nothing else is blank, and they do not cling to the landmarks or headlines."""
    text = (FIXTURES / SEED).read_text(encoding="utf-8")
    lines = [line + invisible for line in text.split("\n")]
    source = Source(SEED, lambda _: None)
    assert scraped.parse("\n".join(lines), source, SITE) == read(SEED)


# --- variants ----------------------------------------------------------------------------


def test_french_page() -> None:
    article, warnings = read("fr_calais.txt")
    assert warnings == []
    assert article.lang == "fr"
    assert article.title == "Calais : Paris et Londres signent un accord de coopération"
    assert article.section == "France"
    assert article.authors == ("FRANCE 24",)
    assert article.image is not None and article.image.credit == "© Philippe Huguen, AFP"
    assert article.published == datetime(2015, 8, 20, tzinfo=UTC)
    assert article.updated == datetime(2015, 8, 21, 9, 15, tzinfo=UTC)
    assert article.related == (
        "Calais : la France et le Royaume-Uni vont signer un accord de sécurité",
        "Un migrant traverse « presque » le tunnel sous la Manche à pied",
    )
    body = blocks(article.body)
    assert len(body) == 7
    assert body[3] == "## Des relations tendues entre Paris et Londres"
    assert body[-1] == "*(FRANCE 24 avec AFP)*"
    # No-break spaces of French typography stay in the body; only titles and names are tidied.
    assert "10\u202fmillions" in body[2]
    assert "Le Louvre" not in repr(article)
    assert "la saison des pluies" not in repr(article)


def test_no_photo_two_bylines_and_dates_with_times() -> None:
    article, warnings = read("no_photo_datetime.txt")
    assert warnings == []
    assert article.image is None
    assert article.section == "Africa"
    assert article.authors == ("Jane DOE", "John ROE")
    assert article.published == datetime(2015, 2, 7, 22, 5, tzinfo=UTC)
    assert article.updated == datetime(2015, 2, 8, 14, 32, tzinfo=UTC)
    assert article.related == ()
    assert "Markets rally" not in repr(article)
    assert blocks(article.body)[-1] == "*(FRANCE 24 with AFP and REUTERS)*"


def test_times_without_zone_are_in_the_site_zone() -> None:
    article, _ = read("no_photo_datetime.txt", site=PARIS)
    assert article.published == datetime(2015, 2, 7, 21, 5, tzinfo=UTC)
    assert article.updated == datetime(2015, 2, 8, 13, 32, tzinfo=UTC)


def test_no_break_spaces_curly_quotes_and_read_more_variants() -> None:
    article, warnings = read("nbsp_curly.txt")
    assert warnings == []
    assert article.title == "Greek islands overwhelmed as arrivals surge"
    assert article.section == "Europe"
    assert article.authors == ("FRANCE 24",)
    assert article.image == Image(
        url="", alt="Migrants arrive on the island of Lesbos", credit="© Louisa Gouliamaki, AFP"
    )
    assert article.published == article.updated == datetime(2015, 8, 21, tzinfo=UTC)
    # A promo block after the related headlines is navigation too.
    assert article.related == ("EU border agency reports record migrant numbers",)
    body = blocks(article.body)
    assert len(body) == 2
    assert body[0].startswith("Nearly 21\u00a0000 migrants") and body[0].endswith("Friday.")
    for promo in ("Arnie sets green example", "french MPs learn", "Tagus"):
        assert promo not in repr(article)


def test_page_without_promo_section_or_photo() -> None:
    article, warnings = read("no_promo.txt")
    assert warnings == []
    assert article.title == "Heatwave: Paris bans older cars for a day"
    assert article.section is None
    assert article.authors == ("Claire DUPONT",)
    assert article.published == datetime(2019, 6, 27, tzinfo=UTC)
    assert article.updated == datetime(2019, 6, 28, tzinfo=UTC)
    # A linked headline inside the body is a related article too, in page order.
    assert article.related == (
        "Why Europe is sweltering in June",
        "Paris opens its fountains to the public",
        "Record temperatures in southern France",
    )
    body = blocks(article.body)
    assert body[4] == "## Elsewhere in France"
    assert body[-1] == "*(AFP)*"
    assert "Why Europe" not in article.body


def test_markup_in_the_page_stays_text() -> None:
    article, _ = read("no_promo.txt")
    root = render(article.body)
    lines = (FIXTURES / "no_promo.txt").read_text(encoding="utf-8").split("\n")
    for index in (1, 2, 3):
        assert root[index].tag == "p"
        assert root[index].text_content() == lines[6 + 2 * index]
    assert {e.tag for e in root.iter()} == {"div", "p", "h2", "em"}


def test_missing_creation_date_falls_back_on_the_update() -> None:
    article, warnings = read("no_date_created.txt")
    assert article.published == article.updated == datetime(2016, 4, 15, 18, tzinfo=UTC)
    assert warnings == [
        Problem(
            "no_date_created.txt",
            "no creation date; the latest update is used as the date",
            line=7,
            field="date",
        )
    ]


@pytest.mark.parametrize(
    ("name", "field", "line", "words"),
    [
        ("broken_no_headline.txt", "title", 8, "no headline"),
        ("broken_promo_only.txt", "title", 11, "no headline"),
        ("broken_no_date.txt", "date", 11, "no date"),
        ("broken_bad_date.txt", "date", 11, "impossible date '2015-02-30'"),
    ],
)
def test_broken_pages_name_the_line_and_field(name: str, field: str, line: int, words: str) -> None:
    with pytest.raises(ArticleError) as caught:
        read(name)
    assert (caught.value.field, caught.value.line) == (field, line)
    assert words in caught.value.message
    assert str(caught.value.at(name)).startswith(f"{name}:{line}: {field}: ")


# --- dates as news sites print them -----------------------------------------------------


def dated_page(value: str) -> str:
    return page_with("A paragraph.").replace("2015-08-20", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("August 20, 2015 2:32 PM", datetime(2015, 8, 20, 14, 32, tzinfo=UTC)),
        ("20 Aug 2015 2:32 pm", datetime(2015, 8, 20, 14, 32, tzinfo=UTC)),
        ("20 Aug 2015 12:05 AM", datetime(2015, 8, 20, 0, 5, tzinfo=UTC)),
        ("20 Aug 2015 12:05 p.m.", datetime(2015, 8, 20, 12, 5, tzinfo=UTC)),
        ("Thu, 20 Aug 2015 2:32 PM EDT", datetime(2015, 8, 20, 18, 32, tzinfo=UTC)),
        ("Thu, 20 Aug 2015 14:32:00 GMT", datetime(2015, 8, 20, 14, 32, tzinfo=UTC)),
        ("20 Aug 2015 14:32", datetime(2015, 8, 20, 14, 32, tzinfo=UTC)),
    ],
)
def test_twelve_hour_times_and_named_zones_read_as_printed(value: str, expected: datetime) -> None:
    article, _ = scraped.parse(dated_page(value), Source("p.txt", lambda _: None), SITE)
    assert article.published == article.updated == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        # A zone the reader does not know must not be taken for the site's zone.
        ("Thu, 20 Aug 2015 14:32:00 CEST", "unknown time zone 'CEST'"),
        ("20 Aug 2015 14:32 BST", "unknown time zone 'BST'"),
        ("20 Aug 2015 14:32 Paris", "unknown time zone 'Paris'"),
        ("20 Aug 2015 13:05 PM", "not a 12-hour time"),
        ("2015-08-20 14:32 UTC", "cannot read '2015-08-20 14:32 UTC' as a date"),
        ("2 hours ago", "cannot read '2 hours ago' as a date"),
    ],
)
def test_dates_that_cannot_be_read_exactly_are_refused(value: str, words: str) -> None:
    with pytest.raises(ArticleError) as caught:
        scraped.parse(dated_page(value), Source("p.txt", lambda _: None), SITE)
    assert (caught.value.field, caught.value.line) == ("date", 11)
    assert words in caught.value.message


HTML_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head><title>France and UK sign Calais cooperation agreement</title></head>
<body>
<h1>France and UK sign Calais cooperation agreement</h1>

Text by FRANCE 24

Latest update : 2015-08-20

<p>French Interior Minister Bernard Cazeneuve signed a deal on Thursday.</p>

Date created : 2015-08-20
</body>
</html>
"""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HTML_PAGE, 1),
        ("\n\n" + HTML_PAGE.replace("<!DOCTYPE html>\n", ""), 3),
        ("<!-- saved from url=(0040)https://www.france24.com/en/ -->\n" + HTML_PAGE, 1),
        ("\ufeff<?xml version='1.0'?>\n" + HTML_PAGE, 1),
        (HTML_PAGE.replace("\n", ""), 1),
    ],
    ids=["doctype", "html", "saved-from", "xhtml", "one-line"],
)
def test_an_html_document_is_refused_not_published_as_text(text: str, line: int) -> None:
    """A scraper that saved the HTML under ``.txt``: its markup must not become a headline."""
    with pytest.raises(ArticleError) as caught:
        scraped.parse(text, Source("p.txt", lambda _: None), SITE)
    assert caught.value.line == line
    assert "HTML document" in caught.value.message


# --- escaping ----------------------------------------------------------------------------

TRICKY = [
    "5 * 3 = 15, and 2 * 2 = 4 *really*",
    "snake_case and _underscored_ words, __strong__ too",
    "#hashtag at the start of a paragraph",
    "# Not a heading #",
    "<script>alert('x')</script> stays text",
    "a <b>bold</b> claim and <!-- a comment --> and <http://example.com>",
    "1. Not a list item",
    "2015) Not a list either",
    "- Not a bullet",
    "+ Not a bullet",
    "> Not a quote",
    "`not code` and ``not code either``",
    "[not a link](http://example.com) and ![not an image](x.png)",
    "[ref]: http://example.com",
    "[^1] is not a footnote",
    "AT&T, &amp; and &#169; and &#x27; stay as typed",
    "~~not struck~~ and ~not either~",
    "a backslash \\ and \\* and a trailing one \\",
    "| a | b |",
    "***",
    "---",
    "$11.2 million {braces} (parens) !bang",
    "www.example.com/a_b_ and https://example.com/*x* stay as typed",
    "write to foo_bar@example.com",
    'no-break\u00a0space and “curly” and "straight" quotes',
]


def page_with(paragraph: str, heading: str = "") -> str:
    middle = f"{heading}\n\n" if heading else ""
    return (
        "A headline\n\nText by FRANCE 24\n\nLatest update : 2015-08-20\n\n"
        f"{paragraph}\n\n{middle}A closing paragraph.\n\nDate created : 2015-08-20\n"
    )


@pytest.mark.parametrize("paragraph", TRICKY)
def test_body_text_renders_literally(paragraph: str) -> None:
    article, _ = scraped.parse(page_with(paragraph), Source("p.txt", lambda _: None), SITE)
    first = render(article.body)[0]
    assert first.tag == "p"
    assert first.text_content() == paragraph
    assert {e.tag for e in first.iter()} <= {"p", "a"}  # GFM links e-mail addresses


@pytest.mark.parametrize("heading", ["C# and F# #", "Why *this* <matters>", "1. The first"])
def test_subheading_text_renders_literally(heading: str) -> None:
    text = page_with("An opening paragraph.", heading=heading)
    article, _ = scraped.parse(text, Source("p.txt", lambda _: None), SITE)
    root = render(article.body)
    assert [e.tag for e in root] == ["p", "h2", "p"]
    assert root[1].text_content() == heading
    assert len(root[1]) == 0


# --- writing Markdown for `newsbot import` -----------------------------------------------


def test_seed_as_markdown_front_matter() -> None:
    article, _ = read(SEED)
    written = to_markdown(article)
    front, body = written.split("\n---\n\n", 1)
    assert front.split("\n") == [
        "---",
        "id: 000-f8273654f7973075",
        "title: France and UK sign Calais cooperation agreement",
        "date: '2015-08-20T00:00:00+00:00'",
        "author:",
        "- FRANCE 24",
        "section: Europe",
        "lang: en",
        "image:",
        "  alt: French Interior minister Bernard Cazeneuve (right) and Britain Home Secretary "
        "Theresa May in Calais, in northern France, on August 20, 2015 in Calais",
        "  credit: © Philippe Huguen, AFP",
        "related:",
        "- France and Britain to sign Calais security agreement",
        "- Migrant ‘almost' walks to England through Eurotunnel",
        "- EU offers to help France, Britain tackle Calais migrant crisis",
    ]
    assert body == article.body + "\n"


def test_updated_is_written_only_when_it_differs() -> None:
    article, _ = read("no_photo_datetime.txt")
    front = to_markdown(article).split("\n---\n", 1)[0]
    assert "date: '2015-02-07T22:05:00+00:00'" in front
    assert "updated: '2015-02-08T14:32:00+00:00'" in front


@pytest.mark.parametrize("site", [SITE, PARIS], ids=["utc", "paris"])
@pytest.mark.parametrize("name", GOOD_PAGES)
def test_markdown_reads_back_as_the_same_article(name: str, site: Site) -> None:
    article, _ = read(name, site=site)
    imported = Source(path=f"imported/2015/{name[:-4]}.md", asset_size=lambda _: None)
    again, warnings = markdown.parse(to_markdown(article), imported, site)
    assert warnings == []
    assert again == replace(article, path=imported.path)
    assert again.id == article.id


def test_markdown_article_with_every_field_reads_back() -> None:
    """The writer is not tied to scraped pages: tags, flags, summary and image addresses too."""
    text = (
        "---\n"
        "title: 'Yes: a title with a colon'\n"
        "date: 2015-08-20 14:30\n"
        "updated: 2015-08-21T08:00:00+02:00\n"
        "author: [Jane Doe, John Roe]\n"
        "summary: The summary.\n"
        "tags: [Calais, '1984', 'true']\n"
        "section: Europe\n"
        "lang: pt-BR\n"
        "image: {url: 'https://example.com/a.jpg', alt: A photo, credit: AFP, length: 12}\n"
        "related: [2015/other]\n"
        "draft: true\n"
        "content_warning: violence\n"
        "---\n\n# Heading\n\nBody *with* markup.\n"
    )
    article, _ = markdown.parse(text, Source("2015/x.md", lambda _: None), PARIS)
    again, warnings = markdown.parse(to_markdown(article), Source("y.md", lambda _: None), PARIS)
    assert warnings == []
    assert again == replace(article, path="y.md")


def test_a_related_headline_the_page_repeats_is_one_reference() -> None:
    """First occurrence kept, page order kept: the same headline in the body and after it."""
    page = (
        "A headline\n\nText by FRANCE 24\n\nLatest update : 2015-08-20\n\nA paragraph.\n\n"
        "    Last story\n\n    Read more\n\nA closing paragraph.\n\n"
        "Date created : 2015-08-20\n\n"
        "    Other story\n\n    Read more\n\n    Last story\n\n    Read more\n\n"
        "    Other story\n\n    Read more\n"
    )
    article, warnings = scraped.parse(page, Source("p.txt", lambda _: None), SITE)
    assert article.related == ("Last story", "Other story")
    assert warnings == []


def test_front_matter_related_repeats_are_one_reference() -> None:
    text = (
        "---\ntitle: T\ndate: 2015-08-20\n"
        "related: [2015/other, 'Some headline', 2015/other, ' Some headline ']\n---\nBody.\n"
    )
    article, _ = markdown.parse(text, Source("p.md", lambda _: None), SITE)
    assert article.related == ("2015/other", "Some headline")


def test_related_headlines_past_the_cap_are_dropped_with_a_problem_at_their_line() -> None:
    """A page of thousands of "Read more" headlines keeps the first ones, and says so."""
    count = fields.MAX_RELATED + 50
    page = page_with("A paragraph.") + "".join(
        f"\n    Story number {n}\n\n    Read more\n" for n in range(count)
    )
    article, warnings = scraped.parse(page, Source("p.txt", lambda _: None), SITE)
    assert article.related == tuple(f"Story number {n}" for n in range(fields.MAX_RELATED))
    first_related_line = page.split("\n").index("    Story number 0") + 1
    assert warnings == [
        Problem(
            "p.txt",
            f"{count} references; only the first {fields.MAX_RELATED} are kept",
            line=first_related_line,
            field="related",
        )
    ]


def test_front_matter_related_past_the_cap_are_dropped_with_a_problem() -> None:
    items = "".join(f"  - Story {n}\n" for n in range(fields.MAX_RELATED + 1))
    text = f"---\ntitle: T\ndate: 2015-08-20\nrelated:\n{items}---\nBody.\n"
    article, problems = markdown.parse(text, Source("p.md", lambda _: None), SITE)
    assert len(article.related) == fields.MAX_RELATED
    assert [(p.line, p.field) for p in problems] == [(4, "related")]
