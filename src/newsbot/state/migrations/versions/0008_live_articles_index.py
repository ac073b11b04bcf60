"""A covering index of the articles readers may see, on SQLite.

SQLite stores a row's columns in order, and an article's text and HTML (a few
kilobytes each, in overflow pages) come before its URL key: every scan for
live articles (the archive's months, the sitemap, the related backlog) read
through each row's overflow pages to reach that key, ~25 ms per 10,000
articles for a column of integers. This index holds every column those scans
read, so they never touch the table.

PostgreSQL keeps large values out of line already, and limits an index row to
about 2.7 KB, which a long non-Latin path with its URL key could pass: the
index is SQLite's only.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ["published", "visible", "shadowed", "url_key", "path"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("articles_live", "articles", COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("articles_live", "articles")
