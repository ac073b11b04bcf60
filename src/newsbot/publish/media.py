"""An article's lead image for its post: which file, read from the store and uploaded.

A post never waits on its image: a file that cannot be read (or is refused:
outside the store, a type the server does not take, larger than the server
takes) is left out with a warning, and the status goes without it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from newsbot.articles import Article
from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.documents import Limits
from newsbot.mastodon.errors import MastodonError
from newsbot.settings import TargetSettings
from newsbot.store.assets import AssetRefused, open_asset, store_path

log = logging.getLogger(__name__)

ALT_LENGTH = 1500
"""The longest alt text Mastodon takes."""
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
"""Mastodon's image limit (``MediaAttachment::IMAGE_LIMIT``, 4.2+): a server may state none."""


def shown_image(
    target: TargetSettings, media_prefix: str, article: Article
) -> dict[str, str] | None:
    """The image the dry run names for ``article``: a store image, when the target sends media."""
    image = article.image
    if not target.media or image is None or not image.url:
        return None
    if not media_prefix or not image.url.startswith(media_prefix):
        return None
    return {"url": image.url, "alt": image.alt}


@dataclass(frozen=True, slots=True)
class Media:
    """Uploads lead images of one target's posts from the store's files."""

    target_name: str
    target: TargetSettings
    client: MastodonClient
    root: Path | None
    prefix: str

    def upload(self, article: Article, limits: Limits) -> tuple[str, ...]:
        """The lead image uploaded with its alt text (its media id), or nothing."""
        image = article.image
        if not self.target.media or image is None or not image.url or self.root is None:
            return ()
        if not self.prefix:
            return ()
        mime = image.type or "application/octet-stream"
        supported = limits.supported_mime_types
        if supported and mime not in supported:
            log.warning(
                "posting without the image: %s is %s, which the server does not take",
                image.url, mime, extra={"target": self.target_name, "article": article.id},
            )  # fmt: skip
            return ()
        try:
            path = store_path(image.url, self.prefix)
            if path is None:
                return ()
            limit = limits.image_size_limit or IMAGE_SIZE_LIMIT
            with open_asset(self.root, path) as (asset, handle):
                # Checked before reading, and read no further than the limit (the file
                # may grow meanwhile): a server refuses a bigger image after the whole
                # of it was held in memory and sent, at each try.
                data = handle.read(limit + 1) if asset.size <= limit else b""
            if asset.size > limit or len(data) > limit:
                log.warning(
                    "posting without the image: %s is %d bytes, over the limit of %d bytes",
                    path,
                    max(asset.size, len(data)),
                    limit,
                    extra={"target": self.target_name, "article": article.id},
                )
                return ()
            name = path.rsplit("/", 1)[-1]
            media_id = self.client.upload_media(data, name, mime, image.alt[:ALT_LENGTH])
        except (AssetRefused, OSError, MastodonError) as exc:
            log.warning(
                "posting without the image: %s",
                exc,
                extra={"target": self.target_name, "article": article.id},
            )
            return ()
        return (media_id,)
