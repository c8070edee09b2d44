"""A reconciliation exception: one fact that broke a rule, with its amount."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, BigIntKey

EXCEPTION_KINDS = ("points_overdraft", "coupon_double_use")


class ReconciliationException(Base):
    __tablename__ = "reconciliation_exceptions"
    __table_args__ = (
        CheckConstraint("kind IN ('points_overdraft', 'coupon_double_use')", name="kind_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # One exception per fact, however often the fact is sent again.
        Index("uq_reconciliation_exceptions_origin", "kind", "origin_id", unique=True),
        Index("ix_reconciliation_exceptions_store", "store_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))  # the member, the coupon...
    amount: Mapped[int] = mapped_column(BigInteger)  # points, or minor units: see ``unit``
    unit: Mapped[str] = mapped_column(String(8))  # points, or a currency code
    origin_id: Mapped[str] = mapped_column(String(64))  # the sale (or event) it came from
    details: Mapped[str] = mapped_column(Text)  # JSON: what HQ needs to settle it
    created_at: Mapped[datetime]
