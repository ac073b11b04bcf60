"""Image references never reach a file outside the store, whoever wrote them.

The findings first, end to end on real folders: a build on a real SQLite file
with the real `Builder`, a publish pass against the fake Mastodon server on
loopback. Then the one function every image goes through
(`newsbot.store.assets`), case by case on a real store folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsbot.app import publishers
from newsbot.articles import Article, Image
from newsbot.publish.targets import targets
from newsbot.settings import Settings
from newsbot.store.assets import (
    ARTICLE_SUFFIXES,
    AssetRefused,
    asset_size,
    media_url,
    open_asset,
    store_path,
)
from newsbot.store.scan import SUFFIXES
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, settings_for, target, write_article
from support.stores import BASE_URL, make_settings, opened, rss_items

LOOPBACK_BASE = "http://127.0.0.1:8080/"
SECRET = b"state database: tokens and delivery rows\n"


def _layout(tmp: Path) -> tuple[Path, Path]:
    """The default layout: the store, and beside it the state folder holding a secret."""
    content = tmp / "content"
    content.mkdir()
    (tmp / "data").mkdir()
    secret = tmp / "data" / "secret.db"
    secret.write_bytes(SECRET)
    return content, secret


def _published_files(settings: Settings) -> dict[str, bytes]:
    root = settings.feeds.output_dir
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


NOW = datetime.now(UTC)


# -- the findings ------------------------------------------------------------------------------


def test_a_media_url_climbing_out_of_the_store_copies_nothing(tmp_path: Path) -> None:
    content, _ = _layout(tmp_path)
    write_article(
        content, "harbour.md", "Harbour reopens", NOW - timedelta(hours=1),
        image={"url": LOOPBACK_BASE + "media/../data/secret.db", "alt": "x"},
    )  # fmt: skip
    settings = make_settings(tmp_path, content, base_url=LOOPBACK_BASE)
    with opened(settings) as app:
        report = app.builder.build(NOW)

    files = _published_files(settings)
    assert not [name for name, data in files.items() if SECRET in data]
    assert not (settings.feeds.output_dir / "data").exists()
    # The article is still published, without its image, and the problem is named.
    items = rss_items(settings.feeds.output_dir / "rss.xml")
    assert [item.guid for item in items] == [settings.site.id_prefix + "harbour"]
    assert b"secret.db" not in files["rss.xml"]
    [problem] = [p for p in report.problems if p.path == "harbour.md"]
    assert (problem.field, problem.line) == ("image", 4)
    assert "'..'" in problem.message


@pytest.fixture
def server() -> Iterator[FakeMastodon]:
    with FakeMastodon(token=TOKEN) as fake:
        yield fake


def test_a_media_url_with_an_absolute_path_uploads_nothing(
    tmp_path: Path, server: FakeMastodon, caplog: pytest.LogCaptureFixture
) -> None:
    content, secret = _layout(tmp_path)
    settings = settings_for(tmp_path, content, {"main": target(server.base_url)})
    media_url = str(settings.site.base_url) + "media/"
    write_article(
        content, "harbour.md", "Harbour reopens", NOW - timedelta(hours=1),
        image={"url": media_url + "/" + str(secret).lstrip("/"), "alt": "x", "type": "image/png"},
    )  # fmt: skip
    assert (media_url + "/").endswith("media//")

    with opened(settings) as app:
        report = app.builder.build(NOW)
        with (
            caplog.at_level(logging.WARNING),
            publishers(settings, app.engine, targets(settings), pacing=False) as runners,
        ):
            [runner] = runners
            passed = runner.run()

    uploaded = {media["sha256"] for media in server.media.values()}
    assert hashlib.sha256(SECRET).hexdigest() not in uploaded
    assert server.media == {}
    assert passed.posted == 1
    [problem] = [p for p in report.problems if p.path == "harbour.md"]
    assert problem.field == "image"
    assert "empty segment" in problem.message


def test_an_image_swapped_for_a_link_out_after_the_build_is_not_uploaded(
    tmp_path: Path, server: FakeMastodon
) -> None:
    content, secret = _layout(tmp_path)
    settings = settings_for(tmp_path, content, {"main": target(server.base_url)})
    (content / "harbour.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    write_article(
        content, "harbour.md", "Harbour reopens", NOW - timedelta(hours=1),
        image={"url": "harbour.png", "alt": "Boats"},
    )  # fmt: skip
    with opened(settings) as app:
        report = app.builder.build(NOW)
        assert [p for p in report.problems if p.path == "harbour.md"] == []
        (content / "harbour.png").unlink()
        os.symlink(secret, content / "harbour.png")
        with publishers(settings, app.engine, targets(settings), pacing=False) as runners:
            [runner] = runners
            assert runner.run().posted == 1
    uploaded = {media["sha256"] for media in server.media.values()}
    assert hashlib.sha256(SECRET).hexdigest() not in uploaded
    assert server.media == {}


# -- every image goes through one function ---------------------------------------------------

PREFIX = "https://news.example.org/media/"
ARTICLE = "2015/calais-deal.md"

REFUSED = [
    # media URLs: the address of a store file, so nothing but plain names
    (PREFIX + "../data/secret.db", "'..' segment"),
    (PREFIX + "2015/../../data/secret.db", "'..' segment"),
    (PREFIX + "./calais.jpg", "'.' segment"),
    (PREFIX + "/etc/passwd", "empty segment"),
    (PREFIX + "2015//calais.jpg", "empty segment"),
    (PREFIX + "2015/", "empty segment"),
    (PREFIX + "%2e%2e/data/secret.db", "percent-encoded"),
    (PREFIX + "%2E%2e/data/secret.db", "percent-encoded"),
    (PREFIX + "..%2fdata/secret.db", "percent-encoded"),
    (PREFIX + "%2fetc/passwd", "percent-encoded"),
    (PREFIX + "..%5cdata%5csecret.db", "percent-encoded"),
    (PREFIX + "%252e%252e/data/secret.db", "percent-encoded"),
    (PREFIX + "a%00.jpg", "percent-encoded"),
    (PREFIX + "%c0%ae%c0%ae/data/secret.db", "not UTF-8"),
    (PREFIX + "%e0%80%ae.jpg", "not UTF-8"),
    (PREFIX + "a%1b.jpg", "control character"),
    (PREFIX + "a%zz.jpg", "not a percent-encoded byte"),
    (PREFIX + "..\\data\\secret.db", "backslash"),
    (PREFIX + "a\x00.jpg", "control character"),
    (PREFIX + "a\u0085.jpg", "control character"),
    (PREFIX + ".git/config", "hidden"),
    (PREFIX + "2015/draft.md", "article file"),
    (PREFIX + "page.TXT", "article file"),
    (PREFIX + "calais.jpg?v=2", "query or fragment"),
    # relative references: a file of the store, from the article's folder
    ("../../data/secret.db", "climbs out of the store"),
    ("../../../etc/passwd", "climbs out of the store"),
    ("/etc/passwd", "absolute path"),
    ("//evil.example/x.jpg", "absolute path"),
    ("photos//calais.jpg", "empty segment"),
    ("%2e%2e/%2e%2e/data/secret.db", "percent-encoded"),
    ("..%2f..%2fdata/secret.db", "percent-encoded"),
    ("..\\..\\data\\secret.db", "backslash"),
    ("calais.jpg\x00.png", "control character"),
    ("%c0%ae%c0%ae/secret.db", "not UTF-8"),
    (".hidden.jpg", "hidden"),
    ("other-article.md", "article file"),
    ("calais.jpg#top", "query or fragment"),
    ("javascript:alert(1)", "scheme 'javascript:'"),
    ("JavaScript:alert(1)", "scheme 'javascript:'"),
    ("file:///etc/passwd", "scheme 'file:'"),
    ("data:image/png;base64,iVBORw0KGgo=", "scheme 'data:'"),
    ("C:/Windows/win.ini", "scheme 'c:'"),
    ("http:calais.jpg", "scheme 'http:'"),
]


@pytest.mark.parametrize(("ref", "reason"), REFUSED, ids=repr)
def test_a_reference_that_could_leave_the_store_is_refused(ref: str, reason: str) -> None:
    with pytest.raises(AssetRefused, match=re.escape(reason)):
        store_path(ref, PREFIX, article_path=ARTICLE)


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        ("calais.jpg", "2015/calais.jpg"),
        ("./photos/calais.jpg", "2015/photos/calais.jpg"),
        ("../shared/map.png", "shared/map.png"),  # up, but still inside the store
        ("photos/Calais%20deal.jpg", "2015/photos/Calais deal.jpg"),
        ("Calais deal.jpg", "2015/Calais deal.jpg"),
        ("café.jpg", "2015/café.jpg"),
        (PREFIX + "2015/calais.jpg", "2015/calais.jpg"),
        (PREFIX + "caf%C3%A9.jpg", "café.jpg"),
        ("https://img.example.org/calais.jpg", None),  # another site's: nothing to read
        ("HTTPS://img.example.org/../x.jpg", None),
    ],
)
def test_a_reference_to_a_store_file_gives_its_store_path(ref: str, path: str | None) -> None:
    assert store_path(ref, PREFIX, article_path=ARTICLE) == path


def test_a_media_url_and_its_store_path_go_both_ways() -> None:
    for path in ("2015/calais.jpg", "2015/Calais deal.jpg", "café/ü 1+1=2.png", "a&b;c.jpg"):
        assert store_path(media_url(PREFIX, path), PREFIX) == path


def test_only_a_media_url_is_a_reference_without_an_article() -> None:
    with pytest.raises(AssetRefused, match="not an absolute URL"):
        store_path("calais.jpg", PREFIX)


def test_article_suffixes_are_the_stores() -> None:
    assert ARTICLE_SUFFIXES == SUFFIXES


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with an image, and beside it (outside) a secret."""
    root = tmp_path / "content"
    (root / "2015").mkdir(parents=True)
    (root / "2015" / "calais.jpg").write_bytes(b"jpeg bytes")
    (tmp_path / "secret.db").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.jpg").write_bytes(SECRET)
    return root


