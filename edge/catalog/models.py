"""Catalog rows: products and the barcodes that find them."""

from __future__ import annotations

from sqlalchemy.orm import Mapped

from edge.db import Base
from shared.catalog_tables import BarcodeColumns, ProductColumns


class Product(ProductColumns, Base):
    unit_price: Mapped[int]  # minor units; per kg when sold_by is kg
    max_price: Mapped[int | None]


class Barcode(BarcodeColumns, Base):
    pass
