"""An operator's day: settings that explain themselves, `new`, `check --targets`, secrets, units.

Real TOML files, real secret files, real fake-Mastodon servers on loopback,
the real command line; PostgreSQL for the password kept apart from the URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from newsbot.cli import main
from newsbot.errors import SettingsError
from newsbot.settings import Settings, StateSettings, load_settings
from newsbot.settings_report import base_url_problem, sources
from newsbot.state.database import database_url
from support.databases import postgres_server
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, write_article
from support.posting import target as target_settings
from test_service import Service, closed_port, eventually, service_env, services  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env or {}, catch_exceptions=False)


# -- where each value came from ----------------------------------------------------------------


def test_config_show_sources_names_default_file_environment_and_secret_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "newsbot.toml"
    config.write_text('[feeds]\nitems = 7\n[site]\ntitle = "From the file"\n', encoding="utf-8")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "newsbot_state__database_password").write_text("s3cret-pw\n", encoding="utf-8")
    monkeypatch.setenv("NEWSBOT_SITE__TITLE", "From the environment")
    settings = load_settings(config, secrets)
    found = {s.key: s for s in sources(settings, config=config, secrets_dir=secrets)}

    assert found["site.title"].value == "From the environment"
    assert found["site.title"].origin == "environment NEWSBOT_SITE__TITLE"
    assert found["feeds.items"].value == 7
    assert found["feeds.items"].origin == f"file {config}"
    password = found["state.database_password"]
    assert password.origin == f"secret file {secrets / 'newsbot_state__database_password'}"
    assert password.value == "**********"
    assert found["feeds.per_tag"].origin == "default"
    assert "s3cret-pw" not in json.dumps([s.value for s in found.values()])


def test_config_show_sources_on_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "newsbot.toml"
    config.write_text("[feeds]\nitems = 7\n", encoding="utf-8")
    result = invoke(
        ["--config", str(config), "config", "show", "--sources"],
        {"NEWSBOT_SITE__BASE_URL": "https://news.example.org/"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"feeds.items = 7  # file {config}" in lines
    assert (
        'site.base_url = "https://news.example.org/"  # environment NEWSBOT_SITE__BASE_URL'
    ) in lines
    assert 'log.format = "auto"  # default' in lines


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[target.main]\nserver = "https://m.example/"\n',
            "target: unknown setting; did you mean targets?",
        ),
        ("[feeds]\nitem = 3\n", "feeds.item: unknown setting; did you mean feeds.items?"),
        (
            '[targets.main]\nserver = "https://m.example/"\ntokn = "x"\n',
            "targets.main.tokn: unknown setting; did you mean targets.main.token?",
        ),
        ("[service]\nprot = 80\n", "service.prot: unknown setting; did you mean service.port?"),
        ("[sevrice]\nport = 80\n", "sevrice: unknown setting; did you mean service?"),
        ("[zzzz]\nq = 1\n", "zzzz: unknown setting"),
    ],
)
def test_an_unknown_key_names_the_nearest_known_one(
    tmp_path: Path, toml: str, expected: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError) as raised:
        load_settings(config, tmp_path / "no-secrets")
    lines = [line.strip() for line in str(raised.value).splitlines()[1:]]
    assert [line.split(" (got ")[0] for line in lines] == [expected]
    assert "Extra inputs are not permitted" not in str(raised.value)


# -- base_url before publishing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "with_target", "warned"),
    [
        ("http://127.0.0.1:8080/", True, True),
        ("http://localhost:8080/", True, True),
        ("http://[::1]:8080/", True, True),
        ("https://news.example.org/", True, False),
        ("http://127.0.0.1:8080/", False, False),
    ],
)
def test_a_loopback_base_url_with_targets_is_a_problem(
    base_url: str, with_target: bool, warned: bool
) -> None:
    targets = {"main": target_settings("https://m.example/")} if with_target else {}
    settings = Settings(site={"base_url": base_url}, targets=targets)  # type: ignore[arg-type]
    problem = base_url_problem(settings)
    assert (problem is not None) == warned
    if problem:
        assert "site.base_url" in problem and "every feed item id" in problem


def test_run_warns_at_start_and_strict_refuses(
    tmp_path: Path,
    services: Callable[..., Service],  # noqa: F811
) -> None:
    content = tmp_path / "content"
    write_article(content, "a.md", "An article", datetime(2020, 1, 1, tzinfo=UTC))
    with FakeMastodon(token=TOKEN) as server:
        env = service_env(tmp_path, content, {"main": server})
        env["NEWSBOT_SITE__BASE_URL"] = "http://127.0.0.1:8080/"
        strict = subprocess.run(
            [str(ROOT / ".venv/bin/newsbot"), "run", "--strict"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert strict.returncode == 2, strict.stderr
        assert "site.base_url is http://127.0.0.1:8080/, a loopback address" in strict.stderr
        assert server.requests == [] or all(r["method"] == "GET" for r in server.requests)

        service = services(env, tmp_path / "run")
        service.url()
        warnings = [e for e in service.lines() if e["level"] == "warning"]
        assert any("site.base_url" in e["message"] for e in warnings), service.output()
        code, _ = service.stop(signal.SIGTERM)
        assert code == 0


# -- newsbot new ------------------------------------------------------------------------------


def test_new_writes_a_draft_skeleton_that_builds_and_publish_puts_it_in_the_feeds(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    env = {
        "NEWSBOT_STORE__CONTENT_DIR": str(content),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp_path / "public"),
        "NEWSBOT_STATE__DATA_DIR": str(tmp_path / "data"),
        "NEWSBOT_SITE__TIMEZONE": "Europe/Paris",
    }
    headline = 'Calais: "joint" command centre #2'
    first = invoke(["new", headline, "--tag", "Calais", "--section", "Europe"], env)
    assert first.exit_code == 0, first.output
    path = Path(first.stdout.strip())
    year = datetime.now(UTC).astimezone().year
    assert path.parent == content / str(year) or path.parent.name.isdigit()
    text_ = path.read_text(encoding="utf-8")
    article_id = f"{path.parent.name}/calais-joint-command-centre-2"
    assert f"id: {article_id}\n" in text_
    assert "draft: true" in text_
    assert re.search(r"^date: \d{4}-\d\d-\d\d \d\d:\d\d$", text_, re.M)

    again = invoke(["new", headline, "--publish"], env)
    second = Path(again.stdout.strip())
    assert second != path and second.name == "calais-joint-command-centre-2-2.md"
    assert "draft" not in second.read_text(encoding="utf-8")

    assert invoke(["check"], env).exit_code == 0
    built = invoke(["build"], env)
    assert built.exit_code == 0, built.output
    feed = json.loads((tmp_path / "public" / "feed.json").read_text(encoding="utf-8"))
    titles = [item["title"] for item in feed["items"]]
    assert titles == [headline]  # the draft is not published, the other one is
    assert feed["items"][0]["id"].endswith(f"{article_id}-2")


# -- newsbot check --targets --------------------------------------------------------------------


def _targets_env(server: FakeMastodon, token: str = TOKEN) -> dict[str, str]:
    return {
        "NEWSBOT_TARGETS__MAIN__SERVER": server.base_url + "/",
        "NEWSBOT_TARGETS__MAIN__TOKEN": token,
    }


def _posted_nothing(server: FakeMastodon) -> None:
    assert server.statuses == []
    assert {r["method"] for r in server.requests} <= {"GET"}


def test_check_targets_reports_software_limits_account_and_scopes() -> None:
    with FakeMastodon(token=TOKEN) as server:
        server.configure(max_characters=640)
        result = invoke(["check", "--targets"], _targets_env(server))
        assert result.exit_code == 0, result.output
        assert "main (" in result.output and ": ok" in result.output
        assert "software: mastodon 4.3.0" in result.output
        assert "limits: 640 characters, URLs count 23" in result.output
        assert "account: " in result.output
        assert "application scopes: read write" in result.output
        assert TOKEN not in result.output
        as_json = json.loads(invoke(["check", "--targets", "--json"], _targets_env(server)).stdout)
        assert as_json["problems"] == [] and as_json["software"] == "mastodon 4.3.0"
        _posted_nothing(server)


@pytest.mark.parametrize(
    ("scopes", "token", "problem"),
    [
        (["read", "write"], "wrong-token", "the access token was refused"),
        (["write:statuses", "write:media"], TOKEN, "the access token was refused"),
        (["read", "write:statuses"], TOKEN, "the token lacks the scope(s) write:media"),
        (["profile", "write:statuses"], TOKEN, "the token lacks the scope(s) write:media"),
    ],
)
def test_check_targets_names_what_is_wrong_without_posting(
    scopes: list[str], token: str, problem: str
) -> None:
    with FakeMastodon(token=TOKEN) as server:
        server.configure(scopes=scopes)
        result = invoke(["check", "--targets"], _targets_env(server, token))
        assert result.exit_code == 1, result.output
        assert "NOT USABLE" in result.output
        assert f"problem: {problem}" in result.output
        assert TOKEN not in result.output
        _posted_nothing(server)


def test_check_targets_on_a_closed_port_says_not_reachable() -> None:
    env = {
        "NEWSBOT_TARGETS__MAIN__SERVER": f"http://127.0.0.1:{closed_port()}/",
        "NEWSBOT_TARGETS__MAIN__TOKEN": TOKEN,
        "NEWSBOT_TARGETS__MAIN__TIMEOUT": "3",
    }
    result = invoke(["check", "--targets"], env)
    assert result.exit_code == 1
    assert "problem: server not reachable" in result.output


# -- secrets --------------------------------------------------------------------------------------


def test_the_database_password_is_kept_apart_from_the_url() -> None:
    state = StateSettings(
        database_url=SecretStr("postgresql://newsbot@db/newsbot"),
        database_password=SecretStr("p@ss/word:1"),
    )
    url = make_url(database_url(state))
    assert url.password == "p@ss/word:1" and url.host == "db" and url.username == "newsbot"


@pytest.mark.parametrize(
    ("url", "password"),
    [
        # The host forgotten: the URL parser takes the password for a port number.
        ("postgresql://newsbot:S3CRETPW/newsbot", None),
        ("postgresql://newsbot:S3CRETPW@db:port/newsbot", None),
        ("postgresql://newsbot@db:S3CRETPW/newsbot", None),
        ("postgresql://newsbot@db:port/newsbot", "S3CRETPW"),
    ],
)
def test_a_malformed_database_url_is_one_message_without_its_password(
    tmp_path: Path, url: str, password: str | None
) -> None:
    env = {"NEWSBOT_STATE__DATABASE_URL": url, "NEWSBOT_STATE__DATA_DIR": str(tmp_path)}
    if password is not None:
        env["NEWSBOT_STATE__DATABASE_PASSWORD"] = password
    result = CliRunner().invoke(main, ["state"], env=env)
    assert result.exit_code == 3, result.output
    assert result.output.strip() == "newsbot: state.database_url is not a valid database URL"
    assert "S3CRETPW" not in result.output


@pytest.mark.postgres
def test_a_url_without_password_and_the_password_file_reach_postgresql(tmp_path: Path) -> None:
    server = make_url(postgres_server())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "newsbot_state__database_password").write_text(
        f"{server.password}\n", encoding="utf-8"
    )
    without = server.set(password=None).render_as_string(hide_password=False)
    os.environ["NEWSBOT_STATE__DATABASE_URL"] = without
    try:
        settings = load_settings(None, secrets)
    finally:
        del os.environ["NEWSBOT_STATE__DATABASE_URL"]
    engine = create_engine(
        make_url(database_url(settings.state)).set(drivername="postgresql+psycopg")
    )
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()


def test_dev_secrets_writes_the_compose_secrets_once(tmp_path: Path) -> None:
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    first = subprocess.run(["bash", "dev", "secrets"], cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    password = (folder / "db_password.txt").read_text(encoding="utf-8").strip()
    assert len(password) >= 40
    assert (folder / "mastodon_token.txt").read_text(encoding="utf-8").strip()
    again = subprocess.run(["bash", "dev", "secrets"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == ""
    assert (folder / "db_password.txt").read_text(encoding="utf-8").strip() == password
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    files = {name: spec["file"] for name, spec in compose["secrets"].items()}
    assert files == {
        "db_password": "./secrets/db_password.txt",
        "mastodon_token": "./secrets/mastodon_token.txt",
    }
    # The one password file: PostgreSQL's secret and newsbot's, the URL without a password.
    newsbot = compose["services"]["newsbot"]
    assert {"source": "db_password", "target": "newsbot_state__database_password"} in newsbot[
        "secrets"
    ]
    url = make_url(newsbot["environment"]["NEWSBOT_STATE__DATABASE_URL"])
    assert url.password is None
    assert compose["services"]["db"]["secrets"] == ["db_password"]
    assert "/secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


# -- the systemd unit ----------------------------------------------------------------------


def test_the_example_systemd_unit_sets_only_known_settings(tmp_path: Path) -> None:
    unit = (ROOT / "docs" / "newsbot.service").read_text(encoding="utf-8")
    token = tmp_path / "newsbot_targets__main__token"
    token.write_text("x" * 20, encoding="utf-8")
    env = {}
    for value in re.findall(r"^Environment=(\S+)$", unit, re.M):
        name, _, setting = value.partition("=")
        env[name] = setting.replace("%d", str(tmp_path))
    env["NEWSBOT_TARGETS__MAIN__SERVER"] = "https://m.example/"
    result = invoke(["config", "show"], env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["store"]["content_dir"] == "/srv/newsbot/content"
    assert "newsbot run --strict" in unit.replace("--config /etc/newsbot/newsbot.toml ", "")
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(ROOT / "docs" / "newsbot.service")],
            capture_output=True,
            text=True,
        )
        complaints = [
            line
            for line in (verify.stdout + verify.stderr).splitlines()
            if line.strip() and "/opt/newsbot/bin/newsbot is not executable" not in line
        ]
        assert complaints == []


# -- ./dev run says what it does ---------------------------------------------------------------


@pytest.mark.slow
def test_dev_run_says_what_it_is_doing_while_it_installs(tmp_path: Path) -> None:
    """A fresh copy, with pip cut off from every index so the install stops early (and fast)."""
    for name in ("dev", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
        "PIP_NO_INDEX": "1",
        "PIP_CONFIG_FILE": os.devnull,
    }
    result = subprocess.run(
        ["bash", "dev", "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    said = [line for line in result.stderr.splitlines() if line.startswith("dev: ")]
    assert said[:4] == [
        "dev: setting up .venv with newsbot[postgres]"
        " (once, or after pyproject.toml changes; ~20 s)",
        f"dev:   creating the virtual environment with {_python_version()}",
        "dev:   upgrading pip",
        "dev:   installing newsbot and its dependencies",
    ]
    assert result.returncode != 0  # no index: the install itself cannot finish here


def _python_version() -> str:
    return subprocess.run(
        ["python3", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
