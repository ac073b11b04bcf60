"""Articles whose page could not be written wait for it, each on its own.

A build that could not write one page (a file where its folder is due, a folder
without write permission) still wrote the article's feeds and ended, so targets
posted a link to a page that was not there; and it left the whole output marked
unfinished, so every later build wrote every feed and page again while that one
page stayed unwritable. The table lists those articles (`newsbot.state.unwritten`):
they are not posted until a build writes their page, and builds retry just them.

An older version left no such list, only its output marked unfinished (which
still makes the next build write everything, and list what it cannot). Until
that build ends, the articles its last finished build stored wait as if their
pages were listed: any of them may be the one whose page it could not write.

Each output folder has its own list (copies of newsbot on one database may each
write a folder of their own); the rows made here are of folder ``""``, which
the next build of any folder takes up.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


HELD = "an older version's last build may not have written it; the next build writes it"
"""Why the articles of an older version's unfinished output wait."""


def upgrade() -> None:
    unwritten = op.create_table(
        "unwritten_pages",
        sa.Column("folder", sa.String(32), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("error", sa.Text, nullable=False),
    )
    meta = sa.table("meta", sa.column("key", sa.String()), sa.column("value", sa.Text()))
    articles = sa.table(
        "articles", sa.column("path", sa.String()), sa.column("added", sa.Integer())
    )
    bind = op.get_bind()
    found: dict[str, str] = dict(
        bind.execute(
            sa.select(meta.c.key, meta.c.value).where(
                meta.c.key.in_(("output_unfinished", "generation"))
            )
        ).all()
    )
    if "output_unfinished" not in found or "generation" not in found:
        return
    last = sa.select(sa.literal(""), articles.c.path, sa.literal(HELD)).where(
        articles.c.added == int(found["generation"])
    )
    bind.execute(unwritten.insert().from_select(["folder", "path", "error"], last))


def downgrade() -> None:
    op.drop_table("unwritten_pages")
