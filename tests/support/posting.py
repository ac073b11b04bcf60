"""Helpers for the publishing tests: article files, targets, settings, and the fake's posts.

Stores are real folders of Markdown files built by the real `Builder`; the
state is a real database (a SQLite file, or a fresh PostgreSQL database); the
targets are fake Mastodon servers on loopback. What a server holds is read
back independently of the code under test: a status's own article is the
URL on a line of its text that is not a ``→`` related line.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from newsbot.settings import (
    FeedSettings,
    Settings,
    SiteSettings,
    StateSettings,
    StoreSettings,
    TargetSettings,
)
from support.stores import BASE_URL

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "content" / "2015" / "france-uk-calais-agreement.txt"
TOKEN = "tok-Zq81-NEVER-SHOWN-c0ffee-7e57"
"""A token distinctive enough to be searched for in every output."""
ARTICLES_URL = BASE_URL + "articles/"
YEARS = 24 * 365 * 30
"""A backlog age (hours) that keeps even the 2015 seed article postable."""


def article_text(
    title: str,
    published: datetime,
    *,
    summary: str = "",
    body: str = "",
    **fields: Any,
) -> str:
    """A Markdown article with front matter; ``fields`` are more front-matter keys.

    The body is the headline again unless given: articles share no words by
    accident, so the related articles found are the ones a test means.
    """
    body = body or f"{title}."
    front: dict[str, Any] = {"title": title, "date": published.isoformat()}
    if summary:
        front["summary"] = summary
    front.update(fields)
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return f"---\n{header}---\n\n{body}\n"


def write_article(root: Path, path: str, title: str, published: datetime, **fields: Any) -> Path:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(article_text(title, published, **fields), encoding="utf-8")
    return file


def url_of(path: str) -> str:
    """The link of the article at ``path`` (no id in its front matter, default permalink)."""
    return ARTICLES_URL + path.removesuffix(".md").removesuffix(".txt") + "/"


_TOPICS = ("harbour", "election", "storm", "budget", "museum", "railway", "vaccine", "festival")
_WORDS = (
    "council city minister report river bridge school hospital police court market energy "
    "farmers workers union strike plan vote season record museum station water price housing"
).split()


def generate_store(root: Path, count: int, now: datetime, seed: int = 7) -> list[str]:
    """``count`` small articles over the last hours (oldest first); their store paths.

    Topics repeat, so the term index finds related articles and posts carry
    ``→`` links to other articles: what a careless reconciliation would take
    for the article's own post.
    """
    rng = random.Random(seed)
    paths = []
    for number in range(count):
        topic = _TOPICS[number % len(_TOPICS)]
        words = " ".join(rng.choice(_WORDS) for _ in range(40))
        path = f"gen/{number:04d}-{topic}.md"
        write_article(
            root,
            path,
            f"Story {number}: the {topic} {rng.choice(_WORDS)} {rng.choice(_WORDS)}",
            now - timedelta(hours=12) + timedelta(seconds=30 * number),
            summary=f"What happened to the {topic} today, in brief (story {number}).",
            body=f"The {topic} was in the news again. {words.capitalize()}.",
            tags=[topic.capitalize()],
        )
        paths.append(path)
    return paths


def target(server: str, token: str = TOKEN, **fields: Any) -> TargetSettings:
    return TargetSettings(server=server, token=SecretStr(token), **fields)


def settings_for(
    tmp: Path,
    content: Path,
    targets: Mapping[str, TargetSettings],
    database_url: str | None = None,
) -> Settings:
    """Settings for a store at ``content``, state and output under ``tmp``."""
    return Settings(
        site=SiteSettings(base_url=BASE_URL),  # type: ignore[arg-type]
        store=StoreSettings(content_dir=content),
        feeds=FeedSettings(output_dir=tmp / "public"),
        state=StateSettings(
            data_dir=tmp / "data",
            database_url=None if database_url is None else SecretStr(database_url),
        ),
        targets=dict(targets),
    )


def environment(settings: Settings) -> dict[str, str]:
    """``NEWSBOT_*`` variables giving a subprocess the same settings, targets included."""
    env = {
        "NEWSBOT_SITE__BASE_URL": str(settings.site.base_url),
        "NEWSBOT_STORE__CONTENT_DIR": str(settings.store.content_dir),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(settings.feeds.output_dir),
        "NEWSBOT_STATE__DATA_DIR": str(settings.state.data_dir),
    }
    if settings.state.database_url is not None:
        env["NEWSBOT_STATE__DATABASE_URL"] = settings.state.database_url.get_secret_value()
    for name, found in settings.targets.items():
        prefix = f"NEWSBOT_TARGETS__{name.upper()}__"
        for key, value in found.model_dump(exclude_defaults=True).items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = str(value).lower()
            env[prefix + key.upper()] = str(value)
    return env


def own_urls(text: str) -> set[str]:
    """The article links of a status's text, leaving out the ``→`` related lines."""
    return {
        word
        for line in text.splitlines()
        if not line.lstrip().startswith("→")
        for word in line.split()
        if word.startswith(ARTICLES_URL)
    }


def posts_by_url(statuses: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many live statuses post each article (a status names one article, or it is wrong)."""
    found: Counter[str] = Counter()
    for status in statuses:
        if status.get("deleted"):
            continue
        urls = own_urls(str(status["text"]))
        assert len(urls) <= 1, f"a status posts several articles: {status['text']!r}"
        found.update(urls)
    return found
