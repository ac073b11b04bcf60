"""Settings: one validated object, built once at start and handed out in pieces.

Sources, highest priority first: ``NEWSBOT_*`` environment variables (nested
groups joined with ``__``, e.g. ``NEWSBOT_FEEDS__ITEMS=20``), secret files in
the secrets folder (container secrets, e.g. ``/run/secrets/newsbot_state__database_url``),
the TOML file given with ``--config`` (or ``NEWSBOT_CONFIG``), then the
embedded defaults, which run the sample store on loopback.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import string
import typing
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from newsbot.errors import SettingsError
from newsbot.quiet import SECRETS_DIR

DEFAULT_SECRETS_DIR = Path(SECRETS_DIR)
ENV_PREFIX = "NEWSBOT_"
NESTED = "__"


RelatedPolicy = Literal["editors", "computed", "both"]
"""Which related articles are shown: the editors' picks, the computed ones, or both."""


PERMALINK_FIELDS = ("slug", "id", "year", "month", "day")
"""What ``site.permalink`` may name (``articles.permalink`` fills them)."""
POST_FIELDS = ("headline", "summary", "link", "related", "hashtags")
"""What a target's ``template`` may name (``publish.compose`` fills them)."""

LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
"""A language tag in the form feeds carry (``en``, ``pt-BR``, ``zh-Hant-TW``): an article's
``lang`` and the site's ``language`` end up in ``xml:lang`` and ``<language>``."""


def language_problem(tag: str) -> str | None:
    """Why feeds cannot carry ``tag`` as a language, if they cannot: it is not in the form
    of a tag, or its primary subtag is none of the IANA registry's (the ISO 639 codes),
    as in ``xx``: the feed validator refuses both.

    ``langcodes`` (which ships the registry) loads here, at the first check: its tables
    cost tens of milliseconds, which only a process that checks a language pays.
    """
    if not LANGUAGE_TAG.match(tag):
        return "must be a language tag like 'en' or 'pt-BR'"
    import langcodes

    primary = tag.split("-", 1)[0].lower()
    if not langcodes.tag_is_valid(primary):
        return f"{primary!r} is no language of the ISO 639 registry (like 'en' or 'pt-BR')"
    return None


_DNS_NAME = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
TAG_AUTHORITY = re.compile(
    rf"(?:[a-z0-9._-]+@)?{_DNS_NAME},(?P<year>\d{{4}})(?:-(?P<month>\d\d)(?:-(?P<day>\d\d))?)?"
)
"""The tagging entity of an RFC 4151 tag URI: a domain name or e-mail address and a date
(lower case: tags compare character by character, and the feed validator wants it so)."""


def default_authority(host: str | None) -> str:
    """The tagging entity's name item ids take when ``site.id_authority`` is not set: the
    host of ``site.base_url`` (a trailing dot dropped), as ids have always been made.

    A host that is no DNS name (an IPv6 address such as ``[::1]``, a name with ``_``)
    would make ids that are no tag URI, which every feed validator refuses: those take
    ``localhost``, the name no one owns and that such a local site stands for. A site
    that keeps such a host sets ``site.id_authority``.
    """
    name = (host or "").removesuffix(".")
    return name if TAG_AUTHORITY.fullmatch(f"{name},2015") else "localhost"


