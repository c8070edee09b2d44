"""The chain's catalog and store price overrides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base
from shared.catalog_tables import BarcodeColumns, ProductColumns


class Product(ProductColumns, Base):
    unit_price: Mapped[int] = mapped_column(BigInteger)  # the chain price, minor units
    max_price: Mapped[int | None] = mapped_column(BigInteger)


class Barcode(BarcodeColumns, Base):
    pass


class StorePrice(Base):
    """A store's own price for a product, overriding the chain price in that store only."""

    __tablename__ = "store_prices"
    __table_args__ = (CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),)

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
