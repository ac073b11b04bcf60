"""Front-matter fields to an `Article`: types checked, dates zoned, links made absolute.

Both readers (Markdown and scraped pages) end here, so an article means the
same whatever file it came from. Every error names its field and line.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from newsbot.articles import (
    Article,
    Image,
    ascii_host,
    forbidden_characters,
    given_id,
    id_from_path,
    id_problem,
    permalink,
    strip_forbidden,
)
from newsbot.bidi import balance, is_balanced
from newsbot.errors import ArticleError, Problem
from newsbot.layout import page_file, page_problem
from newsbot.settings import language_problem
from newsbot.store.assets import AssetRefused, media_url, store_path

FIELDS = (
    "id", "title", "date", "updated", "author", "summary", "tags", "section", "lang",
    "image", "related", "draft", "withdrawn", "url", "content_warning",
)  # fmt: skip
ALIASES = {"published": "date", "authors": "author", "categories": "tags", "cw": "content_warning"}
MAX_RELATED = 100
"""References kept of one article. Pages and posts show at most ten; each reference costs a
look-up in every build that reads the file, so a page of 20,000 "Read more" headlines made
each such build take seconds per thousand of them."""


@dataclass(frozen=True, slots=True)
class Site:
    """What the readers need to know of the site: where links point and which zone dates are in."""

    base_url: str
    permalink: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Source:
    """Where an article came from: its path in the store and a way to stat its neighbours;
    and, for ``newsbot check``, when it is read."""

    path: str
    asset_size: Callable[[str], int | None]
    """The size of a store file an image names; raises `AssetRefused` (None: not there)."""
    now: datetime | None = None
    """When the check reads it: a revision date still to come is then worth a warning
    (`revision_to_come`). A build gives none: the date is only held back, nothing is wrong
    with what is published, and a build reports (and exits 1 on) errors only."""


def build(
    fields: Mapping[str, Any],
    lines: Mapping[str, int],
    body: str,
    source: Source,
    site: Site,
    body_line: int | None = None,
) -> tuple[Article, list[Problem]]:
    """The article described by ``fields``, and the problems that did not stop it.

    ``body_line`` is the line of the file where ``body`` starts, when the body
    is the file's own text rather than one made from it.
    """
    _refuse_aliased_twice(fields, lines)
    values = {ALIASES.get(key, key): value for key, value in fields.items()}
    line_of = {ALIASES.get(key, key): line for key, line in lines.items()}
    warnings: list[Problem] = []

    def fail(field: str, message: str) -> ArticleError:
        return ArticleError(message, line=line_of.get(field), field=field)

    def warn(field: str, message: str) -> None:
        warnings.append(source_problem(source, line_of, field, message))

    title = _text(values, "title", fail, required=True)
    published = _when(values, "date", fail, site.zone, required=True)
    updated = _when(values, "updated", fail, site.zone) or published
    if updated < published:
        warnings.append(source_problem(source, line_of, "updated", "is before date; using date"))
        updated = published
    if source.now is not None and updated > source.now:
        warnings.append(revision_to_come(source.path, updated, line_of.get("updated")))
    article_id = given_id(_text(values, "id", fail)) or id_from_path(source.path)
    bad_id = id_problem(article_id)
    if bad_id:
        raise fail("id", f"{bad_id}, got {article_id!r}")
    url = _text(values, "url", fail)
    if url and not _is_absolute(url):
        raise fail("url", f"must be an absolute http(s) URL, got {url!r}")
    try:
        ascii_host(url or "")
    except ValueError as bad:
        raise fail("url", f"{bad}, got {url!r}") from None
    link = url or permalink(site.base_url, site.permalink, article_id, published)
    no_page = page_problem(site.base_url, link)
    if no_page:
        field = "url" if url else "id"
        warnings.append(source_problem(source, line_of, field, f"no page is written: {no_page}"))
    lang = _text(values, "lang", fail)
    if lang and (bad_lang := language_problem(lang)) is not None:
        warn("lang", f"{bad_lang}, got {lang!r}; the site's language is used")
        lang = ""
    for name in FIELDS:
        if _has_forbidden(values.get(name)):
            warn(name, "control characters removed")
        if not _all_text(values.get(name), is_balanced):
            warn(name, UNBALANCED)
    body_lines = forbidden_characters(body)
    if body_lines:
        line = None if body_line is None else body_line + body_lines[0] - 1
        warnings.append(
            Problem(
                source.path, "control characters removed from the body", line=line, field="body"
            )
        )
    image, image_problem = _image(values, line_of.get("image"), source, site)
    if image_problem is not None:
        warnings.append(image_problem)
    if not is_balanced(body):
        warnings.append(Problem(source.path, UNBALANCED, line=body_line, field="body"))
    article = Article(
        id=article_id,
        path=source.path,
        title=balance(" ".join(title.split())),  # a headline is one line
        published=published,
        updated=updated,
        body=strip_forbidden(body),
        url=link,
        authors=_texts(values, "author", fail, warn),
        summary=_text(values, "summary", fail).strip(),
        tags=tuple(dict.fromkeys(_texts(values, "tags", fail, warn))),
        section=_text(values, "section", fail).strip() or None,
        lang=lang or None,
        image=image,
        related=_related(values, fail, warn),
        draft=_flag(values, "draft", fail),
        withdrawn=_flag(values, "withdrawn", fail),
        content_warning=_text(values, "content_warning", fail).strip() or None,
    )
    if not article.title:
        raise fail("title", "must not be empty")
    return article, warnings


UNBALANCED = "bidirectional controls left open closed, stray terminators removed"


@dataclass(frozen=True, slots=True)
class Page:
    """The page an article claims: its output file, and the field its link came from."""

    file: str
    field: str
    """``id`` when the link is the permalink the id makes, else ``url``."""


def page_of(article: Article, site: Site) -> Page | None:
    """The page ``article`` is written to on ``site``; None when it has none here.

    Two ids can make one page (``Cafe`` and ``cafe``), and a ``url`` can name
    another article's: the second would overwrite the first, so the index gives
    each page to one file (`newsbot.state.index`).
    """
    name = page_file(site.base_url, article.url)
    if name is None:
        return None
    made = permalink(site.base_url, site.permalink, article.id, article.published)
    return Page(name, "id" if article.url == made else "url")


def revision_to_come(path: str, updated: datetime, line: int | None) -> Problem:
    """The warning of an ``updated`` later than the check: feeds and pages leave it out until
    it passes (`newsbot.articles.Article.as_seen`)."""
    return Problem(
        path,
        f"{updated.isoformat()} is still to come; feeds and pages show the article's date"
        " until then, and this one from then on",
        line=line,
        field="updated",
        warning=True,
    )


def source_problem(source: Source, line_of: Mapping[str, int], field: str, message: str) -> Problem:
    return Problem(source.path, message, line=line_of.get(field), field=field)


def _refuse_aliased_twice(fields: Mapping[str, Any], lines: Mapping[str, int]) -> None:
    """Refuse a field given under two names (``date`` and ``published``): one would be lost."""
    for alias, name in ALIASES.items():
        if alias in fields and name in fields:
            first, second = sorted((alias, name), key=lambda key: lines.get(key, 0))
            raise ArticleError(
                f"given twice, as '{first}' (line {lines.get(first)}) and '{second}' "
                f"(line {lines.get(second)}); keep one",
                line=lines.get(second),
                field=name,
            )


def clean_text(text: str) -> str:
    """Text from the store without what XML forbids, its bidirectional controls balanced."""
    return balance(strip_forbidden(text))


Fail = Callable[[str, str], ArticleError]
Warn = Callable[[str, str], None]


def _text(values: Mapping[str, Any], name: str, fail: Fail, required: bool = False) -> str:
    value = values.get(name)
    if value is None:
        if required:
            raise fail(name, "is required")
        return ""
    if not isinstance(value, str):
        raise fail(name, f"must be text, got {_kind(value)}")
    if required and not value.strip():
        raise fail(name, "must not be empty")
    return clean_text(value)


def _texts(values: Mapping[str, Any], name: str, fail: Fail, warn: Warn) -> tuple[str, ...]:
    """A list of text; numbers count as the text YAML read, other items are dropped with a warning.

    A lone value is a list of one (tags: a comma-separated list). One odd item
    does not cost the article its other tags or authors, let alone its place in the feeds.
    """
    value = values.get(name)
    if value is None:
        return ()
    if _is_number(value):
        value = str(value)
    if isinstance(value, str):
        items = value.split(",") if name == "tags" else [value]
    elif isinstance(value, list):
        items = [str(item) if _is_number(item) else item for item in value]
        dropped = [
            f"{number} ({_kind(item)})"
            for number, item in enumerate(items, 1)
            if item is not None and not isinstance(item, str)
        ]
        if dropped:
            warn(name, f"item(s) {', '.join(dropped)} not text, dropped; quote a value to keep it")
        items = [item for item in items if isinstance(item, str)]
    else:
        raise fail(name, f"must be text or a list of text, got {_kind(value)}")
    cleaned = (clean_text(item).strip() for item in items)
    return tuple(item for item in cleaned if item)


def _related(values: Mapping[str, Any], fail: Fail, warn: Warn) -> tuple[str, ...]:
    """The references, each once (a page's "Read more" in the body and after it), in order,
    the first `MAX_RELATED` of them."""
    related = tuple(dict.fromkeys(_texts(values, "related", fail, warn)))
    if len(related) > MAX_RELATED:
        warn("related", f"{len(related)} references; only the first {MAX_RELATED} are kept")
    return related[:MAX_RELATED]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flag(values: Mapping[str, Any], name: str, fail: Fail) -> bool:
    value = values.get(name, False)
    if not isinstance(value, bool):
        raise fail(name, f"must be true or false, got {_kind(value)}")
    return value


def _when(
    values: Mapping[str, Any], name: str, fail: Fail, zone: ZoneInfo, required: bool = False
) -> datetime:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise fail(name, "is required (e.g. 2015-08-20 or 2015-08-20T14:30:00+02:00)")
        return None  # type: ignore[return-value]
    try:
        return parse_date(value, zone)
    except ValueError as exc:
        raise fail(name, str(exc)) from None


def parse_date(value: Any, zone: ZoneInfo) -> datetime:
    """A UTC datetime from ISO 8601, RFC 2822 or a YAML date; zoneless values are in ``zone``."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        parsed = _parse_date_text(value.strip())
    else:
        raise ValueError(f"must be a date, got {_kind(value)}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    if not 1900 <= parsed.year <= 9998:
        raise ValueError(f"year {parsed.year} is out of range")
    return parsed.astimezone(UTC)


# A clock time in an RFC 2822-like date ("14:32", "2:32 PM", "14.32"), and what follows it.
_CLOCK = re.compile(
    r"(?<!\d)(?P<hour>\d{1,2})(?P<rest>[:.]\d{2}(?:[:.]\d{2})?)"
    r"(?:\s*(?P<half>[ap])\.?m\.?(?![a-z]))?(?P<zone>.*)$",
    re.IGNORECASE,
)


def _parse_date_text(text: str) -> datetime:
    candidate = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        return datetime.fromisoformat(candidate)
    except ValueError as iso_error:
        if _is_impossible_iso(text):
            raise ValueError(f"impossible date {text!r}: {iso_error}") from None
    clock = _twenty_four_hour(text)
    try:
        parsed = parsedate_to_datetime(clock)
    except (TypeError, ValueError):
        raise ValueError(
            f"cannot read {text!r} as a date (use 2015-08-20 or 2015-08-20T14:30:00+02:00)"
        ) from None
    _refuse_unknown_zone(text, parsed)
    return parsed


def _is_impossible_iso(text: str) -> bool:
    """Whether ``text`` is an ISO date (and time) whose numbers are out of range (02-30).

    Other text opening with an ISO date (``2015-08-20 14:32 UTC``) is a form not read, not
    an impossible date.
    """
    match = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2}))?", text)
    if match is None:
        return False
    year, month, day, hour, minute = (int(part or 0) for part in match.groups())
    try:
        datetime(year, month, day, hour, minute)
    except ValueError:
        return True
    return False


