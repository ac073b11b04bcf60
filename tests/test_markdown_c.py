"""The leak-free cmark-gfm driver renders exactly what cmarkgfm's wrapper renders."""

from __future__ import annotations

import re
import resource
import tomllib
from importlib import metadata
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from newsbot.render import cmark as markdown_c
from newsbot.store.frontmatter import split

REPO = Path(__file__).resolve().parent.parent
SAMPLE_BODIES = sorted(
    path.relative_to(REPO).as_posix()
    for path in (REPO / "content").rglob("*")
    if path.suffix == ".md"
)

CASES = [
    "plain *emphasis* and **strong**",
    "| a | b |\n|---|---|\n| 1 | 2 |",
    "~~gone~~ and https://example.org/x?y=1 autolinked",
    "<figure><img src=x.jpg></figure>\n\nraw HTML kept",
    "# Heading\n\n- list\n- items\n\n> quote",
    "é ü 漢字 🇫🇷 emoji",
    "",
]
NONCHARACTER_REFERENCES = "a &#xfffe; b &#xFFFF; c &#65534; d"


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


def test_the_driver_is_proven_here() -> None:
    # CPython with a pinned cmarkgfm: the other tests exercise the driver, not the fallback.
    assert markdown_c.driver() is not None


def test_the_pin_is_the_range_the_driver_was_proven_on() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pin = next(d for d in project["project"]["dependencies"] if d.startswith("cmarkgfm"))
    oldest, newest = markdown_c.PROVEN
    assert pin == f"cmarkgfm>={'.'.join(map(str, oldest))},<={'.'.join(map(str, newest))}"
    installed = markdown_c.release(metadata.version("cmarkgfm"))
    assert installed is not None and oldest <= installed <= newest
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    locked = re.search(r"^cmarkgfm==(\S+)$", lock, re.MULTILINE)
    assert locked is not None
    release = markdown_c.release(locked.group(1))
    assert release is not None and oldest <= release <= newest


@pytest.mark.parametrize(
    "version, expected",
    [("2025.10.22", (2025, 10, 22)), ("2024.11.20", (2024, 11, 20)), ("2026.1.0rc1", None)],
)
def test_release_numbers(version: str, expected: tuple[int, ...] | None) -> None:
    assert markdown_c.release(version) == expected


@pytest.mark.parametrize("path", SAMPLE_BODIES)
def test_driver_and_fallback_render_the_sample_store_alike(path: str) -> None:
    body = split((REPO / path).read_text(encoding="utf-8")).body
    native = markdown_c.to_html(body, native=True)
    assert native  # every sample article has a body
    assert markdown_c.to_html(body, native=False) == native
    assert markdown_c.to_html(body) == native


@pytest.mark.parametrize("text", [*CASES, NONCHARACTER_REFERENCES])
def test_driver_and_fallback_render_alike(text: str) -> None:
    assert markdown_c.to_html(text, native=False) == markdown_c.to_html(text, native=True)


def test_noncharacter_references_are_dropped_on_both_paths() -> None:
    for native in (True, False):
        assert markdown_c.to_html(NONCHARACTER_REFERENCES, native=native) == "<p>a  b  c  d</p>\n"
