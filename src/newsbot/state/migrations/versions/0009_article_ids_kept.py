"""Posts keep their articles when the id rule changes: non-Latin names, NFC ids.

Ids made from paths used to fold each name to ASCII, and a name folding lost
letters of got what was left (``北京.md`` -> ``_``, ``2020-北京.md`` ->
``2020``); now such a name keeps its letters (`newsbot.articles.id_segment`),
and an id given in front matter is kept in NFC (`newsbot.articles.given_id`).
An article whose id changed would be new to every target: posted again, and
its old post deleted as withdrawn.

So each stored article (the one that owns its id) whose id the new rule
changes has its deliveries and related-link rows renamed to the new id, and
its index row too, so a publish pass before the next build sees the same
article. The build fingerprint is dropped: the next build reads every file
again, with the new rule. The Mastodon post is then edited (its link moved
with the page). An id written in front matter exactly as the old rule would
have made it from a name that lost letters (``id: 2020`` in ``2020-北京.md``)
cannot be told from a derived one and is renamed too; the next build reads it
back as given, and that article is posted anew.

ActivityPub notes are left as they were: a note's id is its article's, so
followers get the old note deleted and the new one created.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

from newsbot.articles import given_id, id_from_path

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RENAMED = ("deliveries", "post_related")
"""Tables keyed by (target, article_id) that follow an article's id."""
STALE_META = ("fingerprint", "build_stamp")
"""Meta keys whose absence makes the next build read every file again."""


def upgrade() -> None:
    conn = op.get_bind()
    query = sa.text("SELECT path, id, data FROM articles WHERE NOT shadowed")
    rows = [(str(row.path), str(row.id), str(row.data)) for row in conn.execute(query)]
    taken = set(conn.execute(sa.text("SELECT id FROM articles")).scalars())
    for path, old, data in rows:
        new = new_id(path, old)
        if new == old or new in taken:
            continue  # another file has that id already: it keeps it
        _rename(conn, path, old, new, data)
        taken.add(new)
    for key in STALE_META:
        conn.execute(sa.text("DELETE FROM meta WHERE key = :key"), {"key": key})


def downgrade() -> None:
    """Nothing to undo: the older rule's ids come back with the next full build."""


def new_id(path: str, old: str) -> str:
    """The id the article at ``path`` with stored id ``old`` has under the new rule."""
    return id_from_path(path) if old == legacy_id(path) else given_id(old)


def legacy_id(path: str) -> str:
    """The id the older rule made from ``path`` (frozen here: that rule is gone)."""

    def fold(part: str) -> str:
        ascii_only = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
        return slug[:80].rstrip("-") or "_"

    return "/".join(fold(part) for part in PurePosixPath(path).with_suffix("").parts)


def _rename(conn: sa.Connection, path: str, old: str, new: str, data: str) -> None:
    for table in RENAMED:
        conn.execute(
            sa.text(
                f"UPDATE {table} SET article_id = :new WHERE article_id = :old"  # noqa: S608
                f" AND target NOT IN (SELECT target FROM {table} WHERE article_id = :new)"
            ),
            {"old": old, "new": new},
        )
    article = json.loads(data)
    article["id"] = new
    stored = json.dumps(article, ensure_ascii=False, separators=(",", ":"))
    conn.execute(
        sa.text("UPDATE articles SET id = :new, data = :data WHERE path = :path"),
        {"new": new, "data": stored, "path": path},
    )
