"""A live article owns its id and page before a draft; pages compare without case.

Ids and pages went to the file stored first, drafts, scheduled and withdrawn
articles included: a draft kept in the store kept a newer published article
off its page. Now a live article wins, and among live ones the one live first
(`newsbot.state.index.Rank`); each row needs the build since which it has been
live. Rows live now, and rows posted once (withdrawn since), take the build they
were first stored in, so every owner among live articles stays the owner.

Pages are also compared case folded and in NFC (`newsbot.state.index.page_key`):
``articles/Cafe/`` and ``articles/cafe/`` are one file where the file system
ignores case. A page key is a digest of its file, which cannot be folded here:
the build fingerprint is dropped, so the next build reads every file again and
stores each page key anew. (A file unreadable by then keeps its last key until
it is read; pages made by the permalink are lower case, so theirs is the same.)
Where the new rules give an id or a page to another file, the next build does
as when an owner goes: the other file takes it over.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

STALE_META = ("fingerprint", "build_stamp")
"""Meta keys whose absence makes the next build read every file again."""


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("live_since", sa.Integer))
    conn = op.get_bind()
    # Live now, or posted once (withdrawn since): either keeps its claim (`index.age_of`).
    conn.execute(
        sa.text(
            "UPDATE articles SET live_since = added WHERE (visible AND published <= :now)"
            " OR id IN (SELECT article_id FROM deliveries)"
        ),
        {"now": int(time.time())},
    )
    for key in STALE_META:
        conn.execute(sa.text("DELETE FROM meta WHERE key = :key"), {"key": key})


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("live_since")
