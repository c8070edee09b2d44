"""public campaign codes, and this store's quota of each; a campaign's redemptions indexed

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shared.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_quotas",
        sa.Column("campaign_id", sa.String(length=48), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_coupon_quotas")),
    )
    with op.batch_alter_table("coupon_campaigns") as batch:
        batch.add_column(sa.Column("public_code", sa.String(length=16), nullable=True))
        batch.create_index("ix_coupon_campaigns_public_code", ["public_code"], unique=False)
    op.create_index("ix_sale_coupons_campaign", "sale_coupons", ["campaign_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sale_coupons_campaign", table_name="sale_coupons")
    with op.batch_alter_table("coupon_campaigns") as batch:
        batch.drop_index("ix_coupon_campaigns_public_code")
        batch.drop_column("public_code")
    op.drop_table("coupon_quotas")
