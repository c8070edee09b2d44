"""Catalog use cases at the cloud: importing the chain's catalog and setting store prices.

The CSV has the columns of the store import (``sku,name,barcodes,unit_price,tax_rate,category,
sold_by,age_restricted,plu``); a file is imported all or nothing, and every bad row is reported
with its line number. Each change is logged for the pull feeds in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cloud.catalog.models import Barcode, Product, StorePrice
from cloud.changes.log import record_changes
from cloud.db import Database
from cloud.errors import NotFound, Unprocessable
from cloud.stores.models import Store
from shared import catalog_csv
from shared.catalog_csv import MAX_UNIT_PRICE, CatalogFileError, CatalogRow
from shared.catalog_write import write_catalog

GTIN_LENGTHS = (8, 12, 13, 14)


class CatalogImportError(Unprocessable):
    """A catalog file with bad rows; ``details["rows"]`` lists each row number and problem."""

    code = "invalid_catalog"


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    barcodes: int


def gs1_check_digit(payload: str) -> int:
    """The GS1 mod-10 check digit of ``payload`` (all digits but the last)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def normalize_gtin(code: str) -> str:
    """A GTIN-8/12/13/14 checked (digits, length, check digit) and padded to 14 digits."""
    raw = code.strip()
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"barcode {raw!r} must contain digits only")
    if len(raw) not in GTIN_LENGTHS:
        raise ValueError(f"barcode {raw!r} has {len(raw)} digits; a GTIN has 8, 12, 13 or 14")
    if gs1_check_digit(raw[:-1]) != int(raw[-1]):
        raise ValueError(f"barcode {raw!r} has a wrong check digit")
    return raw.rjust(14, "0")


def parse_catalog(text: str) -> list[CatalogRow]:
    """Validate a whole catalog CSV; raises :class:`CatalogImportError` listing every bad row."""
    try:
        return catalog_csv.parse_catalog(text, gtin=normalize_gtin)
    except CatalogFileError as exc:
        raise CatalogImportError(exc.message, details={"rows": exc.rows}) from None


def import_catalog(db: Database, path: Path, *, now: datetime) -> ImportResult:
    """Import a catalog CSV all or nothing; re-importing a SKU updates it in place. Changed
    products are logged for the ``catalog`` and ``prices`` feeds in the same transaction."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogImportError("catalog file is not UTF-8 text", details={"rows": []}) from None
    rows = parse_catalog(text)
    with db.write() as uow:
        session = uow.session
        try:
            written = write_catalog(
                session, product=Product, barcode=Barcode, rows=rows, now=now, take_over=False
            )
        except CatalogFileError as exc:
            raise CatalogImportError(exc.message, details={"rows": exc.rows}) from None
        record_changes(
            session,
            [(feed, r.sku, None) for r in rows for feed in ("catalog", "prices")],
            now=now,
        )
        uow.commit()
    return ImportResult(created=written.created, updated=written.updated, barcodes=written.barcodes)


def set_store_price(
    db: Database, *, store_id: str, sku: str, unit_price: int | None, now: datetime
) -> None:
    """Give ``store_id`` its own price for ``sku`` (None: back to the chain price). Only that
    store's feeds carry the change."""
    if unit_price is not None and not 0 <= unit_price <= MAX_UNIT_PRICE:
        raise Unprocessable(
            f"unit_price must be between 0 and {MAX_UNIT_PRICE}", details={"field": "unit_price"}
        )
    with db.write() as uow:
        session = uow.session
        if session.get(Store, store_id) is None:
            raise NotFound(f"no store {store_id!r}", code="unknown_store")
        if session.get(Product, sku) is None:
            raise NotFound(f"no product with sku {sku!r}", code="unknown_sku")
        row = session.get(StorePrice, (store_id, sku))
        if unit_price is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                StorePrice(store_id=store_id, sku=sku, unit_price=unit_price, updated_at=now)
            )
        else:
            row.unit_price, row.updated_at = unit_price, now
        session.flush()
        record_changes(session, [("catalog", sku, store_id), ("prices", sku, store_id)], now=now)
        uow.commit()
