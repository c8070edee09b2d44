"""each store's quota of a public campaign's cap

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_quotas",
        sa.Column("campaign_id", sa.String(length=48), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("quota >= 0", name=op.f("ck_coupon_quotas_quota_not_negative")),
        sa.PrimaryKeyConstraint("campaign_id", "store_id", name=op.f("pk_coupon_quotas")),
    )


def downgrade() -> None:
    op.drop_table("coupon_quotas")
