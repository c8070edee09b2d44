"""payment intents: a card payment written down before the acquirer is asked

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("cart_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sale_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", edge.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", edge.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'captured', 'voiding', 'voided')",
            name=op.f("ck_payment_intents_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
    )
    op.create_index(
        "ix_payment_intents_key",
        "payment_intents",
        ["device_id", "idempotency_key", "position"],
        unique=False,
    )
    op.create_index(
        "ix_payment_intents_status", "payment_intents", ["status", "updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_payment_intents_status", table_name="payment_intents")
    op.drop_index("ix_payment_intents_key", table_name="payment_intents")
    op.drop_table("payment_intents")
