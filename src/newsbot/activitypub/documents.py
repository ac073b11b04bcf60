"""The JSON documents of the actor: discovery, actor, notes, activities and collections.

Pure functions of the settings, the key's public half and the articles: the
routes serve them, the outbox stores them. Ids are URLs on the site's own
host that never change for an article (its id is in the path), so receivers
de-duplicate by them across retries and restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from newsbot.articles import Article
from newsbot.publish.compose import RelatedLink, hashtags

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = AS + "#Public"
CONTEXT: list[Any] = [
    AS,
    "https://w3id.org/security/v1",
    {
        "Hashtag": "as:Hashtag",
        "sensitive": "as:sensitive",
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "toot": "http://joinmastodon.org/ns#",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
    },
]
ACTIVITY_JSON = "application/activity+json"
JRD = "application/jrd+json"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
MAX_HASHTAGS = 10


def site_netloc(base_url: str) -> str:
    """The site's host with its port when not the default one, as a ``Host`` header has it."""
    return base_url.split("://", 1)[1].split("/", 1)[0].lower()


def webfinger_host(base_url: str) -> str:
    """The WebFinger host of a site: its host alone, without a port.

    Mastodon takes an actor's domain as its id's host without the port
    (``Addressable::URI#normalized_host`` in FetchRemoteActorService), asks
    ``acct:NAME@HOST`` of ``https://HOST/.well-known/webfinger`` and accepts
    the actor only if the answer's ``subject`` names that same host; a
    ``subject`` with the port sends it on a second lookup and leaves the
    account's domain with a port in it.
    """
    netloc = site_netloc(base_url)
    if netloc.startswith("["):  # an IPv6 literal: the port follows the bracket
        return netloc.split("]", 1)[0] + "]"
    return netloc.rsplit(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who the site is on the fediverse, and where its documents live."""

    base_url: str
    """The site's base URL, ending in ``/``."""
    username: str
    name: str
    summary: str
    public_pem: str
    language: str
    icon: str | None = None
    published: datetime | None = None

    @property
    def host(self) -> str:
        """The host of the actor's handle (``acct:NAME@HOST``): no port."""
        return webfinger_host(self.base_url)

    @property
    def netloc(self) -> str:
        """The host and non-default port the site is served on."""
        return site_netloc(self.base_url)

    @property
    def id(self) -> str:
        return f"{self.base_url}ap/users/{self.username}"

    @property
    def key_id(self) -> str:
        return f"{self.id}#main-key"

    @property
    def inbox(self) -> str:
        return f"{self.id}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}ap/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.id}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.id}/followers"

    @property
    def following(self) -> str:
        return f"{self.id}/following"

    @property
    def acct(self) -> str:
        return f"acct:{self.username}@{self.host}"

    def note_id(self, article_id: str) -> str:
        return f"{self.base_url}ap/notes/{quote(article_id, safe='/')}"

    def activity_id(self, kind: str, article_id: str, revision: str) -> str:
        """Stable for one (kind, article, revision): a resend is the same activity."""
        digest = hashlib.sha256(f"{kind}\n{article_id}\n{revision}".encode()).hexdigest()[:32]
        return f"{self.base_url}ap/activities/{kind.lower()}/{digest}"


def webfinger(actor: Actor) -> dict[str, Any]:
    return {
        "subject": actor.acct,
        "aliases": [actor.id],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor.id},
            {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
             "href": actor.base_url},
        ],
    }  # fmt: skip


def host_meta(actor: Actor) -> str:
    template = f"{actor.base_url}.well-known/webfinger?resource={{uri}}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="application/xrd+xml" template="{escape(template)}"/>\n'
        "</XRD>\n"
    )


def nodeinfo_links(actor: Actor) -> dict[str, Any]:
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{actor.base_url}nodeinfo/2.1"}]}


