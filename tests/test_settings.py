"""Settings: the example file, environment overrides, bad values, secrets, and masking.

Every test starts from an environment without ``NEWSBOT_*`` variables (the
autouse fixture in ``conftest.py``) and passes its own secrets folder, so
nothing of the machine running the tests leaks in.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsbot.cli import main
from newsbot.errors import SettingsError
from newsbot.settings import TAG_AUTHORITY, Settings, load_settings
from newsbot.state.database import database_url

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "newsbot.toml"
DATABASE_URL = "postgresql://newsbot:s3cr3t-pw@db.example.org/newsbot"


@pytest.fixture
def no_secrets(tmp_path: Path) -> Path:
    """An empty secrets folder."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    return folder


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- sources ------------------------------------------------------------------------------


def test_the_example_config_loads_and_states_the_defaults(no_secrets: Path) -> None:
    settings = load_settings(EXAMPLE, secrets_dir=no_secrets)
    assert settings.model_dump() == Settings().model_dump()  # its header: "with its default"
    assert settings.feeds.items == 50


def test_the_environment_overrides_nested_values(
    tmp_path: Path, no_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _toml(tmp_path, "[feeds]\nitems = 20\nper_tag = false\n")
    assert load_settings(config, secrets_dir=no_secrets).feeds.items == 20
    monkeypatch.setenv("NEWSBOT_FEEDS__ITEMS", "7")
    settings = load_settings(config, secrets_dir=no_secrets)
    assert settings.feeds.items == 7
    assert settings.feeds.per_tag is False  # the rest of the group still comes from the file


def test_the_config_file_can_come_from_the_environment(
    tmp_path: Path, no_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_CONFIG", str(_toml(tmp_path, "[site]\ntitle = 'Elsewhere'\n")))
    assert load_settings(secrets_dir=no_secrets).site.title == "Elsewhere"


# -- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("NEWSBOT_FEEDS__ITEMS", "0", "feeds.items"),
        ("NEWSBOT_FEEDS__ITEMS", "many", "feeds.items"),
        ("NEWSBOT_STORE__MAX_FILE_BYTES", "-1", "store.max_file_bytes"),
        ("NEWSBOT_SITE__TIMEZONE", "Mars/Olympus_Mons", "site.timezone"),
        ("NEWSBOT_SITE__BASE_URL", "not a url", "site.base_url"),
        ("NEWSBOT_SITE__PERMALINK", "articles/", "site.permalink"),
    ],
)
def test_a_bad_value_in_the_environment_names_its_key(
    no_secrets: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(secrets_dir=no_secrets)
    assert f"{key}: " in str(caught.value)


def test_a_bad_value_in_the_file_names_its_key(tmp_path: Path, no_secrets: Path) -> None:
    config = _toml(tmp_path, "[feeds]\nitems = 0\n\n[site]\nlanguage = 'en'\n")
    with pytest.raises(SettingsError, match=r"feeds\.items: .*greater than or equal to 1"):
        load_settings(config, secrets_dir=no_secrets)


def test_an_unknown_key_is_refused_by_name(tmp_path: Path, no_secrets: Path) -> None:
    config = _toml(tmp_path, "[feeds]\nitem = 7\n")
    with pytest.raises(SettingsError, match=r"feeds\.item: "):
        load_settings(config, secrets_dir=no_secrets)


def test_the_command_line_exits_2_with_one_clear_message() -> None:
    result = CliRunner().invoke(main, ["config", "show"], env={"NEWSBOT_FEEDS__ITEMS": "-1"})
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr.startswith("newsbot: invalid settings")
    assert "feeds.items: " in result.stderr
    assert "Traceback" not in result.output


BAD_TEMPLATES = [
    ("site.permalink", "articles/{slug}/{section}/", "unknown placeholder {section}"),
    ("site.permalink", "articles/{slug", "not a valid template"),
    ("site.permalink", "articles/{id.__class__}/", "unknown placeholder {id.__class__}"),
    ("targets.main.template", "{headline}\n{sumary}\n{link}", "unknown placeholder {sumary}"),
    ("targets.main.template", "{headline} {link", "not a valid template"),
    ("targets.main.template", "{headline} } {link}", "not a valid template"),
    ("targets.main.template", "{link[0]}", "unknown placeholder {link[0]}"),
    ("targets.main.template", "{}", "unknown placeholder {}"),
    ("targets.main.template", "{headline:d} {link}", "not a valid template"),
]


@pytest.mark.parametrize("key, template, problem", BAD_TEMPLATES)
def test_a_bad_template_exits_2_naming_the_key(
    tmp_path: Path, key: str, template: str, problem: str
) -> None:
    config = tmp_path / "newsbot.toml"
    table = "site" if key.startswith("site.") else "targets.main"
    extra = "" if table == "site" else 'server = "https://social.example.org/"\ntoken = "t0ken"\n'
    name = key.rsplit(".", 1)[1]
    config.write_text(f"[{table}]\n{extra}{name} = {json.dumps(template)}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "check"])
    assert result.exit_code == 2
    assert result.stderr.startswith("newsbot: invalid settings")
    assert f"{key}: {problem}" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "key, template",
    [
        ("site.permalink", "{year}/{month}/{day}/{slug}-{id}.html"),
        ("targets.main.template", "{{News}} {headline}\n\n{summary}\n{link}{related}{hashtags}"),
    ],
)
def test_every_placeholder_and_literal_braces_are_accepted(key: str, template: str) -> None:
    if key == "site.permalink":
        settings = Settings.model_validate({"site": {"permalink": template}})
        assert settings.site.permalink == template
    else:
        target = {"server": "https://social.example.org/", "template": template}
        settings = Settings.model_validate({"targets": {"main": target}})
        assert settings.targets["main"].template == template


def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    newsbot = Path(sys.executable).parent / "newsbot"
    env = {"PATH": "/usr/bin:/bin", "NEWSBOT_FEEDS__ITEMS": "-1", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(newsbot), "check"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("newsbot: invalid settings")
    assert "feeds.items" in done.stderr
    assert "Traceback" not in done.stderr


# -- secrets ------------------------------------------------------------------------------


def test_a_secret_group_comes_from_its_file(no_secrets: Path) -> None:
    (no_secrets / "newsbot_state").write_text(
        json.dumps({"database_url": DATABASE_URL}), encoding="utf-8"
    )
    assert database_url(load_settings(secrets_dir=no_secrets).state) == DATABASE_URL


def test_a_nested_secret_comes_from_its_file(no_secrets: Path) -> None:
    # The name settings.py and config/newsbot.toml document.
    (no_secrets / "newsbot_state__database_url").write_text(DATABASE_URL + "\n", encoding="utf-8")
    assert database_url(load_settings(secrets_dir=no_secrets).state) == DATABASE_URL


def test_a_target_token_comes_from_its_file(
    no_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_TARGETS__MAIN__SERVER", "https://social.example.org/")
    (no_secrets / "newsbot_targets__main__token").write_text("t0ken-from-file\n", "utf-8")
    token = load_settings(secrets_dir=no_secrets).targets["main"].access_token()
    assert token is not None
    assert token.get_secret_value() == "t0ken-from-file"


def test_the_environment_beats_a_secret_file(
    no_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_secrets / "newsbot_state").write_text(
        json.dumps({"database_url": "sqlite:///from-file.db"}), encoding="utf-8"
    )
    monkeypatch.setenv("NEWSBOT_STATE__DATABASE_URL", DATABASE_URL)
    assert database_url(load_settings(secrets_dir=no_secrets).state) == DATABASE_URL


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSBOT_STATE__DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("NEWSBOT_TARGETS__MAIN__SERVER", "https://social.example.org/")
    monkeypatch.setenv("NEWSBOT_TARGETS__MAIN__TOKEN", "t0ken-value")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["state"]["database_url"] == "**********"
    assert shown["targets"]["main"]["token"] == "**********"
    assert shown["targets"]["main"]["server"] == "https://social.example.org/"
    for secret in ("pw", "s3cr3t", "newsbot:", "t0ken"):
        assert secret not in result.output


def test_the_example_config_documents_every_field() -> None:
    from newsbot.settings import Settings, TargetSettings

    text = (Path(__file__).parent.parent / "config" / "newsbot.toml").read_text(encoding="utf-8")
    missing = []
    for group, field in Settings.model_fields.items():
        if group == "targets":
            names = [(f"targets.{n}", n) for n in TargetSettings.model_fields]
        else:
            model = field.annotation
            names = [(f"{group}.{n}", n) for n in model.model_fields]  # type: ignore[union-attr]
            if f"[{group}]" not in text:
                missing.append(f"[{group}]")
        missing += [
            key for key, name in names if f"\n{name} =" not in text and f"# {name} =" not in text
        ]
    assert missing == []


def test_loaded_settings_pickle_with_their_values_and_secrets(
    tmp_path: Path, no_secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child process is given the settings pickled: every value arrives, none is read again."""
    config = tmp_path / "newsbot.toml"
    config.write_text(
        '[site]\ntitle = "From the file"\n[targets.main]\nserver = "https://a.example"\n'
    )
    monkeypatch.setenv("NEWSBOT_TARGETS__MAIN__TOKEN", "tok-from-env")
    monkeypatch.setenv("NEWSBOT_STATE__DATABASE_URL", "sqlite:////tmp/x.db")
    loaded = load_settings(config, secrets_dir=no_secrets)
    monkeypatch.setenv("NEWSBOT_SITE__TITLE", "changed since")  # not read by the copy
    copy = pickle.loads(pickle.dumps(loaded))
    assert type(copy) is Settings
    assert copy.model_dump() == loaded.model_dump()
    assert copy.site.title == "From the file"
    token = copy.targets["main"].access_token()
    assert token is not None and token.get_secret_value() == "tok-from-env"


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("NEWSBOT_SITE__LANGUAGE", "English (UK)", "site.language"),
        ("NEWSBOT_SITE__LANGUAGE", "en_GB", "site.language"),
        ("NEWSBOT_SITE__LANGUAGE", "", "site.language"),
        ("NEWSBOT_SITE__LANGUAGE", "xx", "site.language"),  # no language of ISO 639
        ("NEWSBOT_SITE__LANGUAGE", "xx-GB", "site.language"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "News Example", "site.id_authority"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "news.example.org", "site.id_authority"),  # no date
        ("NEWSBOT_SITE__ID_AUTHORITY", "news.example.org,26", "site.id_authority"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "news.example.org,2026-13", "site.id_authority"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "News.Example.org,2026", "site.id_authority"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "-news.example.org,2026", "site.id_authority"),
        ("NEWSBOT_SITE__ID_AUTHORITY", "news.example.org,2026:x", "site.id_authority"),
    ],
)
def test_a_language_or_id_authority_feeds_cannot_carry_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, no_secrets: Path, variable: str, value: str, key: str
) -> None:
    """Both end up in every feed (``<language>``, ``xml:lang``, the ``tag:`` ids): a value
    the validator rejects, or an id that is no tag URI, is an error at start, not in feeds."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(secrets_dir=no_secrets)
    assert f"{key}: " in str(caught.value)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("language", "authority"),
    [
        ("en", "news.example.org,2026"),
        ("pt-BR", "news.example.org,2026-01"),
        ("fil", "editor@news.example.org,2026-01-31"),
        ("zh-Hant-TW", "127.0.0.1,2015"),
        ("tlh", "news.example.org,2026"),  # three letters: ISO 639-2/3
        ("qaa", "news.example.org,2026"),  # the registry's range for local use
    ],
)
def test_language_tags_and_tag_authorities_are_accepted(language: str, authority: str) -> None:
    settings = Settings.model_validate({"site": {"language": language, "id_authority": authority}})
    assert settings.site.language == language
    assert settings.site.id_prefix == f"tag:{authority}:"


@pytest.mark.parametrize(
    ("content", "output", "data", "why"),
    [
        # The build's robots.txt became an article of the store, refused at every build.
        ("site", "site", "data", "store.content_dir"),
        ("site", "site/public", "data", "store.content_dir"),
        # The server answers from the output folder: the raw store, drafts and all ...
        ("srv/content", "srv", "data", "store.content_dir"),
        # ... or the state database with the actor's private key.
        ("content", "srv", "srv/data", "state.data_dir"),
    ],
)
def test_an_output_folder_overlapping_the_store_or_the_state_is_refused(
    tmp_path: Path, content: str, output: str, data: str, why: str
) -> None:
    (tmp_path / content).mkdir(parents=True)
    (tmp_path / content / "a.md").write_text("---\ntitle: A\ndate: 2024-01-01\n---\nA.\n")
    env = {
        "NEWSBOT_STORE__CONTENT_DIR": str(tmp_path / content),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp_path / output),
        "NEWSBOT_STATE__DATA_DIR": str(tmp_path / data),
    }
    result = CliRunner().invoke(main, ["build"], env=env)
    assert result.exit_code == 2, result.output
    assert "feeds.output_dir" in result.output and why in result.output
    assert not (tmp_path / content / "robots.txt").exists()


def test_a_secret_file_in_the_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "token").write_text("a-token\n", encoding="utf-8")
    env = {
        "NEWSBOT_STORE__CONTENT_DIR": str(tmp_path / "content"),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp_path / "public"),
        "NEWSBOT_STATE__DATA_DIR": str(tmp_path / "data"),
        "NEWSBOT_TARGETS__MAIN__SERVER": "https://social.example/",
        "NEWSBOT_TARGETS__MAIN__TOKEN_FILE": str(tmp_path / "public" / "token"),
    }
    result = CliRunner().invoke(main, ["config", "show"], env=env)
    assert result.exit_code == 2, result.output
    assert "targets.main.token_file" in result.output


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        ("https://news.example.org/", "tag:news.example.org,2015:"),
        ("http://127.0.0.1:8080/", "tag:127.0.0.1,2015:"),  # ids made so far stay
        ("https://news.example.org./", "tag:news.example.org,2015:"),
        ("http://[::1]:8080/", "tag:localhost,2015:"),
        ("http://[2001:db8::1]/", "tag:localhost,2015:"),
        ("http://news_desk.example/", "tag:localhost,2015:"),
    ],
)
def test_the_default_item_ids_are_tag_uris_whatever_the_host(base_url: str, prefix: str) -> None:
    """A tag URI names a DNS name or e-mail address (RFC 4151): an IPv6 ``base_url`` made
    ``tag:[::1],2015:`` ids, which every validator refuses; such a host takes ``localhost``."""
    site = Settings.model_validate({"site": {"base_url": base_url}}).site
    assert site.id_prefix == prefix
    assert TAG_AUTHORITY.fullmatch(site.id_prefix.removeprefix("tag:").removesuffix(":"))
