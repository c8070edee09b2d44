"""the chain's earn rules

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "earn_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("updated_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_earn_rules_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earn_rules")),
    )


def downgrade() -> None:
    op.drop_table("earn_rules")
