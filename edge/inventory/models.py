"""Stock rows: the movement ledger and the derived per-SKU balance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base, IdPk


class StockMovement(Base):
    """One change of stock; quantities are pieces, or grams for goods sold by weight."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('sale', 'return', 'receive', 'shrink', 'adjust')", name="kind_known"
        ),
    )

    id: Mapped[IdPk]
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), index=True)
    quantity: Mapped[int]  # signed: sales and shrink are negative
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    ref_id: Mapped[str | None] = mapped_column(String(36))
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    staff_id: Mapped[str | None] = mapped_column(String(16))  # signed in on the device, if any
    on_hand_after: Mapped[int]
    below_zero: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class StockLevel(Base):
    """Cached sum of a SKU's movements, kept in the same transaction; checkable against them."""

    __tablename__ = "stock_levels"

    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(default=0)
