"""points a member spends on a cart, and the cloud's hold on them; a member's seal id

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 23:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seal_id", sa.String(length=36), nullable=True))

    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("member_online", sa.Boolean(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("points", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("points_value", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("points_hold_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_carts_member_id"), ["member_id"], unique=False)

    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("points_value", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("points_hold_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("seal_id")

    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_column("points_hold_id")
        batch_op.drop_column("points_value")

    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carts_member_id"))
        batch_op.drop_column("points_hold_id")
        batch_op.drop_column("points_value")
        batch_op.drop_column("points")
        batch_op.drop_column("member_online")