def _twenty_four_hour(text: str) -> str:
    """``text`` with a 12-hour time (``2:32 PM``) as 24-hour; RFC 2822 readers drop the PM."""
    match = _CLOCK.search(text)
    if match is None or match["half"] is None:
        return text
    hour = int(match["hour"])
    if not 1 <= hour <= 12:
        raise ValueError(f"{match['hour']}{match['rest']} {match['half']}m is not a 12-hour time")
    hour = hour % 12 + (12 if match["half"].lower() == "p" else 0)
    return f"{text[: match.start()]}{hour:02d}{match['rest']}{match['zone']}"


def _refuse_unknown_zone(text: str, parsed: datetime) -> None:
    """Refuse a zone name an RFC 2822 reader ignored (``CEST``): the time is not in the site's."""
    match = _CLOCK.search(text)
    zone = "" if match is None else match["zone"].strip()
    if parsed.tzinfo is None and zone not in ("", "-0000"):
        raise ValueError(
            f"unknown time zone {zone!r} in {text!r} (give an offset: 2015-08-20T14:30:00+02:00)"
        )


def _image(
    values: Mapping[str, Any], line: int | None, source: Source, site: Site
) -> tuple[Image | None, Problem | None]:
    """The lead image, or None and the problem that made it unusable.

    A bad image never costs the article: it is published without one, and the
    problem names the field. Store files go through `assets.store_path`, the
    one check every reader of an image file uses.
    """
    try:
        return _image_of(values.get("image"), source, site), None
    except AssetRefused as refused:
        return None, Problem(source.path, f"dropped the image: {refused}", line=line, field="image")


