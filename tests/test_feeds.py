"""Feeds rendered from small, tricky articles: valid to the letter, stable, read right.

Validity is judged by ``feedcheck`` (the W3C validator's rules and the JSON
Feed schema); the second half proves ``feedcheck`` itself reports broken feeds.
Reader tests run feedparser, sfeed and Newsboat (over loopback HTTP) on the
same documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from newsbot.articles import Article, Image, ascii_host
from newsbot.layout import MEDIA_TYPES
from newsbot.render.feeds import (
    EMPTY_FEED_DATE,
    RENDERERS,
    Entry,
    FeedInfo,
    render_atom,
    render_json,
    render_rss,
)
from newsbot.summaries import EXCERPT_LIMIT
from support import feedcheck
from support.feedcheck import (
    SchemaMissing,
    check_atom,
    check_json,
    check_rss,
    json_feed_schema,
    require_json_schema,
)
from support.readers import (
    Resource,
    feedparser_items,
    loopback_server,
    newsboat_items,
    require_program,
    sfeed_items,
)

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"

INFO = FeedInfo(
    title="Sample newsroom",
    description="All the news from the sample newsroom & its <friends>",
    home_url="https://example.org/",
    language="en",
    id="tag:example.org,2015:feeds/main",
    urls={
        "rss": "https://example.org/feeds/rss.xml",
        "atom": "https://example.org/feeds/atom.xml",
        "json": "https://example.org/feeds/feed.json",
    },
    hub="https://hub.example.net/",
)

CHECKERS: dict[str, Callable[[bytes, str], list[str]]] = {
    "rss": check_rss,
    "atom": check_atom,
    "json": check_json,
}

ENTITIES_HTML = (
    "<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#8212; "
    '<a href="https://example.org/x?a=1&amp;b=2">link</a> '
    '<img src="https://example.org/media/c.png" alt="c"></p>'
)
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")

LONG_BODY = (
    "<p>The deal was signed in Calais on Thursday after three days of talks. "
    "Ministers from both sides said it would cut waiting times at the port.</p>"
    "<p>Hauliers welcomed the news but warned that queues would return in summer "
    "unless more staff were hired at the border posts on both sides of the Channel. "
    "The agreement runs for five years and can be renewed.</p>"
    "<p>Critics called it a stopgap.</p>"
)


def _article(number: int, **changes: Any) -> Article:
    """A plain article; ``number`` keeps ids, links and dates apart."""
    base = Article(
        id=f"2015/story-{number}",
        path=f"2015/story-{number}.md",
        title=f"Story {number}",
        published=datetime(2015, 8, 20, 9, number, tzinfo=UTC),
        updated=datetime(2015, 8, 21, 9, number, 30, tzinfo=UTC),
        body="Body.",
        url=f"https://example.org/2015/story-{number}",
        authors=("Jane Doe",),
        summary=f"Summary of story {number}.",
    )
    return replace(base, **changes)


def _entry(article: Article, content_html: str = "<p>Body.</p>") -> Entry:
    """The article as an entry with a tag: guid built from its id, never from its title."""
    return Entry(
        article=article, guid=f"tag:example.org,2015:{article.id}", content_html=content_html
    )


def tricky_entries() -> list[Entry]:
    """Newest first, each one aimed at a rule that renderers get wrong."""
    image = "https://example.org/media/"
    return [
        _entry(
            _article(
                9,
                title='Tax < 5% & "rising" — AT&T\'s 🎉 <script> plan, R&D &copy q&a',
                tags=("Économie", "tax", "Économie", " ", "AT&T"),
                section="Business",
                image=Image(url=image + "tax.jpg", alt="A chart", type="image/jpeg", length=4321),
            ),
            ENTITIES_HTML,
        ),
        _entry(
            _article(8, summary="", image=Image(url=image + "calais.png", type="image/png")),
            LONG_BODY,
        ),
        _entry(_article(7, title="Same headline", authors=()), "<p>First of two.</p>"),
        _entry(
            _article(6, title="Same headline", authors=("Ann", "Bob"), lang="fr"),
            "<p>Second of two, en français.</p>",
        ),
        _entry(
            _article(
                5,
                tags=tuple(f"tag {n}" for n in range(25)),
                image=Image(url="", credit="Photo: agency"),
            )
        ),
        _entry(
            _article(
                4,
                title="Control\x00 chars\x0b and \x85 bad \ufffd text",
                summary="Nulls\x01 removed",
                image=Image(url=image + "no-extension", type=None),
            ),
            "<p>Body with a \x08 backspace.</p>",
        ),
        _entry(
            _article(
                3,
                updated=datetime(2015, 8, 21, 9, 4, 30, tzinfo=UTC),
                summary="Entity-like &amp text",
            ),
            "<p>Same updated date as the next one.</p>",
        ),
        _entry(
            _article(2, updated=datetime(2015, 8, 21, 9, 4, 30, tzinfo=UTC)),
            "",
        ),
    ]


def render(kind: str, entries: Sequence[Entry], info: FeedInfo = INFO) -> bytes:
    """One format through the renderer table, as the build pipeline calls it."""
    return RENDERERS[kind](info, entries)


@pytest.fixture
def json_schema() -> None:
    """The JSON Feed schema must be installed; only CI treats its absence as failure."""
    require_json_schema()


def _needs_schema(kind: str, request: pytest.FixtureRequest) -> None:
    """Load the schema fixture for JSON cases of a parametrised test."""
    if kind == "json":
        request.getfixturevalue("json_schema")


def _xml(data: bytes) -> etree._Element:
    """A rendered XML feed as a tree."""
    return etree.fromstring(data)


# -- missing tools fail under CI, skip elsewhere ---------------------------------------------


def test_a_missing_program_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="setup/tools.sh"):
        require_program("newsbot-no-such-reader")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="setup/tools.sh"):
        require_program("newsbot-no-such-reader")


def test_a_missing_schema_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(feedcheck, "JSON_SCHEMA", tmp_path / "schema-v1.1.json")
    json_feed_schema.cache_clear()
    try:
        with pytest.raises(SchemaMissing, match="setup/tools.sh"):
            check_json(b"{}", INFO.urls["json"])
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="setup/tools.sh"):
            require_json_schema()
        monkeypatch.delenv("CI")
        with pytest.raises(pytest.skip.Exception, match="setup/tools.sh"):
            require_json_schema()
    finally:
        json_feed_schema.cache_clear()


# -- validity and stability ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_tricky_articles_give_valid_feeds(kind: str, request: pytest.FixtureRequest) -> None:
    _needs_schema(kind, request)
    data = render(kind, tricky_entries())
    assert CHECKERS[kind](data, INFO.urls[kind]) == []


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_empty_feed_is_valid(kind: str, request: pytest.FixtureRequest) -> None:
    _needs_schema(kind, request)
    data = render(kind, [])
    assert CHECKERS[kind](data, INFO.urls[kind]) == []


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_feed_without_hub_or_author_is_valid(kind: str, request: pytest.FixtureRequest) -> None:
    _needs_schema(kind, request)
    info = replace(INFO, hub=None, author=None, description="")
    data = render(kind, tricky_entries(), info)
    assert CHECKERS[kind](data, info.urls[kind]) == []
    assert b"hub.example.net" not in data


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_same_input_gives_the_same_bytes(kind: str) -> None:
    first = render(kind, tricky_entries())
    assert render(kind, tricky_entries()) == first
    assert render(kind, tuple(tricky_entries())) == first


def test_feed_dates_come_from_the_articles_not_the_clock() -> None:
    entries = tricky_entries()
    newest = max(entry.article.updated for entry in entries)
    assert _xml(render_rss(INFO, entries)).findtext("channel/lastBuildDate") == (
        newest.strftime("%a, %d %b %Y %H:%M:%S +0000")
    )
    assert _xml(render_atom(INFO, entries)).findtext(f"{ATOM}updated") == newest.isoformat()


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])
def test_a_revision_date_to_come_is_shown_from_that_moment_on(
    kind: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Entries as a build sees them (`Article.as_seen`): before the newest entry's revision
    date the feed carries none of it and is valid then (the validator's clock says the
    build's time), whenever between two dates it is made; from that moment it carries it."""
    _needs_schema(kind, request)
    entries = tricky_entries()
    revision = entries[0].article.updated

    def seen(now: datetime) -> bytes:
        return render(kind, [replace(e, article=e.article.as_seen(now)) for e in entries])

    others = max(e.article.updated for e in entries[1:])  # the date passed before it
    early, late = others + timedelta(seconds=1), revision - timedelta(seconds=1)
    monkeypatch.setattr(feedcheck, "_now", lambda: early)
    assert seen(early) == seen(late)
    assert CHECKERS[kind](seen(early), INFO.urls[kind]) == []
    assert _date_text(revision, kind) not in seen(early).decode()
    assert seen(revision) == seen(revision + timedelta(days=900)) == render(kind, entries)
    assert _date_text(revision, kind) in seen(revision).decode()


