"""sale lines keep the whole scanned code: up to 128 characters, as a store accepts them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A GS1 code with several application identifiers can pass 64 characters; a store takes up
    # to 128. On PostgreSQL a longer varchar is a catalog change only (no table rewrite).
    with op.batch_alter_table("sale_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "barcode", existing_type=sa.String(length=64), type_=sa.String(length=128)
        )


def downgrade() -> None:
    with op.batch_alter_table("sale_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "barcode", existing_type=sa.String(length=128), type_=sa.String(length=64)
        )
