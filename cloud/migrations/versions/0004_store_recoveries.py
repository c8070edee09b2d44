"""stores that moved onto a new stream after a restore or a replacement, approved by HQ

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_recoveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("agreed_seq", sa.BigInteger(), nullable=False),
        sa.Column("outbox_last_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_seq", sa.BigInteger(), nullable=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("requested_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("approved_at", cloud.db.UTCDateTime(), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved')", name=op.f("ck_store_recoveries_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_recoveries_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_recoveries")),
    )
    op.create_index(
        op.f("ix_store_recoveries_store_id"), "store_recoveries", ["store_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_store_recoveries_store_id"), table_name="store_recoveries")
    op.drop_table("store_recoveries")
