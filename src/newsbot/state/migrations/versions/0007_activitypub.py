"""ActivityPub: the actor's key, followers, notes, outbox, deliveries, hosts, inbox.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ap_keys",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("public_pem", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ap_followers",
        sa.Column("actor", sa.String(1000), primary_key=True),
        sa.Column("inbox", sa.String(1000), nullable=False),
        sa.Column("shared_inbox", sa.String(1000)),
        sa.Column("follow_id", sa.String(1000)),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_index("ap_followers_follow", "ap_followers", ["follow_id"])
    op.create_table(
        "ap_notes",
        sa.Column("article_id", sa.String(200), primary_key=True),
        sa.Column("url_path", sa.String(1000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("revision", sa.String(64), nullable=False),
        sa.Column("published", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger),
        sa.Column("deleted", sa.BigInteger),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ap_notes_url_path", "ap_notes", ["url_path"])
    op.create_table(
        "ap_activities",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("article_id", sa.String(200)),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
    )
    op.create_index("ap_activities_seq", "ap_activities", ["seq"])
    op.create_table(
        "ap_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.String(300), nullable=False),
        sa.Column("inbox", sa.String(1000), nullable=False),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("next_try", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("finished", sa.BigInteger),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ap_deliveries_due", "ap_deliveries", ["state", "next_try"])
    op.create_index("ap_deliveries_unique", "ap_deliveries", ["activity_id", "inbox"], unique=True)
    op.create_index("ap_deliveries_owner", "ap_deliveries", ["owner"])
    op.create_table(
        "ap_hosts",
        sa.Column("host", sa.String(300), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("failing_since", sa.BigInteger),
        sa.Column("paused_until", sa.BigInteger),
        sa.Column("dead", sa.Boolean, nullable=False),
        sa.Column("last_success", sa.BigInteger),
    )
    op.create_table(
        "ap_inbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.String(1000)),
        sa.Column("actor", sa.String(1000), nullable=False),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("processed", sa.BigInteger),
    )
    op.create_index("ap_inbox_pending", "ap_inbox", ["processed"])
