"""Guards: the files the build wrote, and the account each target posts to.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("output_files", sa.Column("path", sa.String(1024), primary_key=True))
    with op.batch_alter_table("targets") as batch:
        batch.add_column(sa.Column("server", sa.Text))
        batch.add_column(sa.Column("moved_to", sa.Text))
