"""members known to the store, and a cart's and a sale's member

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 21:27:38.623658
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("name_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("masked_phone", sa.String(length=24), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("balance_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.Column("recruited_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", edge.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("code", name=op.f("uq_members_code")),
        sa.UniqueConstraint("phone_index", name=op.f("uq_members_phone_index")),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member_id", sa.String(length=36), nullable=True))

    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.add_column(sa.Column("member_id", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("points_earned", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("points_burned", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("points_balance_after", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_column("points_balance_after")
        batch_op.drop_column("points_burned")
        batch_op.drop_column("points_earned")
        batch_op.drop_column("member_id")

    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_column("member_id")

    op.drop_table("members")
