"""Catalog rows: products and the barcodes that find them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("tax_rate_bp >= 0 AND tax_rate_bp <= 10000", name="tax_rate_range"),
        CheckConstraint("sold_by IN ('each', 'kg', 'variable')", name="sold_by_known"),
        CheckConstraint("max_price IS NULL OR max_price > 0", name="max_price_positive"),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[int]  # minor units; per kg when sold_by is kg
    tax_rate_bp: Mapped[int]  # basis points: 1300 = 13 %
    category: Mapped[str] = mapped_column(String(64), default="")
    sold_by: Mapped[str] = mapped_column(String(8), default="each")
    age_restricted: Mapped[bool] = mapped_column(default=False)
    # The scale's item number without leading zeros (shared.catalog_csv.normalize_plu).
    plu: Mapped[str | None] = mapped_column(String(16), unique=True)
    # The highest price a scale label may carry for one piece (kg and variable products).
    max_price: Mapped[int | None]
    updated_at: Mapped[datetime]


class Barcode(Base):
    __tablename__ = "barcodes"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)  # normalised to GTIN-14
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), index=True)