def test_a_store_file_is_opened_and_read(store: Path) -> None:
    with open_asset(store, "2015/calais.jpg") as (asset, handle):
        assert (asset.path, asset.size) == ("2015/calais.jpg", 10)
        assert handle.read() == b"jpeg bytes"
    assert asset_size(store, "2015/calais.jpg") == 10


def test_a_link_inside_the_store_is_followed(store: Path) -> None:
    (store / "lead.jpg").symlink_to(store / "2015" / "calais.jpg")
    (store / "photos").symlink_to(store / "2015")
    assert asset_size(store, "lead.jpg") == 10
    assert asset_size(store, "photos/calais.jpg") == 10


def test_a_store_reached_through_a_link_still_works(store: Path, tmp_path: Path) -> None:
    (tmp_path / "mounted").symlink_to(store)
    assert asset_size(tmp_path / "mounted", "2015/calais.jpg") == 10


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: (s / "leak.jpg").symlink_to(s.parent / "secret.db"), "leading out of the store"),
        (lambda s: (s / "leak.jpg").symlink_to("../secret.db"), "leading out of the store"),
        (lambda s: (s / "leak.jpg").symlink_to("/etc/passwd"), "leading out of the store"),
        (lambda s: (s / "leak").symlink_to(s.parent / "outside"), "leading out of the store"),
        (lambda s: (s / "leak.jpg").symlink_to(s / "leak.jpg"), "cannot be read"),
        (lambda s: (s / "leak.jpg").mkdir(), "not a regular file"),
        (lambda s: os.mkfifo(s / "leak.jpg"), "not a regular file"),
        (lambda s: (s / "leak.jpg").symlink_to(s / "gone.jpg"), "not a file of the store"),
        (lambda s: None, "not a file of the store"),
    ],
    ids=["link-out", "relative-link-out", "link-to-etc", "folder-link-out", "loop", "folder",
         "fifo", "dangling", "missing"],
)  # fmt: skip
def test_a_file_that_is_not_a_plain_file_of_the_store_is_refused(
    store: Path, make: Callable[[Path], object], reason: str
) -> None:
    make(store)
    name = "leak/x.jpg" if (store / "leak").exists() else "leak.jpg"
    with pytest.raises(AssetRefused, match=reason):
        asset_size(store, name)


