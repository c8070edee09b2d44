"""products sold at a variable price, with a ceiling on label prices; PLUs without leading zeros

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_price", sa.BigInteger(), nullable=True))
        batch_op.drop_constraint(op.f("ck_products_sold_by_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_products_sold_by_known"), "sold_by IN ('each', 'kg', 'variable')"
        )
        batch_op.create_check_constraint(
            op.f("ck_products_max_price_positive"), "max_price IS NULL OR max_price > 0"
        )
    # A scale label's PLU is looked up without leading zeros; a stripped value another product
    # already holds is left as it was (the next catalog import reports it).
    op.execute(
        """
        UPDATE products SET plu = COALESCE(NULLIF(LTRIM(plu, '0'), ''), '0')
        WHERE plu IS NOT NULL AND plu != COALESCE(NULLIF(LTRIM(plu, '0'), ''), '0')
          AND NOT EXISTS (
            SELECT 1 FROM products other
            WHERE other.plu = COALESCE(NULLIF(LTRIM(products.plu, '0'), ''), '0')
          )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_products_max_price_positive"), type_="check")
        batch_op.drop_constraint(op.f("ck_products_sold_by_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_products_sold_by_known"), "sold_by IN ('each', 'kg')"
        )
        batch_op.drop_column("max_price")
