"""The term index of related articles, and lookup keys of headlines and links.

The new columns and tables are derived from the article files, so rather than
computing them here (with code that may change after this migration is
written), the build is told to start afresh: forgetting the fingerprint makes
the next build a full one, which re-reads every file and fills them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("title_key", sa.String(200)))
        batch.add_column(sa.Column("url_key", sa.String(500)))
    op.create_index("articles_title_key", "articles", ["title_key"])
    op.create_index("articles_url_key", "articles", ["url_key"])
    op.create_table(
        "article_terms",
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("weight", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("article_terms_path", "article_terms", ["path"])
    op.create_table(
        "term_stats",
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("df", sa.Integer, nullable=False),
    )
    op.execute(sa.text("DELETE FROM meta WHERE key = 'fingerprint'"))