# -- a refused image costs the image, never the article ---------------------------------------

BAD_IMAGES = {
    "javascript.md": "javascript:alert(document.cookie)",
    "file.md": "file:///etc/passwd",
    "climbs.md": "../data/secret.db",
    "missing.md": "nowhere.jpg",
    "link-out.md": "leak.jpg",
    "encoded.md": "%2e%2e/data/secret.db",
    "media-up.md": BASE_URL + "media/../data/secret.db",
    "media-root.md": BASE_URL + "media//etc/passwd",
}


def test_each_refused_image_is_dropped_with_a_named_problem(tmp_path: Path) -> None:
    content, secret = _layout(tmp_path)
    (content / "leak.jpg").symlink_to(secret)
    (content / "photos").mkdir()
    (content / "photos" / "Calais deal.jpg").write_bytes(b"jpeg bytes")
    for path, url in BAD_IMAGES.items():
        write_article(content, path, f"Article {path}", NOW - timedelta(hours=1), image=url)
    write_article(
        content, "good.md", "Good", NOW - timedelta(hours=1),
        image={"url": "photos/Calais deal.jpg", "alt": "Calais"},
    )  # fmt: skip
    settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        report = app.builder.build(NOW)

    out = settings.feeds.output_dir
    guids = sorted(item.guid for item in rss_items(out / "rss.xml"))
    ids = sorted(path.removesuffix(".md") for path in [*BAD_IMAGES, "good.md"])
    assert guids == [settings.site.id_prefix + i for i in ids]
    problems = {p.path: p for p in report.problems if p.path.endswith(".md")}
    assert sorted(problems) == sorted(BAD_IMAGES)
    for problem in problems.values():
        assert (problem.line, problem.field) == (4, "image"), problem
        assert problem.message.startswith("dropped the image: url "), problem
    feed = json.loads((out / "feed.json").read_text())
    images = {item["id"]: item.get("image") for item in feed["items"]}
    good = settings.site.id_prefix + "good"
    assert images.pop(good) == BASE_URL + "media/photos/Calais%20deal.jpg"
    assert set(images.values()) == {None}
    # Only the good image was copied, under the name the URL decodes to.
    files = _published_files(settings)
    assert [name for name in files if name.startswith("media/")] == ["media/photos/Calais deal.jpg"]
    assert not [name for name, data in files.items() if SECRET in data]


