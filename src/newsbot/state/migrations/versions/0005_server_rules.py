"""What each target learned of its server, and each post's related set and reply.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("software", sa.String(100)))
        batch.add_column(sa.Column("learned", sa.Text))
        batch.add_column(sa.Column("length_errors", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("stopped_since", sa.BigInteger))
    op.create_table(
        "post_related",
        sa.Column("target", sa.String(50), primary_key=True),
        sa.Column("article_id", sa.String(200), primary_key=True),
        sa.Column("links", sa.Text, nullable=False),
        sa.Column("editors", sa.Text, nullable=False),
        sa.Column("in_reply", sa.Boolean, nullable=False),
        sa.Column("reply_state", sa.String(16)),
        sa.Column("reply_key", sa.String(64)),
        sa.Column("reply_id", sa.String(100)),
        sa.Column("reply_url", sa.Text),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("first_attempt", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("post_related_due", "post_related", ["target", "reply_state", "next_try"])


def downgrade() -> None:
    op.drop_index("post_related_due", "post_related")
    op.drop_table("post_related")
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("stopped_since")
        batch.drop_column("length_errors")
        batch.drop_column("learned")
        batch.drop_column("software")
