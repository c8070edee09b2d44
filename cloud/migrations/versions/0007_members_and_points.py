"""members, their points ledger and reconciliation exceptions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:50:58.786587
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cloud.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("phone_index", sa.String(length=64), nullable=False),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("name_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("birthday_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("merged_into", cloud.db.UuidText(length=64), nullable=True),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("recruited_by", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("registered_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)",
            name=op.f("ck_members_merged_names_survivor"),
        ),
        sa.CheckConstraint("status IN ('active', 'merged')", name=op.f("ck_members_status_known")),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["members.id"], name=op.f("fk_members_merged_into_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("code", name=op.f("uq_members_code")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(
            "uq_members_active_phone",
            ["phone_index"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "reconciliation_exceptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("origin_id", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('points_overdraft')", name=op.f("ck_reconciliation_exceptions_kind_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_reconciliation_exceptions_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_exceptions")),
    )
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reconciliation_exceptions_store", ["store_id", "id"], unique=False
        )
        batch_op.create_index(
            "uq_reconciliation_exceptions_origin", ["kind", "origin_id"], unique=True
        )

    op.create_table(
        "points_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("recorded_member_id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.Column("origin_kind", sa.String(length=16), nullable=False),
        sa.Column("origin_id", sa.String(length=64), nullable=False),
        sa.Column("about_id", sa.String(length=64), nullable=True),
        sa.Column("store_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('earn', 'burn', 'earn_reversal', 'burn_refund', 'expire', 'adjust', 'merge')",
            name=op.f("ck_points_entries_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_entries_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
    )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_points_entries_about_id"), ["about_id"], unique=False)
        batch_op.create_index("ix_points_entries_member", ["member_id", "id"], unique=False)
        batch_op.create_index(
            "uq_points_entries_origin", ["origin_kind", "origin_id", "kind"], unique=True
        )

    op.create_table(
        "points_holds",
        sa.Column("id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("member_id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('held', 'burned', 'released')", name=op.f("ck_points_holds_status_known")
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_holds_points_positive")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_holds_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_holds")),
    )
    with op.batch_alter_table("points_holds", schema=None) as batch_op:
        batch_op.create_index("ix_points_holds_member", ["member_id", "status"], unique=False)

    op.create_table(
        "points_lots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", cloud.db.UuidText(length=64), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("created_at", cloud.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", cloud.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_lots_points_positive")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["points_entries.id"], name=op.f("fk_points_lots_entry_id_points_entries")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_points_lots_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lots")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_points_lots_entry_id")),
    )
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_points_lots_member_expiry", ["member_id", "expires_at"], unique=False
        )

    op.create_table(
        "points_allocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("points <> 0", name=op.f("ck_points_allocations_points_not_zero")),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["points_entries.id"],
            name=op.f("fk_points_allocations_entry_id_points_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lots.id"], name=op.f("fk_points_allocations_lot_id_points_lots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_allocations")),
    )
    with op.batch_alter_table("points_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_points_allocations_entry_id"), ["entry_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_points_allocations_lot_id"), ["lot_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("points_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_allocations_lot_id"))
        batch_op.drop_index(batch_op.f("ix_points_allocations_entry_id"))

    op.drop_table("points_allocations")
    with op.batch_alter_table("points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_points_lots_member_expiry")

    op.drop_table("points_lots")
    with op.batch_alter_table("points_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_points_holds_member")

    op.drop_table("points_holds")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_points_entries_origin")
        batch_op.drop_index("ix_points_entries_member")
        batch_op.drop_index(batch_op.f("ix_points_entries_about_id"))

    op.drop_table("points_entries")
    with op.batch_alter_table("reconciliation_exceptions", schema=None) as batch_op:
        batch_op.drop_index("uq_reconciliation_exceptions_origin")
        batch_op.drop_index("ix_reconciliation_exceptions_store")

    op.drop_table("reconciliation_exceptions")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_members_active_phone",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.drop_table("members")
