"""whether a cart's member was attached by their member code; the phones a member may read
their ledger on

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 00:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("member_by_code", sa.Boolean(), server_default="0", nullable=False)
        )

    op.create_table(
        "member_devices",
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("bound_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "device_id", name=op.f("pk_member_devices")),
    )


def downgrade() -> None:
    op.drop_table("member_devices")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_column("member_by_code")