def _date_text(moment: datetime, kind: str) -> str:
    """How a feed of ``kind`` writes ``moment``."""
    if kind == "rss":
        return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return moment.isoformat() if kind == "atom" else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_empty_feed_has_the_fixed_date() -> None:
    assert _xml(render_rss(INFO, [])).findtext("channel/lastBuildDate") == (
        "Sat, 01 Jan 2000 00:00:00 +0000"
    )
    assert _xml(render_atom(INFO, [])).findtext(f"{ATOM}updated") == EMPTY_FEED_DATE.isoformat()
    assert json.loads(render_json(INFO, []))["items"] == []


def test_renderer_tables() -> None:
    assert set(RENDERERS) == set(MEDIA_TYPES) == {"rss", "atom", "json"}
    assert MEDIA_TYPES["rss"] == "application/rss+xml"
    assert MEDIA_TYPES["atom"] == "application/atom+xml"
    assert MEDIA_TYPES["json"] == "application/feed+json"


# -- RSS --------------------------------------------------------------------------------------


def test_rss_channel_links_self_first_and_the_site_as_channel_link() -> None:
    channel = _xml(render_rss(INFO, tricky_entries())).find("channel")
    assert channel is not None
    links = channel.findall(f"{ATOM}link")
    assert [(link.get("rel"), link.get("href")) for link in links] == [
        ("self", INFO.urls["rss"]),
        ("hub", INFO.hub),
    ]
    assert links[0].get("type") == "application/rss+xml"
    assert channel.findtext("link") == INFO.home_url
    assert channel.findtext("language") == "en"


