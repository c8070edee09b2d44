"""The store's rows for promotions: the offers pulled from the cloud, and the offers each sale
took (for its receipt, its returns and the per-member limits of hot products)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base


class StorePromotion(Base):
    """A promotion as the cloud's ``promotions`` feed last carried it: the item's JSON
    (:class:`sync.contract.PromotionItem`). A withdrawn one is deleted."""

    __tablename__ = "promotions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class SaleDiscount(Base):
    """One offer a sale took, as its receipt shows it: the offer's name, what it took off and
    from which lines (JSON: line id and amount), and the pieces it priced for the member."""

    __tablename__ = "sale_discounts"
    __table_args__ = (Index("ix_sale_discounts_member_promotion", "member_id", "promotion_id"),)

    sale_id: Mapped[str] = mapped_column(ForeignKey("sales.id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    stage: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int]
    pieces: Mapped[int]
    member_id: Mapped[str | None] = mapped_column(String(36))
    lines: Mapped[str] = mapped_column(Text)
