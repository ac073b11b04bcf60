"""Compiled templates in the state folder: read by the next build, never after an upgrade.

Builds run with the real `Builder` on real SQLite files. To tell compiled code
read from the cache apart from code compiled afresh, a test plants in the cache
the code of another template (``POISONED``) under the checksum of the real
one, as a cache written by an older package would hold it: Jinja itself would
take it, since it checks only the template's source.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2 import FileSystemBytecodeCache

import newsbot
from newsbot.build.stamp import PACKAGE, code_digest
from newsbot.build.template_cache import FOLDER, cache_folder
from newsbot.render.pages import Pages
from newsbot.settings import Settings
from support.stores import opened, written_store

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POISONED = "POISONED: compiled from another template"
STORE = {
    "2025/budget.md": "---\nid: budget\ntitle: Budget passed\ndate: 2025-03-01\n---\n\nBody.\n",
    "2025/storm.md": "---\nid: storm\ntitle: Storm\ndate: 2025-01-03\ntags: Rain\n---\n\nRain.\n",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return written_store(tmp_path, STORE)


def build(settings: Settings) -> None:
    """A build that found the store sound."""
    with opened(settings) as app:
        assert not app.builder.build(NOW).problems


def site_index(settings: Settings) -> str:
    return (settings.feeds.output_dir / "index.html").read_text(encoding="utf-8")


def poison(folder: Path, name: str = "list.html") -> None:
    """Store in ``folder`` compiled code of another template under ``name``'s real checksum."""
    env = Pages().env
    assert env.loader is not None
    source, filename, _ = env.loader.get_source(env, name)
    cache = FileSystemBytecodeCache(str(folder))
    bucket = cache.get_bucket(env, name, filename, source)
    bucket.code = env.compile(POISONED, name, filename)
    folder.mkdir(parents=True, exist_ok=True)
    cache.set_bucket(bucket)


def rebuild_everything(settings: Settings) -> None:
    """A build that writes every page again (the output folder was emptied)."""
    shutil.rmtree(settings.feeds.output_dir)
    build(settings)


def test_a_build_reads_the_templates_compiled_by_the_one_before(settings: Settings) -> None:
    build(settings)
    folder = cache_folder(settings.state.data_dir, code_digest(PACKAGE))
    assert any(folder.iterdir()), "the first build leaves its compiled templates"
    assert POISONED not in site_index(settings)

    poison(folder)
    rebuild_everything(settings)
    assert POISONED in site_index(settings)  # the next build compiled nothing: it read them


def test_templates_compiled_by_another_package_are_never_read(settings: Settings) -> None:
    older = cache_folder(settings.state.data_dir, "digest of the package before the upgrade")
    poison(older)
    build(settings)
    assert POISONED not in site_index(settings)
    assert not older.exists()  # removed
    folders = list((settings.state.data_dir / FOLDER).iterdir())
    assert folders == [cache_folder(settings.state.data_dir, code_digest(PACKAGE))]


def test_an_upgrade_that_changes_a_template_changes_the_folder(tmp_path: Path) -> None:
    """The folder follows the package's digest: any changed file (a template, the code that
    sets up Jinja) means compiled code of its own."""
    package = Path(newsbot.__file__).parent
    same = shutil.copytree(package, tmp_path / "same" / "newsbot")
    upgraded = shutil.copytree(package, tmp_path / "upgraded" / "newsbot")
    template = upgraded / "render" / "templates" / "list.html"
    template.write_text(template.read_text(encoding="utf-8") + "<!-- new -->\n", encoding="utf-8")
    data = tmp_path / "data"
    assert cache_folder(data, code_digest(same)) == cache_folder(data, code_digest(package))
    assert cache_folder(data, code_digest(upgraded)) != cache_folder(data, code_digest(package))


def test_output_bytes_are_the_same_with_and_without_the_cache(
    settings: Settings, tmp_path: Path
) -> None:
    build(settings)
    first = {p.relative_to(settings.feeds.output_dir): p.read_bytes()
             for p in settings.feeds.output_dir.rglob("*.html")}  # fmt: skip
    rebuild_everything(settings)  # from the compiled templates of the first build
    again = {p.relative_to(settings.feeds.output_dir): p.read_bytes()
             for p in settings.feeds.output_dir.rglob("*.html")}  # fmt: skip
    assert first and again == first


def test_an_unwritable_state_folder_compiles_in_memory(settings: Settings) -> None:
    """A file where the cache folder should be: the build goes on, compiling as before."""
    settings.state.data_dir.mkdir(parents=True)
    (settings.state.data_dir / FOLDER).write_text("not a folder")
    build(settings)
    assert "Budget passed" in site_index(settings)


def test_a_folder_removed_under_the_build_costs_only_the_keeping(settings: Settings) -> None:
    """Another package's build (two versions on one data folder during an upgrade) removes
    this package's folder while pages are rendered: the templates are compiled, the pages
    written, and nothing is kept."""
    from newsbot.build.template_cache import bytecode_cache

    cache = bytecode_cache(settings.state.data_dir, code_digest(PACKAGE))
    assert cache is not None
    shutil.rmtree(cache_folder(settings.state.data_dir, code_digest(PACKAGE)))
    pages = Pages(compiled=cache)
    assert pages.env.get_template("list.html") is not None
