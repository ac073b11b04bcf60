"""Each article page belongs to one file: the page an article is written to, by row.

Two ids can make one page (``Cafe`` and ``cafe``; ``calais_deal`` and
``calais-deal``), and a front-matter ``url`` can name another article's page:
the later file silently overwrote the earlier one's page, and both items and
both posts linked to it. The build now gives each page to the file stored
first, as it gives each id (`newsbot.state.index`); it needs each row's page.

Rows stored before have no page (NULL: they claim none) until they are read
again, which the next build does for every file (its fingerprint holds a
digest of the code). A publish pass before then sees the articles as they
were.

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


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("page", sa.String(64)))
        batch.add_column(sa.Column("page_field", sa.String(8)))
    op.create_index("articles_page", "articles", ["page"])


def downgrade() -> None:
    op.drop_index("articles_page", "articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("page_field")
        batch.drop_column("page")
