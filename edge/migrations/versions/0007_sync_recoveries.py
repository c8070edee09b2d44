"""a store's recoveries onto a new stream after a restore or a replacement

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_recoveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stream", sa.Integer(), nullable=False),
        sa.Column("agreed_seq", sa.Integer(), nullable=False),
        sa.Column("base_seq", sa.Integer(), nullable=True),
        sa.Column("renumbered", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("requested_at", edge.db.UTCDateTime(), nullable=False),
        sa.Column("applied_at", edge.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'applied')", name=op.f("ck_sync_recoveries_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_recoveries")),
    )


def downgrade() -> None:
    op.drop_table("sync_recoveries")