def test_rss_items_in_order_with_guid_dates_content_and_categories() -> None:
    entries = tricky_entries()
    items = _xml(render_rss(INFO, entries)).findall("channel/item")
    assert [item.findtext("guid") for item in items] == [entry.guid for entry in entries]
    first = items[0]
    assert first.find("guid") is not None
    assert first.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert first.findtext("pubDate") == "Thu, 20 Aug 2015 09:09:00 +0000"
    assert first.findtext(f"{CONTENT}encoded") == entries[0].content_html
    assert first.findtext("description") == "Summary of story 9."
    assert [c.text for c in first.findall("category")] == ["Business", "Économie", "tax", "AT&T"]
    assert len(items[4].findall("category")) == 25


def test_rss_authors_are_dc_creators_never_author_elements() -> None:
    items = _xml(render_rss(INFO, tricky_entries())).findall("channel/item")
    assert all(item.find("author") is None for item in items)
    assert [c.text for c in items[3].findall(f"{DC}creator")] == ["Ann", "Bob"]
    assert items[2].find(f"{DC}creator") is None


def test_rss_enclosure_has_type_and_length_zero_when_unknown() -> None:
    items = _xml(render_rss(INFO, tricky_entries())).findall("channel/item")
    enclosures = [item.find("enclosure") for item in items]
    assert dict(enclosures[0].attrib) == {  # type: ignore[union-attr]
        "url": "https://example.org/media/tax.jpg",
        "length": "4321",
        "type": "image/jpeg",
    }
    assert enclosures[1].get("length") == "0"  # type: ignore[union-attr]
    assert enclosures[4] is None  # credit only, no URL
    assert enclosures[5] is None  # media type unknown


def test_rss_summary_is_escaped_html_and_plain_text_uses_hex_references() -> None:
    data = render_rss(INFO, [_entry(_article(1, title="A <b> & B", summary="x < y & <i>z</i>"))])
    item = _xml(data).find("channel/item")
    assert item is not None
    assert item.findtext("description") == "x &lt; y &amp; &lt;i&gt;z&lt;/i&gt;"
    assert item.findtext("title") == "A <b> & B"
    assert b"<title>A &#x3C;b&gt; &#x26; B</title>" in data


def test_rss_without_summary_uses_an_excerpt_cut_at_a_sentence() -> None:
    item = _xml(render_rss(INFO, tricky_entries())).findall("channel/item")[1]
    excerpt = item.findtext("description") or ""
    assert excerpt.startswith("The deal was signed in Calais on Thursday")
    assert excerpt.endswith("sides of the Channel.")  # whole sentences that fit
    assert "five years" not in excerpt
    assert len(excerpt) <= EXCERPT_LIMIT


def test_excerpt_of_one_long_sentence_is_cut_on_a_word() -> None:
    words = " ".join(f"word{n}" for n in range(200))
    article = _article(1, summary="")
    summary = json.loads(render_json(INFO, [_entry(article, f"<p>{words}</p>")]))["items"][0]
    cut = summary["summary"]
    assert cut.endswith("…")
    assert len(cut) <= EXCERPT_LIMIT
    assert words.startswith(cut[:-1])
    assert cut[:-1].split()[-1] in words.split()


def test_no_summary_and_no_body_falls_back_to_the_title() -> None:
    data = render_json(INFO, [_entry(_article(1, summary=""), "")])
    item = json.loads(data)["items"][0]
    assert item["summary"] == "Story 1"
    assert item["content_html"] == ""


def test_forbidden_characters_never_reach_the_output() -> None:
    for kind in ("rss", "atom", "json"):
        text = render(kind, tricky_entries()).decode("utf-8")
        assert not UNSAFE_CHARACTERS.search(text), kind
        assert "Control chars and bad text" in text


