"""channel tokens, and the channels' writes kept under their idempotency keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:00:00

An API token may now be a channel's (an online shop, a mini-program) besides HQ's: the CHECK
on its role is replaced (on SQLite by a batch copy-and-move of the small ``api_tokens`` table,
which finds the old CHECK by its name).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHECK = "ck_api_tokens_role_known"


def _replace_role_check(roles: str) -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), f"role IN ({roles})")


def upgrade() -> None:
    _replace_role_check("'hq', 'channel'")
    op.create_table(
        "channel_requests",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["api_tokens.id"], name=op.f("fk_channel_requests_token_id_api_tokens")
        ),
        sa.PrimaryKeyConstraint("token_id", "key", name=op.f("pk_channel_requests")),
    )


def downgrade() -> None:
    op.drop_table("channel_requests")
    op.execute("DELETE FROM api_tokens WHERE role = 'channel'")
    _replace_role_check("'hq'")
