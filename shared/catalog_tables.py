"""The columns of a catalog both sides keep: a product and the barcodes that find it.

The store and the cloud each have their own ``products`` and ``barcodes`` tables (in their own
databases, under their own declarative bases and migrations); these mixins declare what the two
have in common once. Each side adds what is its own, such as the width of its money columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class ProductColumns:
    """A product: its SKU, name, tax, how it is sold, its scale PLU and age restriction.

    ``unit_price`` (minor units; per kg when ``sold_by`` is ``kg``) and ``max_price`` (the highest
    price a scale label may carry for one piece) are declared by each side's model.
    """

    __tablename__ = "products"

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
            CheckConstraint("tax_rate_bp >= 0 AND tax_rate_bp <= 10000", name="tax_rate_range"),
            CheckConstraint("sold_by IN ('each', 'kg', 'variable')", name="sold_by_known"),
            CheckConstraint("max_price IS NULL OR max_price > 0", name="max_price_positive"),
        )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tax_rate_bp: Mapped[int]  # basis points: 1300 = 13 %
    category: Mapped[str] = mapped_column(String(64), default="")
    sold_by: Mapped[str] = mapped_column(String(8), default="each")
    age_restricted: Mapped[bool] = mapped_column(default=False)
    # The scale's item number without leading zeros (shared.catalog_csv.normalize_plu).
    plu: Mapped[str | None] = mapped_column(String(16), unique=True)
    updated_at: Mapped[datetime]


class BarcodeColumns:
    """A barcode (normalised to GTIN-14) and the product it finds."""

    __tablename__ = "barcodes"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", ondelete="CASCADE"), index=True)
