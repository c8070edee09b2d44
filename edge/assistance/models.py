"""A shopper's call for assistance from a kiosk or a phone, until an attendant answers it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base, IdPk

REASONS = ("help", "scale", "payment", "item")


class AssistanceCall(Base):
    __tablename__ = "assistance_calls"
    __table_args__ = (
        CheckConstraint("reason IN ('help', 'scale', 'payment', 'item')", name="reason_known"),
        # The board reads the calls not yet answered; answered ones drop out of the index.
        Index(
            "ix_assistance_calls_open",
            "created_at",
            sqlite_where=text("answered_at IS NULL"),
        ),
    )

    id: Mapped[IdPk]
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    cart_id: Mapped[str | None] = mapped_column(ForeignKey("carts.id"))
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
