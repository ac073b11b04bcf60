"""Server profiles: how each Mastodon-API server really counts, refuses and lists statuses.

Servers that speak the Mastodon client API differ where the documentation is
silent or wrong: what a "character" is, whether the advertised
``characters_reserved_per_url`` is applied, how "too long" is answered,
whether an edit is checked, whether the account's own followers-only and
direct posts can be listed (which exactly-once reconciliation needs), and which
scopes a token must have. ``PROFILES`` is the one table of those facts, each
taken from the server's own source (``docs/servers.md`` cites file and
function); `detect` picks a profile from NodeInfo's ``software.name`` or the
instance document's ``version`` text.

Software the table does not know gets ``UNKNOWN``: a status must fit whether
URLs count as the advertised reservation or in full, and whether length is
grapheme clusters, code points or UTF-16 units; and it has no listing of
non-public statuses, so an unknown outcome there is never resolved by posting
again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

Unit = Literal["graphemes", "code_points", "utf16"]
Listing = Literal["account_statuses", "home_timeline"]


@dataclass(frozen=True, slots=True)
class Profile:
    """What newsbot must assume about one server software; see the module docstring.

    ``units`` and ``urls`` name every way the server may count (the largest
    result is the one that matters); ``urls`` "full" is the text as written,
    remote mentions whole too (`newsbot.mastodon.length.countable`).
    ``limit_margin`` is subtracted from the limit for servers that refuse a
    status of exactly the limit. ``public_listing`` finds public and unlisted
    posts; ``private_listing`` also finds followers-only and direct ones
    (``None``: no endpoint does).
    """

    name: str
    units: tuple[Unit, ...]
    urls: tuple[Literal["reserved", "full"], ...]
    spoiler_counts: bool
    limit_margin: int
    too_long: str
    edit_checks_length: bool
    public_listing: Listing | None
    private_listing: Listing | None
    scopes: tuple[str, ...]
    idempotency_key: bool
    errors: str
    source: str
    visibilities: tuple[str, ...] = ("public", "unlisted", "private", "direct")
    """Visibilities the server can post (Friendica answers direct with an internal error)."""
    opaque_edit_errors: bool = False
    """A refused edit is answered with one error whatever the cause (too long, a bad language,
    media): the answer cannot say that the edit was too long."""

    def listing_for(self, visibility: str) -> Listing | None:
        """The endpoint that shows this account's own posts of ``visibility``, if any."""
        if visibility in ("public", "unlisted"):
            return self.public_listing
        return self.private_listing

    @property
    def counts_urls_in_full(self) -> bool:
        return "full" in self.urls

    def with_learned(self, unit: Unit | None, urls_in_full: bool) -> Profile:
        """This profile after a length error taught that the server counts more than assumed."""
        units = self.units if unit is None or unit in self.units else (*self.units, unit)
        urls = self.urls if not urls_in_full or "full" in self.urls else (*self.urls, "full")
        return replace(self, units=units, urls=urls)


_MASTODON_SCOPES = ("read:accounts", "read:statuses", "write:statuses", "write:media")

MASTODON = Profile(
    name="mastodon",
    units=("graphemes",),
    urls=("reserved",),
    spoiler_counts=True,
    limit_margin=0,
    too_long='422 {"error": "Validation failed: Text character limit of 500 exceeded"}',
    edit_checks_length=True,
    public_listing="account_statuses",
    private_listing="account_statuses",
    scopes=_MASTODON_SCOPES,
    idempotency_key=True,
    errors="JSON",
    source="app/validators/status_length_validator.rb; app/models/account_statuses_filter.rb",
)

