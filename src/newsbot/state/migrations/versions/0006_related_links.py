"""Stored related lists: each article's related articles, computed at build time.

The lists derive from the articles, so the build is told to start afresh (as
in 0002): forgetting the fingerprint makes the next build a full one, which
computes every list.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "related_links",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(1024)),
        sa.Column("ref_key", sa.String(200)),
        sa.Column("score", sa.Float, nullable=False),
    )
    op.create_index("related_links_target", "related_links", ["target"])
    op.create_index("related_links_ref_key", "related_links", ["ref_key"])
    op.execute(sa.text("DELETE FROM meta WHERE key = 'fingerprint'"))


def downgrade() -> None:
    op.drop_table("related_links")
