"""promotions pulled from the cloud; the offers each sale took

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 07:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("updated_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_table(
        "sale_discounts",
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("promotion_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("pieces", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=True),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name=op.f("fk_sale_discounts_sale_id_sales")
        ),
        sa.PrimaryKeyConstraint("sale_id", "position", name=op.f("pk_sale_discounts")),
    )
    op.create_index(
        "ix_sale_discounts_member_promotion",
        "sale_discounts",
        ["member_id", "promotion_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sale_discounts_member_promotion", table_name="sale_discounts")
    op.drop_table("sale_discounts")
    op.drop_table("promotions")
