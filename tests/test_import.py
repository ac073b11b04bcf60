"""``newsbot import``: scraped pages become Markdown articles that read back the same."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsbot.cli import main
from newsbot.state.index import StoreIndex
from support.stores import make_settings, opened, settings_env

SEED = Path(__file__).parent / "fixtures" / "scraped" / "000_f8273654f7973075.txt"


def _articles(tmp: Path, content: Path) -> dict[str, object]:
    settings = make_settings(tmp, content)
    with opened(settings) as app:
        app.builder.build(datetime(2026, 1, 1, tzinfo=UTC))
        index: StoreIndex = app.index
        return {a.id: a for a in index.articles()}


def test_a_page_in_the_store_is_replaced_by_markdown_with_the_same_id(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "2015").mkdir(parents=True)
    page = content / "2015" / "calais.txt"
    shutil.copy(SEED, page)
    before = _articles(tmp_path / "before", content)

    env = settings_env(make_settings(tmp_path / "import", content))
    result = CliRunner().invoke(main, ["import", str(page)], env=env)

    assert result.exit_code == 0, result.output
    assert not page.exists()
    assert (content / "2015" / "calais.txt.imported").is_file()
    written = content / "2015" / "calais.md"
    assert written.read_text(encoding="utf-8").startswith("---\n")
    after = _articles(tmp_path / "after", content)
    assert list(after) == list(before) == ["2015/calais"]
    old, new = before["2015/calais"], after["2015/calais"]
    for field in (
        "title",
        "published",
        "updated",
        "body",
        "authors",
        "section",
        "related",
        "image",
    ):
        assert getattr(new, field) == getattr(old, field), field


def test_a_page_from_elsewhere_lands_under_its_year(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    env = settings_env(make_settings(tmp_path, content))
    result = CliRunner().invoke(main, ["import", str(SEED)], env=env)
    assert result.exit_code == 0, result.output
    assert (content / "2015" / "france-and-uk-sign-calais-cooperation-agreement.md").is_file()
    again = CliRunner().invoke(main, ["import", str(SEED)], env=env)
    assert again.exit_code == 1
    assert "exists; use --force" in again.output


@pytest.mark.parametrize("text", ["", "no headline, no date\n"])
def test_a_broken_page_is_reported_and_nothing_is_written(tmp_path: Path, text: str) -> None:
    content = tmp_path / "content"
    content.mkdir()
    page = tmp_path / "broken.txt"
    page.write_text(text, encoding="utf-8")
    env = settings_env(make_settings(tmp_path, content))
    result = CliRunner().invoke(main, ["import", str(page)], env=env)
    assert result.exit_code == 1
    assert "broken.txt" in result.output
    assert list(content.iterdir()) == []