def test_non_ascii_urls_are_percent_encoded(request: pytest.FixtureRequest) -> None:
    """The validator rejects IRIs where it wants URIs, and so does the JSON schema."""
    request.getfixturevalue("json_schema")
    image = Image(url="https://example.org/media/été 1.jpg", type="image/jpeg")
    entries = [_entry(_article(1, url="https://example.org/2015/café", image=image))]
    for kind in ("rss", "atom", "json"):
        data = render(kind, entries)
        assert CHECKERS[kind](data, INFO.urls[kind]) == []
        assert b"https://example.org/2015/caf%C3%A9" in data
        assert b"https://example.org/media/%C3%A9t%C3%A9%201.jpg" in data


def test_non_ascii_ids_become_the_same_uri_in_every_format(
    request: pytest.FixtureRequest,
) -> None:
    """Atom ids must be canonical URIs; an IRI id is percent-encoded from its NFC form."""
    request.getfixturevalue("json_schema")
    decomposed = "tag:example.org,2015:wikinews-en:Wanda_Va\u0301zquez's_term "
    entries = [Entry(_article(1), guid=decomposed, content_html="<p>Body.</p>")]
    expected = "tag:example.org,2015:wikinews-en:Wanda_V%C3%A1zquez's_term"
    assert _xml(render_rss(INFO, entries)).findtext("channel/item/guid") == expected
    assert _xml(render_atom(INFO, entries)).findtext(f"{ATOM}entry/{ATOM}id") == expected
    assert json.loads(render_json(INFO, entries))["items"][0]["id"] == expected
    for kind in ("rss", "atom", "json"):
        assert CHECKERS[kind](render(kind, entries), INFO.urls[kind]) == []


def test_a_title_that_cleaning_empties_still_gives_valid_feeds(
    request: pytest.FixtureRequest,
) -> None:
    """A mis-decoded headline ("\ufffd\ufffd") is kept by the store but emptied for feeds:
    Atom requires a title (feedgen raised, failing the whole build) and a blank RSS
    title is an error, so the item is titled by its summary instead."""
    request.getfixturevalue("json_schema")
    entries = [_entry(_article(1, title="\ufffd \ufffd"))]
    for kind in ("rss", "atom", "json"):
        data = render(kind, entries)
        assert CHECKERS[kind](data, INFO.urls[kind]) == [], kind
    assert _xml(render_rss(INFO, entries)).findtext("channel/item/title") == "Summary of story 1."
    atom = _xml(render_atom(INFO, entries))
    assert atom.findtext(f"{ATOM}entry/{ATOM}title") == "Summary of story 1."
    assert json.loads(render_json(INFO, entries))["items"][0]["title"] == "Summary of story 1."


def test_an_item_with_nothing_but_a_title_that_cleaning_empties_is_valid(
    request: pytest.FixtureRequest,
) -> None:
    """No summary and no body either: the item id is all there is to show, and an Atom
    entry without content needs a summary that is not blank."""
    request.getfixturevalue("json_schema")
    entries = [_entry(_article(1, title="\ufffd", summary=""), "")]
    for kind in ("rss", "atom", "json"):
        data = render(kind, entries)
        assert CHECKERS[kind](data, INFO.urls[kind]) == [], kind
    entry = _xml(render_atom(INFO, entries)).find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == entries[0].guid
    assert entry.findtext(f"{ATOM}summary") == entries[0].guid


def test_urls_with_a_stray_percent_or_a_second_hash_become_valid_uris(
    request: pytest.FixtureRequest,
) -> None:
    """The store takes any absolute http(s) URL; ``%`` not starting an escape and a ``#``
    inside the fragment are not allowed in a URI (the JSON Feed schema's ``uri``)."""
    request.getfixturevalue("json_schema")
    image = Image(url="https://cdn.example.org/p%.jpg", type="image/jpeg")
    article = _article(1, url="https://example.org/50%-off?q=%41#a#b", image=image)
    for kind in ("rss", "atom", "json"):
        data = render(kind, [_entry(article)])
        assert CHECKERS[kind](data, INFO.urls[kind]) == [], kind
        assert b"https://example.org/50%25-off?q=%41#a%23b" in data
        assert b"https://cdn.example.org/p%25.jpg" in data


def test_an_internationalised_host_is_written_in_idna_not_percent_encoded() -> None:
    """A host name is a DNS name: ``b%C3%BCcher.example`` is no host, its A-label is."""
    image = Image(url="https://BÜCHER.example:8443/bild.jpg", type="image/jpeg")
    article = _article(1, url="https://bücher.example/straße?q=ü#ß", image=image)
    for kind in ("rss", "atom", "json"):
        data = render(kind, [_entry(article)])
        if kind != "json":  # the JSON Feed checker needs the schema (tests/setup/tools.sh)
            assert CHECKERS[kind](data, INFO.urls[kind]) == [], kind
        assert b"https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#%C3%9F" in data
        assert b"https://xn--bcher-kva.example:8443/bild.jpg" in data
        assert b"%C3%BCcher" not in data and b"%C3%9CCHER" not in data


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/ü", "https://example.org/ü"),  # an ASCII host is left alone
        ("https://user@Bücher.example:80/", "https://user@xn--bcher-kva.example:80/"),
        ("https://faß.example/", "https://xn--fa-hia.example/"),  # not folded to "fass"
        # IDNA 2008 forbids these, browsers open them as IDNA 2003 writes them
        ("https://☃.example/", "https://xn--n3h.example/"),
        ("https://-bücher.example/", "https://xn---bcher-4ya.example/"),
    ],
)
def test_a_host_is_written_as_browsers_resolve_it(url: str, expected: str) -> None:
    assert ascii_host(url) == expected


