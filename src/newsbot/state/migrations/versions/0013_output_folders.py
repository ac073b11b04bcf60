"""Each output folder has a list of its own files, under the id its mark carries.

Copies of newsbot on one database, each writing its own folder, shared one
list that the next copy to build emptied: a copy never removed the page of an
article withdrawn meanwhile. The rows of before become those of folder ``""``;
the folder whose path the ``output_root`` meta key names takes them at its
next build (`newsbot.state.manifest.OutputManifest.belongs_to`).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "output_folders",
        sa.Column("folder", sa.String(32), primary_key=True),
        sa.Column("built", sa.BigInteger, nullable=False),
    )
    # A primary key of two columns: made anew and filled, rather than altered in place.
    op.create_table(
        "output_files_by_folder",
        sa.Column("folder", sa.String(32), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
    )
    op.execute(
        "INSERT INTO output_files_by_folder (folder, path) SELECT '', path FROM output_files"
    )
    op.drop_table("output_files")
    op.rename_table("output_files_by_folder", "output_files")


def downgrade() -> None:
    op.create_table("output_files_one", sa.Column("path", sa.String(1024), primary_key=True))
    op.execute("INSERT INTO output_files_one (path) SELECT DISTINCT path FROM output_files")
    op.drop_table("output_files")
    op.rename_table("output_files_one", "output_files")
    op.drop_table("output_folders")
