"""Feed, navigation and image files that could not be written wait for a build, each on its own.

A feed file, an archive page, the sitemap or a copied image that could not be
written (a folder without write permission, a file where a folder is due)
stopped the whole build: every feed and page after it stayed as it was, and
the output was left marked unfinished, so each later build wrote everything
again while that one file stayed unwritable. The build now goes on and lists
the file here (`newsbot.state.unwritten.files`), with what a later build writes
again to bring it (its feed set, its archive month, the article showing the
image); builds retry just those. Nothing waits for them: posts link to the
article's page, which has a list of its own (``unwritten_pages``).

Nothing to carry over: an older version's build that stopped at such a file left
its output marked unfinished, which still makes the next build write everything.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unwritten_files",
        sa.Column("folder", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("unwritten_files")