@pytest.mark.parametrize(
    "host", ["bücher..example", f"{'a' * 60}bücher.example", "bü cher.example", "bü%cher.example"]
)
def test_a_host_no_idna_allows_is_refused_by_name(host: str) -> None:
    with pytest.raises(ValueError, match="is not a valid internationalised domain name"):
        ascii_host(f"https://{host}/x")


def test_a_feed_id_with_non_ascii_letters_is_a_uri() -> None:
    """A tag feed's id holds the tag's slug, which keeps non-Latin letters
    (``tags/économie/``); like entry ids it must be an ASCII URI."""
    info = replace(INFO, id="tag:example.org,2015:feeds/tags/\u00e9conomie/")
    atom = render_atom(info, tricky_entries())
    assert _xml(atom).findtext(f"{ATOM}id") == "tag:example.org,2015:feeds/tags/%C3%A9conomie/"
    assert check_atom(atom, info.urls["atom"]) == []


# -- Atom --------------------------------------------------------------------------------------


def test_atom_entries_have_one_alternate_and_a_real_enclosure_link() -> None:
    entries = _xml(render_atom(INFO, tricky_entries())).findall(f"{ATOM}entry")
    links = [(link.attrib) for link in entries[0].findall(f"{ATOM}link")]
    assert [dict(link) for link in links] == [
        {"rel": "alternate", "type": "text/html", "href": "https://example.org/2015/story-9"},
        {
            "rel": "enclosure",
            "type": "image/jpeg",
            "href": "https://example.org/media/tax.jpg",
            "length": "4321",
        },
    ]
    unknown_length = entries[1].findall(f"{ATOM}link")[1]
    assert unknown_length.get("rel") == "enclosure"
    assert unknown_length.get("length") is None
    assert [len(entry.findall(f"{ATOM}link")) for entry in entries[2:]] == [1] * 6


def test_atom_feed_links_ids_and_authors() -> None:
    feed = _xml(render_atom(INFO, tricky_entries()))
    assert feed.findtext(f"{ATOM}id") == INFO.id
    assert [(link.get("rel"), link.get("href")) for link in feed.findall(f"{ATOM}link")] == [
        ("self", INFO.urls["atom"]),
        ("hub", INFO.hub),
        ("alternate", INFO.home_url),
    ]
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Sample newsroom"
    with_author = replace(INFO, author="The Desk")
    assert _xml(render_atom(with_author, [])).findtext(f"{ATOM}author/{ATOM}name") == "The Desk"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [e.guid for e in tricky_entries()]
    assert entries[2].find(f"{ATOM}author") is None  # inherits the feed author
    assert entries[3].get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert entries[0].get("{http://www.w3.org/XML/1998/namespace}lang") is None


def test_atom_content_is_escaped_html_and_summary_plain_text() -> None:
    entries = tricky_entries()
    entry = _xml(render_atom(INFO, entries)).find(f"{ATOM}entry")
    assert entry is not None
    content = entry.find(f"{ATOM}content")
    assert content is not None
    assert content.get("type") == "html"
    assert content.text == entries[0].content_html
    assert len(content) == 0
    assert entry.findtext(f"{ATOM}summary") == "Summary of story 9."


def test_atom_repeated_updated_dates_are_made_distinct() -> None:
    entries = _xml(render_atom(INFO, tricky_entries())).findall(f"{ATOM}entry")
    updated = [entry.findtext(f"{ATOM}updated") for entry in entries]
    assert len(set(updated)) == len(updated)
    assert updated[5:] == [  # three articles revised in the same second
        "2015-08-21T09:04:30+00:00",
        "2015-08-21T09:04:29+00:00",
        "2015-08-21T09:04:28+00:00",
    ]


def test_an_html_end_tag_in_a_title_is_declared_in_atom_and_flagged_in_rss() -> None:
    """RSS has no way to declare a title as HTML: the one known warning, reported."""
    entries = [_entry(_article(1, title="Why </div> breaks pages"))]
    atom = render_atom(INFO, entries)
    title = _xml(atom).find(f"{ATOM}entry/{ATOM}title")
    assert title is not None
    assert title.get("type") == "html"
    assert title.text == "Why &lt;/div&gt; breaks pages"
    assert check_atom(atom, INFO.urls["atom"]) == []
    problems = check_rss(render_rss(INFO, entries), INFO.urls["rss"])
    assert len(problems) == 1
    assert "HTML end tag" in problems[0]