PROFILES: dict[str, Profile] = {
    "mastodon": MASTODON,
    "takahe": Profile(
        name="takahe",
        units=("code_points",),
        urls=("full",),
        spoiler_counts=False,
        limit_margin=0,
        too_long='400 {"error": "Status is too long"}',
        edit_checks_length=False,
        public_listing="account_statuses",
        private_listing="home_timeline",
        scopes=("read", "write"),
        idempotency_key=False,
        errors="JSON for API errors, HTML for 404, plain text for a bad token",
        source="api/views/statuses.py post_status; api/views/timelines.py home",
    ),
    # Pleroma and Akkoma measure String.length (grapheme clusters) of the trimmed
    # `String.trim(status) <> spoiler_text`: the text as sent, URLs and remote mentions whole,
    # never the HTML made of it. Older releases refuse a status of exactly the limit
    # (`length < limit` in validate_character_limit/3): one in hand. An edit runs the same
    # ActivityDraft (common_api.ex update -> make_update_data), but any failure of it is
    # answered 400 "internal_server_error" (status_controller.ex update).
    "pleroma": Profile(
        name="pleroma",
        units=("graphemes",),
        urls=("full",),
        spoiler_counts=True,
        limit_margin=1,
        too_long=(
            '422 {"error": "The status is over the character limit"}; an edit, '
            '400 {"error": "internal_server_error"}'
        ),
        edit_checks_length=True,
        public_listing="account_statuses",
        private_listing="account_statuses",
        scopes=("read:accounts", "read:statuses", "write:statuses", "write:media"),
        idempotency_key=True,
        errors="JSON",
        source=(
            "lib/pleroma/web/common_api/activity_draft.ex full_payload; "
            "lib/pleroma/web/common_api/utils.ex validate_character_limit; "
            "lib/pleroma/web/mastodon_api/controllers/status_controller.ex update"
        ),
        opaque_edit_errors=True,
    ),
    "gotosocial": Profile(
        name="gotosocial",
        units=("code_points",),
        urls=("full",),
        spoiler_counts=True,
        limit_margin=0,
        too_long='400 {"error": "Bad Request: status too long, N characters provided ..."}',
        edit_checks_length=True,
        public_listing="account_statuses",
        private_listing="account_statuses",
        scopes=("read:accounts", "read:statuses", "write:statuses", "write:media"),
        idempotency_key=False,
        errors="JSON",
        source="internal/api/client/statuses/statuscreate.go validateNormalizeCreateStatus",
    ),
    "misskey": Profile(
        name="misskey",
        units=("utf16",),
        urls=("full",),
        spoiler_counts=False,
        limit_margin=0,
        too_long="400 or 500, JSON from the Misskey API it forwards to",
        edit_checks_length=True,
        public_listing="account_statuses",
        private_listing="home_timeline",
        scopes=("read", "write"),
        idempotency_key=False,
        errors="JSON",
        source=(
            "packages/backend/src/server/api/mastodon/endpoints/meta.ts getInstance; "
            "NoteCreateService text.length"
        ),
    ),
    "friendica": Profile(
        name="friendica",
        units=("graphemes", "code_points"),
        urls=("reserved", "full"),
        spoiler_counts=True,
        limit_margin=0,
        too_long="no length check on create (the limit is kept to stay readable elsewhere)",
        edit_checks_length=False,
        public_listing="account_statuses",
        private_listing="account_statuses",
        scopes=("read", "write"),
        idempotency_key=False,
        errors='JSON {"error", "error_description"}',
        source="src/Module/Api/Mastodon/Statuses.php post",
        visibilities=("public", "unlisted", "private"),
    ),
}

# Forks and relatives that share a profile's code paths.
ALIASES = {
    "glitch-soc": "mastodon",
    "glitchsoc": "mastodon",
    "hometown": "mastodon",
    "akkoma": "pleroma",
    "rebased": "pleroma",
    "sharkey": "misskey",
    "iceshrimp": "misskey",
    "firefish": "misskey",
    "calckey": "misskey",
    "foundkey": "misskey",
    "cherrypick": "misskey",
}

UNKNOWN = Profile(
    name="unknown",
    units=("graphemes", "code_points", "utf16"),
    urls=("reserved", "full"),
    spoiler_counts=True,
    limit_margin=1,
    too_long="any 400 or 422 that says so",
    edit_checks_length=True,
    public_listing="account_statuses",
    private_listing=None,
    scopes=("read", "write"),
    idempotency_key=False,
    errors="JSON, plain text or HTML",
    source="none: conservative rules",
)

_VERSION_TEXT = re.compile(r"compatible;\s*([A-Za-z][\w.-]*)", re.IGNORECASE)


def profile_named(name: str) -> Profile:
    """The profile called ``name`` (an alias such as ``akkoma`` too); ``KeyError`` otherwise."""
    key = name.strip().lower()
    if key == UNKNOWN.name:
        return UNKNOWN
    return PROFILES[ALIASES.get(key, key)]


def detect(software: str | None, version_text: str | None = None) -> Profile:
    """The profile of NodeInfo ``software.name``, else of the instance ``version`` text.

    Pleroma, Sharkey and others write "2.7.2 (compatible; Pleroma 2.5.0)" in
    the instance document's ``version``; Mastodon writes a bare version.
    """
    for candidate in (software, _compatible_name(version_text)):
        if candidate:
            try:
                return profile_named(candidate)
            except KeyError:
                continue
    bare_version = re.fullmatch(r"\d+\.\d+\.\d+\S*", (version_text or "").strip())
    if software is None and bare_version:
        return MASTODON  # a bare version, and no NodeInfo to say otherwise
    return UNKNOWN


def _compatible_name(version_text: str | None) -> str | None:
    match = _VERSION_TEXT.search(version_text or "")
    return match.group(1) if match else None
