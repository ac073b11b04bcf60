"""Statuses: counting as Mastodon counts, composing within the limit, hashtags, keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsbot.articles import Article
from newsbot.bidi import balance
from newsbot.errors import NewsbotError
from newsbot.mastodon.length import count
from newsbot.publish.compose import (
    DEFAULT_TEMPLATE,
    MIN_SUMMARY,
    WORD_JOINER,
    Composed,
    ComposeError,
    PostPolicy,
    RelatedLink,
    compose,
    format_dry_run,
    hashtags,
    idempotency_key,
)
from newsbot.summaries import ELLIPSIS, Leads, grapheme_length

WHEN = datetime(2015, 8, 20, 12, tzinfo=UTC)
LINK = "https://www.france24.com/en/20150820-france-uk-calais-cooperation-agreement-migrants"
HEADLINE = "France and UK sign Calais cooperation agreement"
SUMMARY = (
    "French Interior Minister Bernard Cazeneuve and his British counterpart Theresa May signed "
    "a deal on Thursday to set up a joint crisis centre aimed at tackling people smugglers in "
    "Calais."
)
RELATED = (
    RelatedLink("Calais migrants: UK to fund new fences", "https://www.france24.com/en/calais-1"),
    RelatedLink("Eurotunnel asks for compensation", "https://www.france24.com/en/eurotunnel-2"),
    RelatedLink("Migrant crosses Channel Tunnel on foot", "https://www.france24.com/en/tunnel-3"),
)


def make_article(**changes: object) -> Article:
    article = Article(
        id="2015/france-uk-calais",
        path="2015/france-uk-calais.md",
        title=HEADLINE,
        published=WHEN,
        updated=WHEN,
        body="",
        url=LINK,
        summary=SUMMARY,
        tags=("Calais", "migrants", "United Kingdom", "COVID-19"),
        lang="en",
    )
    return replace(article, **changes)  # type: ignore[arg-type]


def full_length(article: Article, policy: PostPolicy, url_length: int | None = 23) -> int:
    """The length of the status with nothing dropped (composed against a huge limit)."""
    return compose(article, "", RELATED, policy, 100_000, url_length).length


# -- count ---------------------------------------------------------------------------------

LONG_URL = "https://example.com/" + "a/" * 100 + "article.html"


@pytest.mark.parametrize(
    ("text", "spoiler", "url_length", "expected"),
    [
        pytest.param("Hello", "", 23, 5, id="plain"),
        pytest.param("", "", 23, 0, id="empty"),
        pytest.param(LONG_URL, "", 23, 23, id="long URL is 23"),
        pytest.param("https://a.co", "", 23, 23, id="short URL is 23 too"),
        pytest.param(LONG_URL, "", 256, 256, id="reserved 256"),
        pytest.param(LONG_URL, "", None, len(LONG_URL), id="URL in full"),
        pytest.param(f"Read {LONG_URL}.", "", 23, 5 + 23 + 1, id="trailing full stop"),
        pytest.param(f"({LONG_URL}), then", "", 23, 1 + 23 + 7, id="trailing paren, comma"),
        pytest.param("(https://en.wikipedia.org/wiki/Foo_(bar))", "", 23, 25, id="balanced parens"),
        pytest.param("https://example.com/?q=1&x=2.", "", 23, 24, id="query, trailing dot"),
        pytest.param("https://example.com:8080/a!", "", 23, 24, id="port, trailing !"),
        pytest.param(f"{LONG_URL} {LONG_URL}", "", 23, 47, id="two URLs"),
        pytest.param("example.com/no-scheme", "", 23, 21, id="no scheme: in full"),
        pytest.param("xhttps://example.com/a", "", 23, 22, id="glued to a word: in full"),
        pytest.param("https://localhost/a", "", 23, 19, id="no TLD: in full"),
        pytest.param("@user@mastodon.social hi", "", 23, 8, id="remote mention as @user"),
        pytest.param("@user@mastodon.social hi", "", None, 24, id="as written: mention whole"),
        pytest.param("@user hi", "", 23, 8, id="local mention"),
        pytest.param("Hi @Gargron@mastodon.social!", "", 23, 12, id="mention then !"),
        pytest.param("mail bob@example.com", "", 23, 20, id="e-mail is not a mention"),
        pytest.param("@josé", "", 23, 5, id="accent after the name: not a mention"),
        pytest.param("#Hashtags #count #in_full", "", 23, 25, id="hashtags in full"),
        pytest.param("🇫🇷👍🏽👨‍👩‍👧", "", 23, 3, id="flag, skin tone, ZWJ family"),
        pytest.param("e\u0301te\u0301", "", 23, 3, id="combining accents"),
        pytest.param("क्षत्रिय", "", 23, 5, id="conjuncts apart (Ruby 3.4, Unicode 15.0)"),
        pytest.param("स्त्री", "क्ष", 23, 3 + 2, id="conjuncts in the spoiler too"),
        pytest.param("क्\u200cष", "", 23, 2, id="ZWNJ: no conjunct anyway"),
        pytest.param("Hello", "CW", 23, 7, id="spoiler counts"),
        pytest.param("x", "https://example.com", 23, 20, id="URL in spoiler in full"),
        pytest.param("  Hello \n", " CW ", 23, 7, id="both stripped"),
        pytest.param(" \n ", "CW", 23, 2, id="blank text"),
        pytest.param("🇫🇷 " + LONG_URL, "⚠️", 23, 1 + 1 + 1 + 23, id="everything"),
    ],
)
def test_count(text: str, spoiler: str, url_length: int | None, expected: int) -> None:
    assert count(text, spoiler, url_length) == expected


# -- compose: the layout -------------------------------------------------------------------


def test_default_layout() -> None:
    composed = compose(make_article(), "", RELATED[:1], PostPolicy(), 500, 23)
    assert composed.text == (
        f"{HEADLINE}\n\n{SUMMARY}\n\n{LINK}\n\n"
        f"Related:\n→ {RELATED[0].title} {RELATED[0].url}\n\n"
        "#Calais #migrants #UnitedKingdom #COVID19"
    )
    assert composed.length == count(composed.text, "", 23) <= 500
    assert composed.limit == 500
    assert composed.language == "en"
    assert composed.spoiler_text == ""
    assert composed.reply_text is None


def test_empty_placeholders_leave_no_blank_lines() -> None:
    article = make_article(summary="", tags=())
    composed = compose(article, "", [], PostPolicy(), 500, 23)
    assert composed.text == f"{HEADLINE}\n\n{LINK}"


def test_custom_template_and_empty_placeholder() -> None:
    policy = PostPolicy(template="{headline} {summary} {link}\n{hashtags}", hashtags=False)
    composed = compose(make_article(summary=""), "", [], policy, 500, 23)
    assert composed.text == f"{HEADLINE} {LINK}"


def test_lead_when_the_article_has_no_summary() -> None:
    text = SUMMARY + " Under the agreement, a second facility will also be built."
    composed = compose(make_article(summary=""), text, [], PostPolicy(lead_length=200), 500, 23)
    assert f"\n\n{SUMMARY}\n\n" in composed.text


def _unread() -> str:
    raise AssertionError("the text was made although its leads were kept")


@pytest.mark.parametrize(
    ("leads", "language", "expected"),
    [
        pytest.param(Leads(200, {"en": ("Kept.",)}), "en-GB", "Kept.", id="kept: text unread"),
        pytest.param(Leads(200, {"fr": ("Gardé.",)}), "en", SUMMARY, id="other language"),
        pytest.param(Leads(100, {"en": ("Kept.",)}), "en", SUMMARY, id="other budget"),
        pytest.param(None, "en", SUMMARY, id="none kept"),
    ],
)
def test_a_lead_kept_by_the_build_is_taken_as_it_is(
    leads: Leads | None, language: str, expected: str
) -> None:
    text = SUMMARY + " Under the agreement, a second facility will also be built."
    lead_text = _unread if expected == "Kept." else (lambda: text)
    article = make_article(summary="", lang=language)
    policy = PostPolicy(lead_length=200)
    composed = compose(article, lead_text, [], policy, 500, 23, leads=leads)
    assert f"\n\n{expected}\n\n" in composed.text


def test_own_summary_wins_over_lead() -> None:
    composed = compose(make_article(summary="Short."), SUMMARY, [], PostPolicy(), 500, 23)
    assert "\n\nShort.\n\n" in composed.text
    assert SUMMARY not in composed.text


def test_headline_and_summary_become_one_line() -> None:
    article = make_article(title="France and UK\nsign  agreement", summary="One\n\ntwo.")
    composed = compose(article, "", [], PostPolicy(hashtags=False), 500, 23)
    assert composed.text == f"France and UK sign agreement\n\nOne two.\n\n{LINK}"


@pytest.mark.parametrize(
    ("article_lang", "policy_lang", "expected"),
    [("en", "fr", "en"), ("en-GB", None, "en"), ("pt_BR", None, "pt"), (None, "fr", "fr"),
     (None, "fr-CA", "fr"), (None, None, None), ("", None, None),
     ("fil", "en", None), (None, "haw", None), ("EN_us", None, "en")],
)  # fmt: skip
def test_language(article_lang: str | None, policy_lang: str | None, expected: str | None) -> None:
    composed = compose(
        make_article(lang=article_lang), "", [], PostPolicy(language=policy_lang), 500, 23
    )
    assert composed.language == expected


def test_content_warning_is_the_spoiler_and_counts() -> None:
    warning = "Death, violence"
    plain = compose(make_article(), "", [], PostPolicy(), 500, 23)
    warned = compose(make_article(content_warning=warning), "", [], PostPolicy(), 500, 23)
    assert warned.spoiler_text == warning
    assert warned.text == plain.text
    assert warned.length == plain.length + len(warning)


def test_no_accidental_mentions_or_hashtags() -> None:
    article = make_article(
        title="Talks with @EU_Commission on #Brexit, mail press@example.com",
        summary="Ask @someone@example.social about C# and #1 hits.",
        tags=(),
    )
    text = compose(article, "", [], PostPolicy(), 500, 23).text
    assert f"@{WORD_JOINER}EU_Commission" in text
    assert f"#{WORD_JOINER}Brexit" in text
    assert f"@{WORD_JOINER}someone@example.social" in text
    assert "press@example.com" in text  # not a mention for the server either: untouched
    assert "C# and #1 hits" in text  # neither is a hashtag
    # Nothing but the link is an entity any more: everything else counts in full.
    assert count(text, "", 23) == grapheme_length(text) - len(LINK) + 23


# -- compose: fitting the limit ------------------------------------------------------------


def test_fits_exactly_at_the_limit() -> None:
    policy = PostPolicy()
    limit = full_length(make_article(), policy)
    at_limit = compose(make_article(), "", RELATED, policy, limit, 23)
    assert at_limit.length == limit
    assert all(link.title in at_limit.text for link in RELATED)
    # One character less: a related headline shortens (its link stays).
    below = compose(make_article(), "", RELATED, policy, limit - 1, 23)
    assert below.length <= limit - 1
    assert all(link.url in below.text for link in RELATED)
    assert ELLIPSIS + " https://" in below.text


def test_summary_shortens_to_its_first_sentence_before_related_links_change() -> None:
    two_sentences = "The deal was signed on Thursday. " + SUMMARY
    article = make_article(summary=two_sentences)
    policy = PostPolicy()
    limit = full_length(article, policy) - 20
    composed = compose(article, "", RELATED, policy, limit, 23)
    assert all(f"→ {link.title} {link.url}" in composed.text for link in RELATED)
    summary = composed.text.split("\n\n")[1]
    assert summary.endswith(ELLIPSIS) and summary.startswith("The deal was signed on Thursday.")
    assert composed.length <= limit
    # Less room than the first sentence leaves: headlines shorten, never inside a word.
    floor_limit = full_length(replace(article, summary="The deal was signed on Thursday."), policy)
    composed = compose(article, "", RELATED, policy, floor_limit - 15, 23)
    assert composed.text.split("\n\n")[1] == "The deal was signed on Thursday."
    assert all(link.url in composed.text for link in RELATED)
    for line in composed.text.splitlines():
        if line.startswith("→ ") and ELLIPSIS in line:
            title = line[2:].split(ELLIPSIS)[0]
            original = next(link.title for link in RELATED if link.title.startswith(title))
            assert original[len(title)] == " ", "cut inside a word"
    assert composed.length <= floor_limit - 15


def test_related_links_drop_from_the_end_only_after_headlines_shortened() -> None:
    policy = PostPolicy(related_in="post")
    limit = full_length(make_article(), policy) - 60
    composed = compose(make_article(), "", RELATED, policy, limit, 23)
    assert RELATED[0].url in composed.text
    assert RELATED[1].url in composed.text
    assert RELATED[2].url not in composed.text
    assert SUMMARY in composed.text
    assert composed.text.endswith("#Calais #migrants #UnitedKingdom #COVID19")
    assert composed.related == tuple(
        link for link in composed.related if link.url in (RELATED[0].url, RELATED[1].url)
    )


def test_auto_moves_related_links_to_a_reply_when_fewer_than_two_fit() -> None:
    long_url = "https://www.france24.com/en/" + "a-long-article-slug-" * 4
    related = [RelatedLink(link.title, long_url + str(i)) for i, link in enumerate(RELATED)]
    composed = compose(make_article(), "", related, PostPolicy(), 500, None)
    assert "Related:" not in composed.text and SUMMARY in composed.text
    assert composed.reply_text is not None
    assert composed.reply_text.count("→") == 3
    assert composed.length <= 500 and composed.reply_length <= 500
    forced = compose(make_article(), "", related, PostPolicy(related_in="post"), 500, None)
    assert forced.reply_text is None and forced.text.count("→") < 2


def test_then_shortens_the_summary() -> None:
    policy = PostPolicy(related_in="post")
    without_related = compose(make_article(), "", [], policy, 500, 23).length
    composed = compose(make_article(), "", RELATED, policy, without_related - 40, 23)
    assert "Related:" not in composed.text
    summary = composed.text.split("\n\n")[1]
    assert summary.endswith(ELLIPSIS)
    assert SUMMARY.startswith(summary.removesuffix(ELLIPSIS))
    assert SUMMARY[len(summary) - 1] == " ", "cut inside a word"
    assert composed.text.startswith(f"{HEADLINE}\n\n")
    assert f"\n\n{LINK}\n\n" in composed.text
    assert composed.text.endswith("#Calais #migrants #UnitedKingdom #COVID19")
    assert composed.length <= without_related - 40


def test_then_drops_hashtags_then_the_summary() -> None:
    policy = PostPolicy()
    bare = grapheme_length(f"{HEADLINE}\n\n") + 23
    # Room for a summary of MIN_SUMMARY characters or more only once two hashtags are gone.
    summary = "French Interior Minister Bernard…"
    assert len(summary) >= MIN_SUMMARY > len(" #UnitedKingdom")
    limit = bare + len("\n\n#Calais #migrants") + 2 + len(summary)
    composed = compose(make_article(), "", RELATED, policy, limit, 23)
    assert composed.text == f"{HEADLINE}\n\n{summary}\n\n{LINK}\n\n#Calais #migrants"
    assert composed.length == limit
    # No room for a summary at all: the hashtags come back as far as they fit.
    composed = compose(make_article(), "", RELATED, policy, bare + 20, 23)
    assert composed.text == f"{HEADLINE}\n\n{LINK}\n\n#Calais #migrants"


@pytest.mark.parametrize("limit", [72, 75, 100, 150, 200, 300, 400, 500])
def test_headline_and_link_stay_whole(limit: int) -> None:
    composed = compose(make_article(), "", RELATED, PostPolicy(), limit, 23)
    assert composed.text.startswith(HEADLINE + "\n\n")
    assert LINK in composed.text
    assert composed.length <= limit


def test_over_long_headline_is_shortened_with_an_ellipsis() -> None:
    title = " ".join(["Calais"] * 100)  # 699 characters
    composed = compose(make_article(title=title), "", RELATED, PostPolicy(), 500, 23)
    headline, link = composed.text.split("\n\n")
    assert headline.endswith(ELLIPSIS)
    assert title.startswith(headline.removesuffix(ELLIPSIS) + " ")
    assert link == LINK
    assert 500 - len("Calais ") < composed.length <= 500  # cut between two words


def test_link_and_warning_over_the_limit_is_an_error() -> None:
    article = make_article(content_warning="x" * 490)
    with pytest.raises(ComposeError, match="exceed 500") as refused:
        compose(article, "", [], PostPolicy(), 500, 23)
    assert isinstance(refused.value, NewsbotError) and refused.value.article_id == article.id


def test_limits_of_different_servers() -> None:
    policy = PostPolicy()
    big = compose(make_article(), "", RELATED, policy, 10_000, 256)
    assert all(link.url in big.text for link in RELATED)
    assert big.length == count(big.text, "", 256) > 5 * 256
    mastodon = compose(make_article(), "", RELATED, policy, 500, 23)
    in_full = compose(make_article(), "", RELATED, policy, 500, None)
    assert mastodon.length <= 500
    assert count(in_full.text, "", None) == in_full.length <= 500
    assert in_full.text.count("→") < mastodon.text.count("→")


def test_url_length_none_is_shown() -> None:
    composed = compose(make_article(), "", [], PostPolicy(), 500, None)
    assert composed.url_length is None
    assert composed.length == count(composed.text, "", None)


# -- compose: related links in a reply -----------------------------------------------------


def test_reply_mode_moves_related_links_to_the_reply() -> None:
    policy = PostPolicy(related_in="reply")
    composed = compose(make_article(), "", RELATED, policy, 500, 23)
    assert "Related:" not in composed.text
    assert SUMMARY in composed.text
    assert composed.reply_text == "Related:\n" + "\n".join(
        f"→ {link.title} {link.url}" for link in RELATED
    )


def test_reply_is_within_the_limit_too() -> None:
    policy = PostPolicy(related_in="reply", related_label="À lire aussi :")
    composed = compose(make_article(content_warning="CW"), "", RELATED, policy, 100, 23)
    assert composed.reply_text is not None
    assert composed.reply_text.startswith("À lire aussi :\n→ ")
    assert count(composed.reply_text, "CW", 23) <= 100
    assert RELATED[-1].url not in composed.reply_text


def test_related_link_to_the_article_itself_is_skipped() -> None:
    itself = RelatedLink("Same article", LINK)
    composed = compose(make_article(), "", [itself, RELATED[0]], PostPolicy(), 500, 23)
    assert composed.text.count(LINK) == 1
    assert RELATED[0].url in composed.text


def test_reply_mode_without_related_links() -> None:
    policy = PostPolicy(related_in="reply")
    assert compose(make_article(), "", [], policy, 500, 23).reply_text is None


# -- policy --------------------------------------------------------------------------------


def test_default_template() -> None:
    assert PostPolicy().template == DEFAULT_TEMPLATE


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{headline} {url}", "unknown placeholder"),
        ("{headline} {}", "unknown placeholder"),
        ("{headline}\n\n{summary}", "must place {link}"),
        ("{headline:>20} {link}", "no format spec"),
        ("{headline!r} {link}", "no format spec"),
        ("{headline {link}", "unexpected '{'"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostPolicy(template=template)


def test_hashtags_can_be_turned_off_or_limited() -> None:
    off = compose(make_article(), "", [], PostPolicy(hashtags=False), 500, 23)
    assert "#" not in off.text
    two = compose(make_article(), "", [], PostPolicy(max_hashtags=2), 500, 23)
    assert two.text.endswith(f"{LINK}\n\n#Calais #migrants")


# -- hashtags ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["COVID-19"], ["#COVID19"]),
        (["climate change"], ["#ClimateChange"]),
        (["New York City"], ["#NewYorkCity"]),
        (["iPhone"], ["#iPhone"]),
        (["e-mail"], ["#email"]),
        (["Émile Zola"], ["#ÉmileZola"]),
        (["Union européenne"], ["#UnionEuropéenne"]),
        (["日本"], ["#日本"]),
        (["हिन्दी भाषा"], ["#हिन्दीभाषा"]),  # combining vowel signs are word characters
        (["#already"], ["#already"]),
        (["snake_case"], ["#snake_case"]),
        (["2020", "1,000", "_", "!!", "", "  "], []),  # empty or no letter
        (["4G"], ["#4G"]),
        (["Calais", "calais", "CALAIS"], ["#Calais"]),  # duplicates, ignoring case
        (["COVID-19", "covid 19"], ["#COVID19"]),
        (["a", "b", "c", "d", "e"], ["#a", "#b", "#c", "#d"]),  # limit
    ],
)
def test_hashtags(tags: list[str], expected: list[str]) -> None:
    assert hashtags(tags, 4) == expected


def test_hashtags_limit_counts_only_kept_tags() -> None:
    assert hashtags(["2020", "Paris", "paris", "London"], 2) == ["#Paris", "#London"]
    assert hashtags(["Paris"], 0) == []


# -- idempotency key -----------------------------------------------------------------------


def test_idempotency_key_is_deterministic() -> None:
    key = idempotency_key("mastodon.social", "2015/calais", "r1")
    assert key == idempotency_key("mastodon.social", "2015/calais", "r1")
    assert len(key) <= 64
    assert key.isascii() and key.isalnum()


@pytest.mark.parametrize(
    "other",
    [
        ("other.example", "2015/calais", "r1"),
        ("mastodon.social", "2015/calais-2", "r1"),
        ("mastodon.social", "2015/calais", "r2"),
        ("mastodon.social/2015", "calais", "r1"),  # joined naively, these would collide
        ("mastodon.social", "2015/calais", "r1:reply"),
    ],
)
def test_idempotency_key_differs_per_target_article_revision(other: tuple[str, str, str]) -> None:
    assert idempotency_key(*other) != idempotency_key("mastodon.social", "2015/calais", "r1")


# -- dry run -------------------------------------------------------------------------------


def test_format_dry_run() -> None:
    composed = Composed(
        text="Headline\n\nhttps://example.com/a",
        spoiler_text="",
        language="en",
        length=33,
        limit=500,
        reply_text=None,
        url_length=23,
    )
    assert format_dry_run(composed) == (
        "Headline\n\nhttps://example.com/a\n"
        "— 33/500 characters (URLs counted as 23), language en"
    )


def test_format_dry_run_with_warning_reply_and_full_urls() -> None:
    composed = compose(
        make_article(content_warning="Violence", lang=None),
        "",
        RELATED[:1],
        PostPolicy(related_in="reply"),
        500,
        None,
    )
    shown = format_dry_run(composed)
    assert shown.startswith(f"CW: Violence\n{HEADLINE}\n")
    assert (
        f"— {composed.length}/500 characters (URLs counted in full, content warning included), "
        "language unset\n\n↳ reply:\nRelated:\n→ "
    ) in shown
    reply_length = count(composed.reply_text or "", "Violence", None)
    assert shown.endswith(f"— {reply_length}/500 characters (URLs counted in full, content "
                          "warning included), language unset")  # fmt: skip


# -- property: whatever the input, the status fits and carries the link ---------------------

TEXT = st.lists(
    st.one_of(
        st.characters(categories=("L", "N", "P", "S", "Zs", "M")),
        st.sampled_from(["@", "#", " ", "\n", "🇫🇷", "👍🏽", "👨‍👩‍👧", "https://x.org/a", "@a@b.c"]),
    ),
    max_size=150,
).map("".join)
URL = st.from_regex(r"https://[a-z]{1,12}\.(com|org|fr)/[a-z0-9/_.-]{0,120}", fullmatch=True)
RELATED_LINKS = st.lists(st.builds(RelatedLink, title=TEXT, url=URL), max_size=6)
TAGS = st.lists(st.text(max_size=20), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=TEXT,
    summary=TEXT,
    lead_text=TEXT,
    link=URL,
    related=RELATED_LINKS,
    tags=TAGS,
    warning=st.one_of(st.none(), st.text(max_size=40)),
    url_length=st.sampled_from([23, 32, 256, None]),
    related_in=st.sampled_from(["post", "reply"]),
    data=st.data(),
)
def test_compose_always_fits_and_keeps_the_link(
    title: str,
    summary: str,
    lead_text: str,
    link: str,
    related: list[RelatedLink],
    tags: list[str],
    warning: str | None,
    url_length: int | None,
    related_in: str,
    data: st.DataObject,
) -> None:
    article = make_article(
        title=title, summary=summary, url=link, tags=tuple(tags), content_warning=warning
    )
    policy = PostPolicy(related_in="reply" if related_in == "reply" else "post")
    spoiler = balance(" ".join((warning or "").split()))
    least = count(link, spoiler, url_length) + len("\n\n…")
    limit = data.draw(st.integers(min_value=least, max_value=least + 1200), label="limit")

    composed = compose(article, lead_text, related, policy, limit, url_length)

    assert composed.length == count(composed.text, composed.spoiler_text, url_length)
    assert composed.length <= limit
    assert link in composed.text.split()
    if composed.reply_text is not None:
        assert count(composed.reply_text, composed.spoiler_text, url_length) <= limit