# -- JSON Feed ---------------------------------------------------------------------------------


def test_json_feed_fields() -> None:
    entries = tricky_entries()
    feed = json.loads(render_json(INFO, entries))
    assert list(feed) == [
        "version",
        "title",
        "home_page_url",
        "feed_url",
        "description",
        "language",
        "authors",
        "hubs",
        "items",
    ]
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["hubs"] == [{"type": "WebSub", "url": INFO.hub}]
    first = feed["items"][0]
    assert first["id"] == entries[0].guid
    assert first["title"] == entries[0].article.title
    assert first["content_html"] == entries[0].content_html
    assert first["date_published"] == "2015-08-20T09:09:00Z"
    assert first["date_modified"] == "2015-08-21T09:09:30Z"
    assert first["image"] == "https://example.org/media/tax.jpg"
    assert first["authors"] == [{"name": "Jane Doe"}]
    assert first["tags"] == ["Business", "Économie", "tax", "AT&T"]
    assert "language" not in first
    assert feed["items"][3]["language"] == "fr"
    assert "authors" not in feed["items"][2]
    assert "image" not in feed["items"][4]
    assert all(value is not None for item in feed["items"] for value in item.values())


# -- the checker must catch broken feeds ----------------------------------------------------


def _edit_xml(data: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    """A valid document changed by ``edit`` on its tree."""
    root = etree.fromstring(data)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _first(root: etree._Element, path: str) -> etree._Element:
    """The first element at ``path``; the test data guarantees it exists."""
    element = root.find(path)
    assert element is not None, path
    return element


def _remove(path: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        element = _first(root, path)
        parent = element.getparent()
        assert parent is not None
        parent.remove(element)

    return edit


def _set_text(path: str, text: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        _first(root, path).text = text

    return edit


def _set_attribute(path: str, name: str, value: str | None) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        element = _first(root, path)
        if value is None:
            del element.attrib[name]
        else:
            element.set(name, value)

    return edit


def _raw_child(path: str, markup: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        element = _first(root, path)
        element.text = None
        element.append(etree.fromstring(markup))

    return edit


def _copy_second_as_first(path: str, name: str) -> Callable[[etree._Element], None]:
    """Give the second element at ``path`` the ``name`` text of the first."""

    def edit(root: etree._Element) -> None:
        first, second = root.findall(path)[:2]
        _first(second, name).text = first.findtext(name)

    return edit


def _add_link(path: str, **attributes: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        etree.SubElement(_first(root, path), f"{ATOM}link", attributes)

    return edit


ITEM = "channel/item"
BROKEN_RSS: dict[str, tuple[Callable[[etree._Element], None], str]] = {
    "missing guid": (_remove(f"{ITEM}/guid"), "missing guid"),
    "ISO date in pubDate": (
        _set_text(f"{ITEM}/pubDate", "2015-08-20T09:09:00Z"),
        "not an RFC 822 date",
    ),
    "wrong weekday": (
        _set_text(f"{ITEM}/pubDate", "Mon, 20 Aug 2015 09:09:00 +0000"),
        "wrong day of the week",
    ),
    "date before 1990": (
        _set_text(f"{ITEM}/pubDate", "Thu, 01 Jan 1970 00:00:00 +0000"),
        "implausible",
    ),
    "raw HTML in description": (_raw_child(f"{ITEM}/description", "<p>raw</p>"), "raw markup"),
    "relative item link": (_set_text(f"{ITEM}/link", "/2015/story-9"), "not an absolute URI"),
    "relative link in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", '<p><a href="/2015/other">x</a></p>'),
        "relative URL",
    ),
    "relative image in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", '<p><img src="media/a.png" alt=""></p>'),
        "relative URL",
    ),
    "duplicate guid": (_copy_second_as_first(ITEM, "guid"), "guids must be unique"),
    "script in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", "<p>x</p><script>alert(1)</script>"),
        "<script>",
    ),
    "iframe in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", '<iframe src="https://example.org/"></iframe>'),
        "<iframe>",
    ),
    "event handler in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", '<p onclick="alert(1)">x</p>'),
        "event handler",
    ),
    "javascript URL in content": (
        _set_text(f"{ITEM}/{CONTENT}encoded", '<a href="javascript:alert(1)">x</a>'),
        "script URL",
    ),
    "tag guid as permalink": (_set_attribute(f"{ITEM}/guid", "isPermaLink", None), "isPermaLink"),
    "enclosure without length": (_set_attribute(f"{ITEM}/enclosure", "length", None), "length"),
    "enclosure length -1": (_set_attribute(f"{ITEM}/enclosure", "length", "-1"), "length"),
    "enclosure without type": (_set_attribute(f"{ITEM}/enclosure", "type", None), "type"),
    "self link elsewhere": (
        _set_attribute(f"channel/{ATOM}link", "href", "https://example.org/other.xml"),
        "not where it is served",
    ),
    "no self link": (_remove(f"channel/{ATOM}link"), 'missing <atom:link rel="self">'),
    "author without e-mail": (
        lambda root: etree.SubElement(_first(root, ITEM), "author").__setattr__("text", "Jane"),
        "email (Name)",
    ),
    "markup-like title without hex references": (
        _set_text(f"{ITEM}/title", "Use <b> for bold"),
        "item 1 title: plain text looks like HTML",
    ),
    "missing language": (_remove("channel/language"), "missing <language>"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_RSS))
