"""Each article's lead sentences, split by the build, so that a post needs no splitting.

Splitting an article's text into sentences (pysbd) was most of what composing
a post cost, and it was done again for each post, edit and target. The build,
which reads every new article anyway, stores the leads of the articles a target
may post (`newsbot.summaries.Leads`); a post whose budget or language they do not
cover splits the text itself, as before.

Rows stored before have none (NULL) until they are read again. The build
fingerprint is dropped, so the next build reads every file and stores them.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

STALE_META = ("fingerprint", "build_stamp")
"""Meta keys whose absence makes the next build read every file again."""


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("leads", sa.Text))
    conn = op.get_bind()
    for key in STALE_META:
        conn.execute(sa.text("DELETE FROM meta WHERE key = :key"), {"key": key})


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("leads")
