"""a feed remembers why the cloud last sent it a snapshot, and when

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed_cursors") as batch_op:
        batch_op.add_column(sa.Column("last_snapshot_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("last_snapshot_at", edge.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed_cursors") as batch_op:
        batch_op.drop_column("last_snapshot_at")
        batch_op.drop_column("last_snapshot_reason")