def test_rss_checker_reports_broken_feeds(case: str) -> None:
    edit, expected = BROKEN_RSS[case]
    valid = render_rss(INFO, tricky_entries())
    problems = check_rss(_edit_xml(valid, edit), INFO.urls["rss"])
    assert any(expected in problem for problem in problems), problems


ENTRY = f"{ATOM}entry"
BROKEN_ATOM: dict[str, tuple[Callable[[etree._Element], None], str]] = {
    "missing id": (_remove(f"{ENTRY}/{ATOM}id"), "missing <id>"),
    "duplicate id": (_copy_second_as_first(ENTRY, f"{ATOM}id"), "shared by 2 entries"),
    "duplicate updated": (_copy_second_as_first(ENTRY, f"{ATOM}updated"), "entry updated"),
    "RFC 822 updated": (
        _set_text(f"{ENTRY}/{ATOM}updated", "Thu, 20 Aug 2015 09:09:00 +0000"),
        "not an RFC 3339 date",
    ),
    "date without zone": (
        _set_text(f"{ENTRY}/{ATOM}published", "2015-08-20T09:09:00"),
        "not an RFC 3339 date",
    ),
    "second alternate link (feedgen's enclosure bug)": (
        _add_link(ENTRY, type="text/html", href="https://example.org/media/tax.jpg"),
        "rel=alternate links",
    ),
    "enclosure without type": (
        _add_link(ENTRY, rel="enclosure", href="https://example.org/a.mp3"),
        "enclosure link without type",
    ),
    "raw HTML in content": (
        _raw_child(f"{ENTRY}/{ATOM}content", "<p>raw</p>"),
        "raw markup",
    ),
    "script in content": (
        _set_text(f"{ENTRY}/{ATOM}content", "<script>alert(1)</script>"),
        "<script>",
    ),
    "relative src in content": (
        _set_text(f"{ENTRY}/{ATOM}content", '<img src="/media/x.png" alt="">'),
        "relative URL",
    ),
    "self link elsewhere": (
        _set_attribute(f"{ATOM}link", "href", "https://example.org/elsewhere"),
        "not where it is served",
    ),
    "no author anywhere": (_remove(f"{ATOM}author"), "no author"),
    "end tag in a text title": (
        _set_text(f"{ENTRY}/{ATOM}title", "A </b> title"),
        "HTML end tag",
    ),
    "relative id": (_set_text(f"{ENTRY}/{ATOM}id", "2015/story-9"), "not an absolute URI"),
    "id with a needless escape": (
        _set_text(f"{ENTRY}/{ATOM}id", "tag:example.org,2015:2015%2Fstory-9"),
        "needlessly",
    ),
    "http id with default port": (
        _set_text(f"{ENTRY}/{ATOM}id", "https://example.org:443/2015/story-9"),
        "canonical form",
    ),
    "tag id with a space": (
        _set_text(f"{ENTRY}/{ATOM}id", "tag:example.org,2015:a b"),
        "not an absolute URI",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ATOM))
def test_atom_checker_reports_broken_feeds(case: str) -> None:
    edit, expected = BROKEN_ATOM[case]
    valid = render_atom(INFO, tricky_entries())
    problems = check_atom(_edit_xml(valid, edit), INFO.urls["atom"])
    assert any(expected in problem for problem in problems), problems


def test_xml_checkers_report_forbidden_characters_and_bad_xml() -> None:
    valid = render_rss(INFO, tricky_entries())
    with_reference = valid.replace(b"<title>Story 8</title>", b"<title>Story&#1; 8</title>")
    assert any("not well-formed" in p for p in check_rss(with_reference, INFO.urls["rss"]))
    with_c1 = valid.replace(b"<title>Story 8</title>", "<title>Story\x85 8</title>".encode())
    assert any("U+0085" in p for p in check_rss(with_c1, INFO.urls["rss"]))
    assert check_atom(b"<feed>", INFO.urls["atom"])
    assert check_atom(valid, INFO.urls["atom"])  # RSS is not Atom