def template_problem(template: str, fields: Sequence[str]) -> str | None:
    """Why ``template`` cannot be filled with ``fields`` by ``str.format``, if it cannot.

    Checked at load, so that a typo stops newsbot at start with the key named,
    not at the first article; attribute and index lookups (``{link.__class__}``)
    are refused, as they would reach into newsbot's objects.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name not in fields:
            known = ", ".join("{" + field + "}" for field in fields)
            shown = "{" + name + "}" if name else "{}"
            return f"unknown placeholder {shown} (known: {known})"
    try:
        template.format_map({field: "x" for field in fields})
    except (ValueError, TypeError) as exc:  # a format spec that a text cannot take
        return f"not a valid template ({exc})"
    return None


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(_Group):
    """The site the articles belong to: names, addresses and the rules for ids and links."""

    title: str = "newsbot sample newsroom"
    description: str = "The latest articles from the newsroom."
    base_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080/")
    language: str = "en"
    timezone: str = "UTC"
    permalink: str = "articles/{slug}/"
    id_authority: str | None = None
    author: str | None = None
    related: int = Field(default=3, ge=0, le=10)
    related_policy: RelatedPolicy = "both"
    related_seconds: float = Field(default=20.0, gt=0)
    """Time a build may spend computing related lists beyond the new articles' own need;
    a first build of a large store computes the rest over the following builds."""

    @field_validator("language")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        """Every feed carries it (``<language>``, ``xml:lang``, ``language``)."""
        if (problem := language_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("id_authority")
    @classmethod
    def _tag_authority(cls, value: str | None) -> str | None:
        """Every item id starts with it: a value that makes no tag URI is an invalid id in
        every feed, and ids cannot be fixed later without readers seeing new items."""
        if value is None:
            return None
        match = TAG_AUTHORITY.fullmatch(value)
        try:
            if match is None:
                raise ValueError
            date(int(match["year"]), int(match["month"] or 1), int(match["day"] or 1))
        except ValueError:
            raise ValueError(
                "must be a domain name (or e-mail address), a comma and a date, in lower"
                " case, like 'news.example.org,2026' (RFC 4151)"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like 'Europe/Paris')"
            ) from exc
        return value

    @field_validator("permalink")
    @classmethod
    def _permalink_has_slug(cls, value: str) -> str:
        if (problem := template_problem(value, PERMALINK_FIELDS)) is not None:
            raise ValueError(problem)
        if "{slug}" not in value and "{id}" not in value:
            raise ValueError("must contain {slug} or {id}, or every article would share one link")
        if value.startswith("/") or "://" in value:
            raise ValueError("must be relative to site.base_url")
        if "\\" in value or any(part in (".", "..") for part in value.split("/")):
            raise ValueError("must not contain '\\', '.' or '..' segments")
        if "//" in value:
            raise ValueError("must not contain an empty segment ('//')")
        return value

    @field_validator("base_url")
    @classmethod
    def _ends_with_slash(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        text = str(value)
        return value if text.endswith("/") else AnyHttpUrl(text + "/")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def id_prefix(self) -> str:
        """The prefix of every item id: a tag URI (RFC 4151) that survives a move of the site."""
        if self.id_authority:
            return f"tag:{self.id_authority}:"
        return f"tag:{default_authority(self.base_url.host)},2015:"


class StoreSettings(_Group):
    """Where the articles are, how much of a file newsbot will read, and when it is suspect.

    A store that lost more than ``removals_allowed_share`` of its live articles
    since the last good build (and more than ``removals_allowed_min``) is
    suspect: nothing is removed or deleted until the store comes back or the
    removal is confirmed (``newsbot build --confirm-removals``).
    """

    content_dir: Path = Path("content")
    max_file_bytes: int = Field(default=2_000_000, gt=0)
    removals_allowed_share: float = Field(default=0.2, ge=0, le=1)
    removals_allowed_min: int = Field(default=1, ge=0)


class FeedSettings(_Group):
    """What the build writes: which feeds, how many items, where."""

    output_dir: Path = Path("public")
    items: int = Field(default=50, ge=1, le=10_000)
    per_tag: bool = True
    per_section: bool = True
    pages: bool = True
    hub: AnyHttpUrl | None = None


class StateSettings(_Group):
    """The state database: SQLite by default, PostgreSQL by URL."""

    data_dir: Path = Path("data")
    database_url: SecretStr | None = None
    database_password: SecretStr | None = None
    """The password of ``database_url``, kept apart so that one secret file holds it.

    A container secret shared with the database server
    (``/run/secrets/newsbot_state__database_password``); it replaces any
    password written in the URL.
    """

    @property
    def sqlite_file(self) -> Path:
        """The SQLite database used when no ``database_url`` is given."""
        return self.data_dir / "newsbot.db"


class TargetSettings(_Group):
    """One account that articles are posted to."""

    server: AnyHttpUrl
    token: SecretStr | None = None
    token_file: Path | None = None
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"
    language: str | None = None
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    include_sections: tuple[str, ...] = ()
    exclude_sections: tuple[str, ...] = ()
    hashtags: bool = True
    max_hashtags: int = Field(default=4, ge=0, le=20)
    related: int = Field(default=3, ge=0, le=10)
    related_policy: RelatedPolicy | None = None
    related_in: Literal["auto", "post", "reply"] = "auto"
    summary_floor: int = Field(default=0, ge=0, le=1000)
    """The summary shortens no further for related links (0: down to its first sentence)."""
    profile: Literal[
        "auto", "mastodon", "takahe", "pleroma", "gotosocial", "misskey", "friendica", "unknown"
    ] = "auto"
    """The server's software profile; "auto" detects it from NodeInfo and the instance."""
    template: str = "{headline}\n\n{summary}\n\n{link}{related}{hashtags}"
    edit_on_update: bool = True
    delete_on_withdraw: bool = True
    max_edits_per_pass: int = Field(default=20, ge=0)
    max_deletes_per_pass: int = Field(default=10, ge=0)
    media: bool = True
    posts_per_hour: int = Field(default=20, ge=1, le=600)
    pacing: bool = True
    backlog_max_age_hours: float = Field(default=48.0, gt=0)
    timeout: float = Field(default=30.0, gt=0, le=600)
    """Seconds to wait for the server at each step of a request (connect, send, answer)."""
    enabled: bool = True

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        if (problem := template_problem(value, POST_FIELDS)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("token_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"token file {value} does not exist")
        return value

    def access_token(self) -> SecretStr | None:
        """The token, from the setting or from its file (a container secret)."""
        if self.token is not None:
            return self.token
        if self.token_file is not None:
            return SecretStr(self.token_file.read_text(encoding="utf-8").strip())
        return None


class ServiceSettings(_Group):
    """``newsbot run``: the schedule, the HTTP listener and how long shutting down may take."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    build_every_seconds: float = Field(default=300.0, gt=0)
    build_cron: str | None = None
    publish_every_seconds: float = Field(default=60.0, gt=0)
    publish_cron: str | None = None
    jitter_seconds: float = Field(default=5.0, ge=0)
    watch: bool = True
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
    status_page: Literal["off", "loopback", "on"] = "loopback"
    """Who may see ``/status``: requests from this machine only, everyone, or no one."""

    @field_validator("build_cron", "publish_cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"not a crontab expression ({exc})") from None
        return value


class ActivityPubSettings(_Group):
    """The site as its own ActivityPub actor (``@news@host``), and how it delivers to followers."""

    enabled: bool = True
    username: str = "news"
    name: str | None = None
    """Display name; default: ``site.title``."""
    summary: str | None = None
    """Profile text; default: ``site.description``."""
    icon: AnyHttpUrl | None = None
    key_file: Path | None = None
    """A PEM file with the actor's RSA private key (a secret); default: kept in the database."""
    allow_private_addresses: bool = False
    """Fetch from and deliver to loopback and private addresses (tests on one machine)."""
    require_signed_fetch: bool = False
    """Answer only signed GETs for the actor's documents (Mastodon's secure mode)."""
    signed_fetch: bool = True
    """Sign the GETs that fetch remote actors and keys (servers in secure mode need it)."""
    max_body_bytes: int = Field(default=262_144, gt=0)
    inbox_requests_per_minute: int = Field(default=300, ge=1)
    """Per remote host; more get 429."""
    concurrency: int = Field(default=64, ge=1, le=1024)
    per_host_concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=15.0, gt=0, le=300)
    max_tries: int = Field(default=16, ge=1, le=30)
    """Tries of one delivery, spread over about two days, before it is given up."""
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failures after which a host is paused (the breaker opens)."""
    dead_after_days: float = Field(default=7.0, gt=0)
    """A host that failed for this long without one success is dead: no more deliveries."""
    backlog_max_age_hours: float = Field(default=48.0, gt=0)
    """Articles older than this when first seen are in the outbox but not delivered."""
    outbox_page_size: int = Field(default=20, ge=1, le=200)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,30}", value):
            raise ValueError("use 1 to 30 letters, digits and '_' (as Mastodon accepts)")
        return value

    @field_validator("key_file")
    @classmethod
    def _key_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"key file {value} does not exist")
        return value


class LogSettings(_Group):
    """How newsbot talks to operators."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "text", "json"] = "auto"
    access: bool = True
    """One line per HTTP request (``newsbot.access``); false keeps only the HTTP metrics."""


class Settings(BaseSettings):
    """Every setting of newsbot, validated at the door."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        extra="forbid",
        frozen=True,
    )

    site: SiteSettings = SiteSettings()
    store: StoreSettings = StoreSettings()
    feeds: FeedSettings = FeedSettings()
    state: StateSettings = StateSettings()
    log: LogSettings = LogSettings()
    service: ServiceSettings = ServiceSettings()
    activitypub: ActivityPubSettings = ActivityPubSettings()
    targets: dict[str, TargetSettings] = Field(default_factory=dict)

    @field_validator("targets")
    @classmethod
    def _target_names(cls, value: dict[str, TargetSettings]) -> dict[str, TargetSettings]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,50}", name):
                raise ValueError(f"target name {name!r}: use letters, digits, '-' and '_'")
        return value

    @model_validator(mode="after")
    def _output_apart(self) -> Settings:
        """The output folder holds only what may be served: the server answers from it.

        Holding the store, it would serve the raw articles, drafts too; inside
        the store, the build's own files (``robots.txt``) would be read as
        articles; holding the SQLite state, a secret file, they would be served
        (the database keeps the actor's private key).
        """
        output = self.feeds.output_dir.resolve()
        content = self.store.content_dir.resolve()
        if output.is_relative_to(content) or content.is_relative_to(output):
            raise ValueError(
                f"feeds.output_dir {output} and store.content_dir {content} must be "
                "apart (neither inside the other): the site is served from the output folder"
            )
        secrets = {} if self.state.database_url else {"state.data_dir": self.state.data_dir}
        for name, target in self.targets.items():
            if target.token_file is not None:
                secrets[f"targets.{name}.token_file"] = target.token_file
        if self.activitypub.key_file is not None:
            secrets["activitypub.key_file"] = self.activitypub.key_file
        for key, path in secrets.items():
            if path.resolve().is_relative_to(output):
                raise ValueError(
                    f"{key} {path.resolve()} is inside feeds.output_dir {output}, "
                    "which the site serves: keep it elsewhere"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Container secrets are one file per value: /run/secrets/newsbot_state__database_url.
        secrets = NestedSecretsSettingsSource(
            file_secret_settings, secrets_nested_delimiter="__", secrets_dir_missing="ok"
        )
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, secrets]
        toml_file = settings_cls.model_config.get("toml_file")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets replaced by ``**********``."""
        return json.loads(self.model_dump_json())  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Callable[..., Settings], tuple[dict[str, Any], set[str]]]:
        """Pickled as plain `Settings` with the same values, read from no source again.

        :func:`load_settings` makes a class per call (its config file), which
        pickle cannot name; a child process is given the settings this way.
        """
        return _settings_of, (dict(self.__dict__), set(self.model_fields_set))


def _settings_of(values: dict[str, Any], fields_set: set[str]) -> Settings:
    return Settings.model_construct(fields_set, **values)


def load_settings(config: Path | None = None, secrets_dir: Path | None = None) -> Settings:
    """Read and validate the settings, or raise one `SettingsError` naming every bad key."""
    if config is None and os.environ.get("NEWSBOT_CONFIG"):
        config = Path(os.environ["NEWSBOT_CONFIG"])
    if config is not None and not config.is_file():
        raise SettingsError(f"config file {config} does not exist or is not a file")
    secrets = secrets_dir if secrets_dir is not None else DEFAULT_SECRETS_DIR
    overrides: dict[str, Any] = {}
    if config is not None:
        overrides["toml_file"] = config
    if secrets.is_dir():
        overrides["secrets_dir"] = secrets
    cls: type[Settings] = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, **overrides}}
    )
    try:
        return cls()
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise SettingsError(f"config file {config}: {exc}") from None


