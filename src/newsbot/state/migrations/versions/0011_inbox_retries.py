"""Inbox rows are retried: tries, next try, a claim under a lease, the last error.

An activity whose sender's actor document could not be fetched when it was
handled (the sender's server down for a moment) was marked processed and
dropped, after the sender had its 202: a Follow never got its Accept. Rows
are now claimed by one process at a time and retried later on a transient
failure, a bounded number of times.

Rows stored before are due at once, never tried. Unprocessed rows are few
(the 202 is followed by their handling), so the index on ``processed`` finds
the due ones.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ap_inbox") as batch:
        batch.add_column(sa.Column("tries", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_try", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("owner", sa.String(200)))
        batch.add_column(sa.Column("lease_until", sa.BigInteger))
        batch.add_column(sa.Column("last_error", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ap_inbox") as batch:
        for column in ("last_error", "lease_until", "owner", "next_try", "tries"):
            batch.drop_column(column)
