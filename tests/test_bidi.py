"""Bidirectional controls balanced: a table of texts and what each becomes.

``outputcheck.balanced`` (written from UAX #9, apart from newsbot's code) must
hold for every result, and balanced text must come back unchanged.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsbot.bidi import MAX_DEPTH, balance, is_balanced
from newsbot.render import bodies as html
from support.outputcheck import balanced

LRE, RLE, PDF, LRO, RLO = "\u202a\u202b\u202c\u202d\u202e"
LRI, RLI, FSI, PDI = "\u2066\u2067\u2068\u2069"
LRM, RLM, ALM = "\u200e\u200f\u061c"

CASES = [
    ("plain text", "plain text"),
    (f"{RLO}left open", f"{RLO}left open{PDF}"),
    (f"{RLI}name{PDI} said", f"{RLI}name{PDI} said"),
    (f"stray {PDF} and {PDI}", "stray  and "),
    (f"{LRI}{RLO}a{PDI}b", f"{LRI}{RLO}a{PDF}{PDI}b"),  # a PDI closes what opened inside
    (f"{RLO}{LRI}a{PDF}b", f"{RLO}{LRI}ab{PDI}{PDF}"),  # a PDF does not reach past an isolate
    (f"{LRE}{RLE}x{PDF}y", f"{LRE}{RLE}x{PDF}y{PDF}"),
    (f"{FSI}{FSI}x{PDI}", f"{FSI}{FSI}x{PDI}{PDI}"),
    (f"{LRM}marks{RLM} stay{ALM}", f"{LRM}marks{RLM} stay{ALM}"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_balance(text: str, expected: str) -> None:
    assert balance(text) == expected
    assert balanced(expected)
    assert is_balanced(expected)
    assert balance(expected) == expected


def test_openers_past_the_depth_unicode_honours_are_dropped_with_their_terminators() -> None:
    deep = RLE * (MAX_DEPTH + 5) + "x" + PDF * (MAX_DEPTH + 5)
    assert balance(deep) == RLE * MAX_DEPTH + "x" + PDF * MAX_DEPTH


BIDI_TEXT = st.text(st.sampled_from(["a", " ", "\n", LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI]))


@given(BIDI_TEXT)
def test_any_text_comes_out_balanced_and_stays_so(text: str) -> None:
    result = balance(text)
    assert balanced(result)
    assert balance(result) == result
    assert result.replace(PDF, "").replace(PDI, "").count("a") == text.count("a")


@given(BIDI_TEXT, BIDI_TEXT)
def test_html_blocks_and_attributes_come_out_balanced(first: str, second: str) -> None:
    span = f'<span title="{first}">{second}</span>'
    markdown = f"{first}\n\n* {second}\n* {span}\n\n| {first} |\n|-|\n"
    rendered = html.render(markdown, "https://news.example.org/a/")
    assert balanced(rendered)
    for block in html.paragraphs(rendered):
        assert balanced(block)
