"""The leak-free cmark-gfm driver renders exactly what cmarkgfm's wrapper renders."""

from __future__ import annotations

import resource

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from newsbot.render import cmark as markdown_c

CASES = [
    "plain *emphasis* and **strong**",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "~~gone~~ and https://example.org/x?y=1 autolinked",
    "<figure><img src=x.jpg></figure>\n\nraw HTML kept",
    "# Heading\n\n- list\n- items\n\n> quote",
    "é ü 漢字 🇫🇷 emoji",
    "",
]


@pytest.mark.parametrize("text", CASES)
def test_same_html_as_the_cmarkgfm_wrapper(text: str) -> None:
    expected = cmarkgfm.markdown_to_html_with_extensions(
        text, options=Options.CMARK_OPT_UNSAFE, extensions=list(markdown_c.EXTENSIONS)
    )
    assert markdown_c.to_html(text) == expected


def test_memory_does_not_grow_with_renders() -> None:
    text = "A paragraph with *emphasis* and a [link](https://example.org/).\n\n" * 200
    markdown_c.to_html(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3000):
        markdown_c.to_html(text)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # The wrapper leaks the tree and the string, ~100 KB per render of this text (300 MB here).
    assert grown_kib < 20_000
