"""The store index: sources, articles, tags, meta.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
    )
    op.create_table(
        "articles",
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("shadowed", sa.Boolean, nullable=False),
        sa.Column("published", sa.BigInteger, nullable=False),
        sa.Column("section", sa.String(200)),
        sa.Column("visible", sa.Boolean, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
    )
    op.create_index("articles_id", "articles", ["id"])
    op.create_index("articles_published", "articles", ["published"])
    op.create_table(
        "article_tags",
        sa.Column("tag", sa.String(200), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
    )
    op.create_index("article_tags_path", "article_tags", ["path"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
