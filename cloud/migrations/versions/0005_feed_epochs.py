"""feed epochs: a restored database starts a new life of the feed log, and cursors name theirs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:00:00
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import cloud.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    epochs = op.create_table(
        "feed_epochs",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("started_at", cloud.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_feed_epochs")),
        sa.UniqueConstraint("token", name=op.f("uq_feed_epochs_token")),
    )
    # Every row logged so far belongs to the first epoch; cursors handed out before it (format 1)
    # get one snapshot.
    op.bulk_insert(
        epochs,
        [
            {
                "seq": 1,
                "token": secrets.token_hex(8),
                "reason": "the feed log as it stood when epochs began",
                "started_at": datetime.now(UTC),
            }
        ],
    )
    with op.batch_alter_table("changes") as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("tag", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.drop_index("ix_changes_feed_xid_id")
        batch_op.create_index(
            "ix_changes_feed_epoch_xid_id", ["feed", "epoch", "xid", "id"], unique=False
        )
    with op.batch_alter_table("feed_horizons") as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("feed_horizons") as batch_op:
        batch_op.drop_column("epoch")
    with op.batch_alter_table("changes") as batch_op:
        batch_op.drop_index("ix_changes_feed_epoch_xid_id")
        batch_op.create_index("ix_changes_feed_xid_id", ["feed", "xid", "id"], unique=False)
        batch_op.drop_column("tag")
        batch_op.drop_column("epoch")
    op.drop_table("feed_epochs")
