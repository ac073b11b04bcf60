"""What was given up is told apart from what was refused, so an operator can try it again.

An inbox row given up after ``max_tries`` transient failures was marked
processed like a row handled or refused for good, and a delivery given up
after ``max_tries`` tries became ``failed`` like one a server refused (a
4xx): only the wording of the last error told them apart. Inbox rows get a
``given_up`` flag and deliveries a state ``given_up``, so they can be counted,
shown and re-queued (``newsbot requeue``) without reading the wording.

Rows given up before are found once, here, by what they recorded: an inbox
row by the two errors a give-up wrote; a failed delivery by its last answer
(401, 408, 429, 5xx), or by no answer at all with an error that is a
connection error's name (a refused address says so in words).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ap_inbox") as batch:
        batch.add_column(
            sa.Column("given_up", sa.Boolean, nullable=False, server_default=sa.false())
        )
    inbox = sa.table(
        "ap_inbox", sa.column("processed"), sa.column("last_error"), sa.column("given_up")
    )
    op.execute(
        inbox.update()
        .where(
            inbox.c.processed.is_not(None),
            sa.or_(
                inbox.c.last_error.like("gave up after %"),
                inbox.c.last_error == "its handling never finished",
            ),
        )
        .values(given_up=True)
    )
    deliveries = sa.table(
        "ap_deliveries", sa.column("state"), sa.column("last_status"), sa.column("last_error")
    )
    status = deliveries.c.last_status
    op.execute(
        deliveries.update()
        .where(
            deliveries.c.state == "failed",
            sa.or_(
                status.in_((401, 408, 429)),
                status >= 500,
                sa.and_(status.is_(None), deliveries.c.last_error.not_like("% %")),
            ),
        )
        .values(state="given_up")
    )


def downgrade() -> None:
    deliveries = sa.table("ap_deliveries", sa.column("state"))
    op.execute(deliveries.update().where(deliveries.c.state == "given_up").values(state="failed"))
    with op.batch_alter_table("ap_inbox") as batch:
        batch.drop_column("given_up")