def _edit_json(edit: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(render_json(INFO, tricky_entries()))
    edit(document)
    return json.dumps(document).encode()


BROKEN_JSON: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "version 1.0": (lambda f: f.update(version="https://jsonfeed.org/version/1"), "version"),
    "duplicate id": (
        lambda f: f["items"][1].update(id=f["items"][0]["id"]),
        "used by 2 items",
    ),
    "no content": (lambda f: f["items"][0].pop("content_html"), "schema"),
    "ISO date without zone": (
        lambda f: f["items"][0].update(date_published="2015-08-20T09:09:00"),
        "date_published",
    ),
    "relative url": (lambda f: f["items"][0].update(url="/2015/story-9"), "url"),
    "script in content": (
        lambda f: f["items"][0].update(content_html="<script>x</script>"),
        "<script>",
    ),
    "feed_url elsewhere": (
        lambda f: f.update(feed_url="https://example.org/x.json"),
        "not where it is served",
    ),
    "unknown key": (lambda f: f["items"][0].update(colour="red"), "schema"),
    "id not a string": (lambda f: f["items"][0].update(id=9), "schema"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_JSON))
@pytest.mark.usefixtures("json_schema")
def test_json_checker_reports_broken_feeds(case: str) -> None:
    edit, expected = BROKEN_JSON[case]
    problems = check_json(_edit_json(edit), INFO.urls["json"])
    assert any(expected in problem for problem in problems), problems


# -- real readers ---------------------------------------------------------------------------


def _expected(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """What every reader should show: title, link, id and publication date per item."""
    return [
        {
            "title": " ".join(UNSAFE_CHARACTERS.sub("", e.article.title).split()),
            "link": e.article.url,
            "id": e.guid,
            "date": e.article.published,
        }
        for e in entries
    ]


def _seen(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: item[key] for key in ("title", "link", "id", "date")} for item in items]


@pytest.mark.readers
@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_feedparser_reads_every_item(kind: str) -> None:
    entries = tricky_entries()
    items = feedparser_items(render(kind, entries))
    assert _seen(items) == _expected(entries)
    assert items[0]["enclosures"][0]["href"] == "https://example.org/media/tax.jpg"
    assert items[0]["enclosures"][0]["type"] == "image/jpeg"
    assert items[0]["tags"] == ["Business", "Économie", "tax", "AT&T"]
    assert [item["authors"] for item in items][2:4] == [[], ["Ann", "Bob"]]


@pytest.mark.readers
@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_sfeed_prints_every_item(kind: str) -> None:
    entries = tricky_entries()
    items = sfeed_items(render(kind, entries))
    assert _seen(items) == _expected(entries)
    assert items[0]["enclosure"] == "https://example.org/media/tax.jpg"
    assert items[0]["content_type"] == "html"
    assert items[0]["content"] == entries[0].content_html
    assert items[0]["categories"] == ["Business", "Économie", "tax", "AT&T"]


@pytest.mark.readers
@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_newsboat_fetches_every_item_over_http(kind: str, tmp_path: Path) -> None:
    entries = tricky_entries()
    feed = Resource(render(kind, entries), MEDIA_TYPES[kind])
    with loopback_server({f"/feed.{kind}": feed}) as server:
        items = newsboat_items(server.url(f"/feed.{kind}"), tmp_path / kind)
    by_id = {item["id"]: item for item in _seen(items)}
    assert by_id == {item["id"]: item for item in _expected(entries)}
    assert [path for path, _ in server.requests] == [f"/feed.{kind}"]


def test_atom_updated_made_distinct_never_falls_before_published() -> None:
    """Pages dated by the day only: several articles published (and not revised) at the same
    midnight. A repeated ``updated`` moved back would say the entry changed before it was
    published; it moves forward instead, and the feed's own date covers it."""
    midnight = datetime(2015, 8, 20, tzinfo=UTC)
    entries = [_entry(_article(n, published=midnight, updated=midnight)) for n in range(1, 4)] + [
        _entry(_article(4, published=midnight - timedelta(days=1), updated=midnight))
    ]
    feed = _xml(render_atom(INFO, entries))
    dates = [
        (e.findtext(f"{ATOM}published"), e.findtext(f"{ATOM}updated"))
        for e in feed.iter(f"{ATOM}entry")
    ]
    assert dates == [
        ("2015-08-20T00:00:00+00:00", "2015-08-20T00:00:00+00:00"),
        ("2015-08-20T00:00:00+00:00", "2015-08-20T00:00:01+00:00"),
        ("2015-08-20T00:00:00+00:00", "2015-08-20T00:00:02+00:00"),
        ("2015-08-19T00:00:00+00:00", "2015-08-19T23:59:59+00:00"),
    ]
    assert feed.findtext(f"{ATOM}updated") == "2015-08-20T00:00:02+00:00"
    assert render_atom(INFO, entries) == render_atom(INFO, entries)
    assert check_atom(render_atom(INFO, entries), INFO.urls["atom"]) == []