# -- the rule over generated references --------------------------------------------------------

_PIECES = st.sampled_from(
    ["a", "é", "..", ".", "", "%2e", "%2E%2e", "%2f", "%5c", "%25", "%00", "%c0%ae", "%20",
     "\\", "\x00", "\x1b", "?", "#", ":", "//", ".git", "x.md", "/", "%"]
)  # fmt: skip
_REFS = st.one_of(
    st.lists(_PIECES, max_size=8).map("".join),
    st.lists(_PIECES, max_size=8).map("/".join),
    st.text(max_size=60),
)


@hypothesis_settings(max_examples=500, deadline=None)
@given(_REFS, st.sampled_from([PREFIX, ""]))
def test_an_accepted_reference_is_plain_names_inside_the_store(ref: str, prefix: str) -> None:
    try:
        path = store_path(prefix + ref, PREFIX, article_path=ARTICLE)
    except AssetRefused:
        return
    if path is None:  # another site's image
        assert not (prefix + ref).startswith(PREFIX)
        return
    for name in path.split("/"):
        assert name and name not in (".", "..") and not name.startswith(".")
        assert "/" not in name and "\\" not in name
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name)
    root = Path("/store")
    assert (root / path).resolve().is_relative_to(root)


def test_the_build_checks_an_image_again_when_it_copies_it(tmp_path: Path) -> None:
    """An index written before these checks may hold any URL: the copy refuses it on its own."""
    content, secret = _layout(tmp_path)
    (content / "ok.png").write_bytes(b"png")
    settings = make_settings(tmp_path, content)
    base = str(settings.site.base_url)
    article = Article(
        id="x", path="x.md", title="X", published=NOW, updated=NOW, body="", url=base + "x/",
    )  # fmt: skip
    urls = [
        base + "media/../data/secret.db",
        base + "media/%2e%2e/data/secret.db",
        base + "media/" + str(secret),
        base + "media//" + str(secret).lstrip("/"),
        base + "media/ok.png",
    ]
    with opened(settings) as app:
        for url in urls:
            app.builder.article_pages.copy_media(replace(article, image=Image(url=url)))
    assert _published_files(settings) == {"media/ok.png": b"png"}


def test_a_huge_image_is_copied_a_block_at_a_time(tmp_path: Path) -> None:
    """The store sets no size for images: a 256 MiB one (sparse here) is copied whole to
    ``media/`` without being held in memory (it was read whole, the build's peak with it)."""
    content, _ = _layout(tmp_path)
    size = 256 << 20
    with (content / "huge.jpg").open("wb") as handle:
        handle.write(b"\xff\xd8start")
        handle.truncate(size)
    settings = make_settings(tmp_path, content)
    base = str(settings.site.base_url)
    article = Article(
        id="x", path="x.md", title="X", published=NOW, updated=NOW, body="", url=base + "x/",
        image=Image(url=base + "media/huge.jpg"),
    )  # fmt: skip
    with opened(settings) as app:
        tracemalloc.start()
        try:
            app.builder.article_pages.copy_media(article)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    copied = settings.feeds.output_dir / "media/huge.jpg"
    assert copied.stat().st_size == size
    with copied.open("rb") as handle:
        assert handle.read(7) == b"\xff\xd8start"
    assert peak < 16 << 20, f"{peak:,} bytes allocated to copy a {size:,}-byte image"


def test_a_photo_line_without_an_address_is_no_image_to_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A scraped page's photo line gives caption and credit only: nothing to copy, no warning."""
    content, _ = _layout(tmp_path)
    settings = make_settings(tmp_path, content)
    article = Article(
        id="x", path="x.txt", title="X", published=NOW, updated=NOW, body="",
        url=str(settings.site.base_url) + "x/", image=Image(url="", alt="Ministers", credit="AFP"),
    )  # fmt: skip
    with opened(settings) as app, caplog.at_level(logging.WARNING):
        app.builder.article_pages.copy_media(article)
    assert caplog.records == []
    assert _published_files(settings) == {}
