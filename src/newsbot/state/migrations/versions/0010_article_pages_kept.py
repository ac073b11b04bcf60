"""Each article page belongs to one file: the page an article is written to, by row.

Two ids can make one page (``Cafe`` and ``cafe``; ``calais_deal`` and
``calais-deal``), and a front-matter ``url`` can name another article's page:
the later file silently overwrote the earlier one's page, and both items and
both posts linked to it. The build now gives each page to the file stored
first, as it gives each id (`newsbot.state.index`); it needs each row's page.

Rows stored before have no page (NULL: they claim none) until they are read
again. The build fingerprint is dropped, so the next build reads every file
(a new version's code digest would do it too; this does not depend on it). A
publish pass before then sees the articles as they were.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

STALE_META = ("fingerprint", "build_stamp")
"""Meta keys whose absence makes the next build read every file again."""


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("page", sa.String(64)))
        batch.add_column(sa.Column("page_field", sa.String(8)))
    op.create_index("articles_page", "articles", ["page"])
    conn = op.get_bind()
    for key in STALE_META:
        conn.execute(sa.text("DELETE FROM meta WHERE key = :key"), {"key": key})


def downgrade() -> None:
    op.drop_index("articles_page", "articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("page_field")
        batch.drop_column("page")
