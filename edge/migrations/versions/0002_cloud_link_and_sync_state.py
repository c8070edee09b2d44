"""cloud link, sync state, feed cursors, quarantine, store settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:11:22.474488
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import edge.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "cloud_link",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cloud_url", sa.String(length=500), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("cloud_public_key", sa.String(length=64), nullable=False),
        sa.Column("protocol_version", sa.Integer(), nullable=False),
        sa.Column("max_batch_events", sa.Integer(), nullable=False),
        sa.Column("max_batch_bytes", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", edge.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_cloud_link_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_link")),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("cursor", sa.String(length=200), nullable=False),
        sa.Column("in_snapshot", sa.Boolean(), nullable=False),
        sa.Column("changes_applied", sa.Integer(), nullable=False),
        sa.Column("updated_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("feed", name=op.f("pk_feed_cursors")),
    )
    op.create_table(
        "store_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_store_settings")),
    )
    op.create_table(
        "sync_quarantine",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reported_at", edge.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sync_quarantine")),
    )
    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("acked_seq", sa.Integer(), nullable=False),
        sa.Column("last_push_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("last_pull_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("last_contact_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", edge.db.UTCDateTime(), nullable=True),
        sa.Column("clock_skew_s", sa.Double(), nullable=True),
        sa.Column("halted_code", sa.String(length=64), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_sync_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )


def downgrade() -> None:

    op.drop_table("sync_state")
    op.drop_table("sync_quarantine")
    op.drop_table("store_settings")
    op.drop_table("feed_cursors")
    op.drop_table("cloud_link")
