"""the first answer to each retryable write, kept with the write

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotent_requests",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.String(), nullable=True),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "key", name=op.f("pk_idempotent_requests")),
    )


def downgrade() -> None:
    op.drop_table("idempotent_requests")