def _image_of(value: Any, source: Source, site: Site) -> Image | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict):
        raise AssetRefused(f"must be a URL or a mapping with url, alt, credit; got {_kind(value)}")
    value = {
        key: clean_text(part) if isinstance(part, str) else part for key, part in value.items()
    }
    unknown = set(value) - {"url", "alt", "credit", "caption", "type", "length"}
    if unknown:
        raise AssetRefused(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    parts = {key: value.get(key) for key in ("url", "alt", "credit", "caption", "type")}
    for key, part in parts.items():
        if part is not None and not isinstance(part, str):
            raise AssetRefused(f"{key} must be text, got {_kind(part)}")
    length = value.get("length")
    if length is not None and (
        not isinstance(length, int) or isinstance(length, bool) or length < 0
    ):
        raise AssetRefused("length must be a whole number of bytes")
    url = (parts["url"] or "").strip()
    kind = parts["type"]
    if url:
        url, length = _image_url(url, length, source, site)
    if url and kind is None:
        kind = mimetypes.guess_type(urlsplit(url).path)[0]
    alt = (parts["alt"] or parts["caption"] or "").strip()
    return Image(url=url, alt=alt, credit=(parts["credit"] or "").strip(), type=kind, length=length)


def _image_url(url: str, length: int | None, source: Source, site: Site) -> tuple[str, int | None]:
    """The public URL of an image and its length: a store file's are its own."""
    prefix = site.base_url + "media/"
    try:
        local = store_path(url, prefix, article_path=source.path)
    except AssetRefused as refused:
        raise AssetRefused(f"url {url!r} {refused}") from None
    if local is None:
        try:
            ascii_host(url)
        except ValueError as bad:
            raise AssetRefused(f"url {url!r}: {bad}") from None
        return url, length
    try:
        size = source.asset_size(local)
    except AssetRefused as refused:
        raise AssetRefused(f"url {url!r} {refused}") from None
    if size is None:
        raise AssetRefused(f"url {url!r} is not a file of the store")
    return media_url(prefix, local), length or size


def _is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _has_forbidden(value: Any) -> bool:
    """Whether a field's text, or any text in its list or mapping, holds forbidden characters."""
    return not _all_text(value, lambda text: not forbidden_characters(text))


def _all_text(value: Any, test: Callable[[str], bool]) -> bool:
    """Whether ``test`` holds for a field's text, or every text in its list or mapping."""
    if isinstance(value, str):
        return test(value)
    if isinstance(value, list):
        return all(_all_text(item, test) for item in value)
    if isinstance(value, dict):
        return all(_all_text(item, test) for item in value.values())
    return True


def _kind(value: Any) -> str:
    names = {
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), type(value).__name__)