def nodeinfo(version: str, posts: int) -> dict[str, Any]:
    return {
        "version": "2.1",
        "software": {"name": "newsbot", "version": version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {"users": {"total": 1, "activeMonth": 1, "activeHalfyear": 1},
                  "localPosts": posts},
        "metadata": {},
    }  # fmt: skip


def actor_document(actor: Actor) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "id": actor.id,
        "type": "Service",
        "preferredUsername": actor.username,
        "name": actor.name,
        "summary": f"<p>{escape(actor.summary)}</p>",
        "url": actor.base_url,
        "inbox": actor.inbox,
        "outbox": actor.outbox,
        "followers": actor.followers,
        "following": actor.following,
        "endpoints": {"sharedInbox": actor.shared_inbox},
        "manuallyApprovesFollowers": False,
        "discoverable": True,
        "indexable": True,
        "publicKey": {"id": actor.key_id, "owner": actor.id, "publicKeyPem": actor.public_pem},
    }
    if actor.icon:
        doc["icon"] = {"type": "Image", "url": actor.icon}
    if actor.published is not None:
        doc["published"] = iso(actor.published)
    return doc


def note(
    actor: Actor,
    article: Article,
    summary: str,
    related: Sequence[RelatedLink] = (),
    *,
    updated: datetime | None = None,
) -> dict[str, Any]:
    """The article as a Note that Mastodon keeps as it is (only p, br, a and span in content)."""
    tags = hashtags(article.tags, MAX_HASHTAGS)
    tag_links = [
        f'<a href="{escape(_tag_url(actor, name), quote=True)}" class="mention hashtag" '
        f'rel="tag">#<span>{escape(name[1:])}</span></a>'
        for name in tags
    ]
    url = escape(article.url, quote=True)
    parts = [f"<p><strong>{escape(article.title)}</strong></p>"]
    if summary:
        parts.append(f"<p>{escape(summary)}</p>")
    parts.append(f'<p><a href="{url}">{escape(article.url)}</a></p>')
    if related:
        links = "<br>".join(
            f'<a href="{escape(link.url, quote=True)}">{escape(link.title)}</a>' for link in related
        )
        parts.append(f"<p>Related:<br>{links}</p>")
    if tag_links:
        parts.append("<p>" + " ".join(tag_links) + "</p>")
    content = "".join(parts)
    language = article.lang or actor.language
    doc: dict[str, Any] = {
        "id": actor.note_id(article.id),
        "type": "Note",
        "attributedTo": actor.id,
        "to": [PUBLIC],
        "cc": [actor.followers],
        "published": iso(article.published),
        "url": article.url,
        "content": content,
        "contentMap": {language: content},
        "sensitive": bool(article.content_warning),
        "tag": [{"type": "Hashtag", "href": _tag_url(actor, name), "name": name} for name in tags],
        "attachment": [],
    }
    if article.content_warning:
        doc["summary"] = article.content_warning
    if updated is not None:
        doc["updated"] = iso(updated)
    # A scraped page's photo may have a caption and credit but no address: no attachment then.
    if article.image is not None and article.image.url.startswith(("https://", "http://")):
        image: dict[str, Any] = {"type": "Document", "url": article.image.url,
                                 "name": article.image.alt}  # fmt: skip
        if article.image.type:
            image["mediaType"] = article.image.type
        doc["attachment"].append(image)
    return doc


def tombstone(actor: Actor, article_id: str, deleted: datetime) -> dict[str, Any]:
    return {
        "@context": AS,
        "id": actor.note_id(article_id),
        "type": "Tombstone",
        "formerType": "Note",
        "deleted": iso(deleted),
    }


def activity(
    actor: Actor, kind: str, object_: dict[str, Any] | str, activity_id: str, when: datetime
) -> dict[str, Any]:
    """A Create/Update/Delete addressed like its note: public, and to the followers."""
    return {
        "@context": CONTEXT,
        "id": activity_id,
        "type": kind,
        "actor": actor.id,
        "published": iso(when),
        "to": [PUBLIC],
        "cc": [actor.followers],
        "object": object_,
    }


def accept(actor: Actor, follow: dict[str, Any], accept_id: str) -> dict[str, Any]:
    """The answer to a Follow, with the Follow embedded (Follow ids are never fetched)."""
    return {"@context": AS, "id": accept_id, "type": "Accept", "actor": actor.id,
            "object": follow}  # fmt: skip


def collection(collection_id: str, total: int, first: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        doc["first"] = first
    return doc


def collection_page(
    page_id: str, part_of: str, items: Sequence[Any], next_page: str | None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": list(items),
    }
    if next_page is not None:
        doc["next"] = next_page
    return doc


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tag_url(actor: Actor, name: str) -> str:
    return f"{actor.base_url}tags/{quote(name[1:].lower())}/"