def _describe(exc: ValidationError) -> str:
    """One line per bad key: ``feeds.items: Input should be greater than 0 (got -1)``."""
    lines = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "settings"
        message = re.sub(r"^Value error, ", "", error["msg"])
        if error["type"] == "extra_forbidden":
            nearest = nearest_key(error["loc"])
            message = "unknown setting" + (f"; did you mean {nearest}?" if nearest else "")
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        if "secret" in key or "token" in key or "database_url" in key:
            shown = ""
        lines.append(f"{key}: {message}{shown}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def nearest_key(loc: Sequence[str | int]) -> str | None:
    """The known key closest to the unknown last part of ``loc``, if one is close enough."""
    fields = _fields_at(loc[:-1])
    if not fields or not isinstance(loc[-1], str):
        return None
    wanted = loc[-1].lower()
    close = difflib.get_close_matches(wanted, fields, n=1, cutoff=0.6)
    if not close:
        prefixed = [f for f in fields if f.startswith(wanted) or wanted.startswith(f)]
        close = prefixed[:1]
    return ".".join([*(str(part) for part in loc[:-1]), close[0]]) if close else None


def _fields_at(loc: Sequence[str | int]) -> list[str]:
    """The field names of the settings group at ``loc`` (empty when it is not a group)."""
    model: Any = Settings
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]  # a target's name: its settings come next
        else:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []
