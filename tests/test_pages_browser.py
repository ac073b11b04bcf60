"""The pages as a reader sees them: rendered by headless Chromium at desktop and phone widths.

The sample store, plus one article with a real lead image (credit and caption)
that follows the seed's story, is built with the real builder and served over
HTTP on 127.0.0.1. Chromium (Debian's, installed by tests/setup/tools.sh) loads
the index, the seed's page, that article's page and a tag page at 1,280 and 390
CSS pixels, and the test asserts what a reader must see: no horizontal
overflow, the related list after the article, the image with its credit right
under it, tags and section linked. Screenshots go to ``tests/out/browser/``
(git-ignored) for a developer to look at.
"""

from __future__ import annotations

import functools
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from newsbot.app import create_app
from support.browser import Browser, browser, chromium
from support.stores import make_settings

SAMPLE = Path(__file__).resolve().parents[1] / "content"
SHOTS = Path(__file__).resolve().parent / "out" / "browser"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
WIDTHS = (1280, 390)
TAGGED = sum("- Qasem Soleimani" in p.read_text(encoding="utf-8") for p in SAMPLE.rglob("*.md"))
"""Articles of the sample store tagged "Qasem Soleimani"."""
SEED = "2015/france-uk-calais-agreement.txt"
FOLLOW_UP = """---
id: calais-command-centre
title: Joint Franco-British command centre opens in Calais
date: 2015-09-02 16:45
tags: [Calais, Migration]
section: Europe
image:
  url: command-centre.png
  alt: The new command centre at the port of Calais, seen from the harbour road
  credit: © Newsroom photo desk, a deliberately long credit line to test wrapping
---
The command centre that Bernard Cazeneuve and Theresa May agreed on in Calais has opened
at the port. French and British officers work side by side against people smugglers, and
the Eurotunnel terminal at Coquelles gets the fences and cameras the agreement promised.
"""

OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"
FIGURE = """(() => {
  const fig = document.querySelector('figure.lead-image');
  if (!fig) return null;
  const img = fig.querySelector('img'), credit = fig.querySelector('.credit'),
        caption = fig.querySelector('figcaption');
  const box = e => e ? e.getBoundingClientRect().toJSON() : null;
  return {img: box(img), credit: box(credit), caption: box(caption),
          loaded: img ? img.complete && img.naturalWidth > 0 : null,
          captionText: caption ? caption.textContent : ''};
})()"""
RELATED = """Array.from(document.querySelectorAll('aside.related li a')).map(a => a.href)"""
AFTER_BODY = """(() => {
  const article = document.querySelector('article');
  const aside = document.querySelector('aside.related');
  return !!(article && aside &&
    (article.compareDocumentPosition(aside) & Node.DOCUMENT_POSITION_FOLLOWING) &&
    aside.getBoundingClientRect().top >= article.getBoundingClientRect().bottom - 1);
})()"""


def _png(width: int, height: int) -> bytes:
    """A real PNG (a grey gradient), so the browser has an image to lay out."""
    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // width,) * 3) for x in range(width))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The built sample store served on loopback: (base URL, page URLs by name)."""
    tmp = tmp_path_factory.mktemp("browser")
    content = tmp / "content"
    shutil.copytree(SAMPLE, content)
    (content / "2015" / "command-centre.md").write_text(FOLLOW_UP, encoding="utf-8")
    (content / "2015" / "command-centre.png").write_bytes(_png(1600, 900))
    public = tmp / "public"
    public.mkdir()
    handler = functools.partial(_Quiet, directory=str(public))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        app = create_app(make_settings(tmp, content, base_url=base))
        app.builder.build(NOW)
        by_path = {a.path: a for a in app.index.articles()}
        pages = {
            "index": base,
            "seed": by_path[SEED].url,
            "image": by_path["2015/command-centre.md"].url,
            "tag": f"{base}tags/qasem-soleimani/",
        }
        app.close()
        yield base, pages
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def chrome() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        pytest.skip("chromium is not installed: run tests/setup/tools.sh")
    with browser(executable) as started:
        yield started


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["index", "seed", "image", "tag"])
def test_pages_fit_and_show_what_a_reader_needs(
    chrome: Browser, site: tuple[str, dict[str, str]], name: str, width: int
) -> None:
    base, pages = site
    chrome.open(pages[name], width)
    chrome.screenshot(SHOTS / f"{name}-{width}.png")
    assert chrome.evaluate(OVERFLOW) <= 0, "the page scrolls sideways"
    assert chrome.evaluate("document.fonts.status") == "loaded"
    if name == "index":
        links = chrome.evaluate("Array.from(document.querySelectorAll('nav a')).map(a => a.href)")
        assert f"{base}tags/qasem-soleimani/" in links and f"{base}sections/europe/" in links
        assert chrome.evaluate("document.querySelectorAll('ul.list li').length") >= 20
        assert chrome.evaluate(
            "!!document.querySelector('link[rel=alternate][href$=\"atom.xml\"]')"
        )
    if name == "tag":
        assert chrome.evaluate("document.querySelectorAll('ul.list li').length") == TAGGED
        feeds = chrome.evaluate(
            "Array.from(document.querySelectorAll('link[rel=alternate]')).map(l => l.href)"
        )
        assert f"{base}tags/qasem-soleimani/atom.xml" in feeds
    if name in ("seed", "image"):
        related = chrome.evaluate(RELATED)
        other = pages["image" if name == "seed" else "seed"]
        assert related == [other], "the related list shows the story's other article"
        assert chrome.evaluate(AFTER_BODY), "the related list comes after the article"
        assert chrome.evaluate("document.querySelector('a.section').href") == (
            f"{base}sections/europe/"
        )
        figure = chrome.evaluate(FIGURE)
        assert figure is not None and "©" in figure["captionText"]
        assert figure["credit"] is not None
        if name == "image":
            assert figure["loaded"]
            image, credit = figure["img"], figure["credit"]
            assert image["width"] <= width
            gap = credit["top"] - image["bottom"]
            assert 0 <= gap <= 40, f"the credit is {gap:.0f} px away from its image"
            assert credit["right"] <= width and credit["left"] >= 0
            assert "Calais" in chrome.evaluate(
                "Array.from(document.querySelectorAll('.tags a')).map(a => a.textContent).join()"
            )
