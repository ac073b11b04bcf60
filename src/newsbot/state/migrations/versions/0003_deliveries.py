"""Deliveries: one row per (target, article), the lease table, article revisions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("revision", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "deliveries",
        sa.Column("target", sa.String(50), primary_key=True),
        sa.Column("article_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("uncertain", sa.Boolean, nullable=False),
        sa.Column("status_id", sa.String(100)),
        sa.Column("status_url", sa.Text),
        sa.Column("reply_id", sa.String(100)),
        sa.Column("article_url", sa.Text, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("next_try", sa.BigInteger, nullable=False),
        sa.Column("first_attempt", sa.BigInteger),
        sa.Column("last_attempt", sa.BigInteger),
        sa.Column("posted_at", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("deliveries_due", "deliveries", ["target", "state", "next_try"])
    op.create_index("deliveries_posted", "deliveries", ["target", "posted_at"])
    op.create_table(
        "targets",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("account_id", sa.String(100)),
        sa.Column("last_pass", sa.BigInteger),
        sa.Column("last_success", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
