"""Each article's revision date, so that a build comes when a future one passes.

An ``updated`` still to come is not shown until it passes (`newsbot.articles.Article.as_seen`):
a future date in a feed draws the validator's warning and misleads readers, who sort by it.
The build that follows that moment renders the article's feeds and page again, as it does
when a scheduled article's ``published`` passes; it finds such articles by this column.

Rows stored before have none (NULL: no revision date waits) until they are read again.
The build fingerprint is dropped, so the next build reads every file and stores each date.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

STALE_META = ("fingerprint", "build_stamp")
"""Meta keys whose absence makes the next build read every file again."""


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("updated", sa.BigInteger))
    op.create_index("articles_updated", "articles", ["updated"])
    conn = op.get_bind()
    for key in STALE_META:
        conn.execute(sa.text("DELETE FROM meta WHERE key = :key"), {"key": key})


def downgrade() -> None:
    op.drop_index("articles_updated", "articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("updated")
