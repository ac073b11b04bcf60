"""What the server's JSON documents say: limits, software, accounts and statuses.

Every reader here is pure and lenient where servers differ (a limit missing
from one instance document is taken from the next, then from Mastodon's
defaults) and strict where a missing field would make the answer useless
(a status without an id): then it raises :class:`Unreadable`, which the
client turns into an error that says the answer could not be read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class Unreadable(Exception):
    """A success answer that lacks what makes it useful; the text says what is missing."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What the server allows, read from its instance document; defaults are Mastodon's."""

    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4
    supported_mime_types: frozenset[str] = frozenset()
    image_size_limit: int | None = None
    api_version: int | None = None
    """``api_versions.mastodon`` (Mastodon 4.3+); ``None`` on older or other servers."""


@dataclass(frozen=True, slots=True)
class Software:
    """What a server says it runs (NodeInfo name and version, the instance version text)."""

    name: str | None
    version: str | None
    instance_version: str | None


@dataclass(frozen=True, slots=True)
class Account:
    """The account the token belongs to."""

    id: str
    acct: str
    url: str


@dataclass(frozen=True, slots=True)
class PostedStatus:
    """A status as the server returned it: ``id`` to edit or delete it, ``url`` to show it."""

    id: str
    url: str | None
    uri: str
    content: str = ""
    created_at: str = ""
    in_reply_to_id: str | None = None
    visibility: str = ""
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """The fields of a status to create or edit (visibility and reply cannot change on edit)."""

    status: str
    visibility: str = "public"
    language: str | None = None
    spoiler_text: str = ""
    sensitive: bool = False
    media_ids: tuple[str, ...] = ()
    in_reply_to_id: str | None = None


# -- statuses and accounts ----------------------------------------------------------------


def status_form(request: StatusRequest, *, edit: bool) -> dict[str, str | list[str]]:
    """Form fields of a status; form encoding is what every compatible server accepts."""
    form: dict[str, str | list[str]] = {
        "status": request.status,
        "sensitive": "true" if request.sensitive else "false",
    }
    if request.spoiler_text or edit:
        form["spoiler_text"] = request.spoiler_text
    if request.language:
        form["language"] = request.language
    if request.media_ids:
        form["media_ids[]"] = list(request.media_ids)
    if not edit:
        form["visibility"] = request.visibility
        if request.in_reply_to_id:
            form["in_reply_to_id"] = request.in_reply_to_id
    return form


def status_from(data: Mapping[str, Any]) -> PostedStatus:
    """A status document; :class:`Unreadable` without the id and URI that name it."""
    if "id" not in data or "uri" not in data:
        raise Unreadable("no id or uri in the status")
    url = data.get("url")
    return PostedStatus(
        id=str(data["id"]),
        url=url if isinstance(url, str) else None,
        uri=str(data["uri"]),
        content=text(data, "content"),
        created_at=text(data, "created_at"),
        in_reply_to_id=text(data, "in_reply_to_id") or None,
        visibility=text(data, "visibility"),
        account_id=_author(data),
    )


def account_from(data: Mapping[str, Any]) -> Account:
    """An account document; :class:`Unreadable` without its id or ``acct``."""
    try:
        return Account(id=str(data["id"]), acct=str(data["acct"]), url=text(data, "url"))
    except KeyError as missing:
        raise Unreadable(f"no {missing} in the account") from None


def text(data: Mapping[str, Any], key: str) -> str:
    """A string field, or ``""`` where it is missing or not a string."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _author(item: Mapping[str, Any]) -> str | None:
    account = item.get("account")
    return str(account["id"]) if isinstance(account, dict) and "id" in account else None


def scopes_from(application: Any) -> list[str] | None:
    """An application's ``scopes``: a list (Mastodon) or one space-separated string."""
    found = application.get("scopes") if isinstance(application, dict) else None
    if isinstance(found, list):
        return [str(scope) for scope in found]
    if isinstance(found, str):
        return found.split()
    return None


# -- software -----------------------------------------------------------------------------


def nodeinfo_href(links: Any, base_url: str) -> str | None:
    """The path of the newest NodeInfo document on ``base_url``'s own origin, if linked."""
    if not isinstance(links, dict) or not isinstance(links.get("links"), list):
        return None
    hrefs = sorted(
        (str(link.get("rel", "")), str(link.get("href", "")))
        for link in links["links"]
        if isinstance(link, dict)
    )
    origin = urlsplit(base_url)
    for _, href in reversed(hrefs):
        parts = urlsplit(href)
        if (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc) and parts.path:
            return parts.path
    return None


def software_from(nodeinfo: Any, instance: Any) -> Software:
    """NodeInfo's ``software`` name (lower case) and version, and the instance's version text."""
    name = version = None
    software = nodeinfo.get("software") if isinstance(nodeinfo, dict) else None
    if isinstance(software, dict):
        name = text(software, "name").lower() or None
        version = text(software, "version") or None
    instance_version = text(instance, "version") if isinstance(instance, dict) else ""
    return Software(name=name, version=version, instance_version=instance_version or None)


# -- instance documents -------------------------------------------------------------------


def has_max_characters(document: Mapping[str, Any]) -> bool:
    """Whether a v2 instance document names the length limit (else v1 is read too)."""
    return limit_value(document, "statuses", "max_characters") is not None


def limit_value(document: Mapping[str, Any], group: str, name: str) -> int | None:
    """A positive integer setting under ``configuration.<group>.<name>``."""
    configuration = document.get("configuration")
    if not isinstance(configuration, dict):
        return None
    section = configuration.get(group)
    if not isinstance(section, dict):
        return None
    return _positive_int(section.get(name))


def limits_from(documents: list[Mapping[str, Any]]) -> Limits:
    """Each limit from the first document that has it (v2, then v1), else Mastodon's default."""
    defaults = Limits()

    def setting(group: str, name: str, legacy: str | None = None) -> Iterable[int | None]:
        for document in documents:
            yield limit_value(document, group, name)
            if legacy is not None:
                yield _positive_int(document.get(legacy))

    max_characters = _first(setting("statuses", "max_characters", "max_toot_chars"), None)
    per_url = _first(setting("statuses", "characters_reserved_per_url"), None)
    attachments = _first(setting("statuses", "max_media_attachments"), None)
    image_size = _first(setting("media_attachments", "image_size_limit", "upload_limit"), None)
    return Limits(
        max_characters=max_characters or defaults.max_characters,
        characters_reserved_per_url=per_url or defaults.characters_reserved_per_url,
        max_media_attachments=attachments or defaults.max_media_attachments,
        supported_mime_types=_mime_types(documents),
        image_size_limit=image_size,
        api_version=_api_version(documents),
    )


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _first(values: Iterable[int | None], default: int | None) -> int | None:
    return next((value for value in values if value is not None), default)


def _mime_types(documents: list[Mapping[str, Any]]) -> frozenset[str]:
    for document in documents:
        configuration = document.get("configuration")
        media = configuration.get("media_attachments") if isinstance(configuration, dict) else None
        types = media.get("supported_mime_types") if isinstance(media, dict) else None
        if isinstance(types, list):
            return frozenset(item for item in types if isinstance(item, str))
    return frozenset()


def _api_version(documents: list[Mapping[str, Any]]) -> int | None:
    for document in documents:
        versions = document.get("api_versions")
        if isinstance(versions, dict):
            version = versions.get("mastodon")
            if isinstance(version, int) and not isinstance(version, bool):
                return version
    return None
