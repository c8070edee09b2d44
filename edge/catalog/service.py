"""Catalog use cases: what a scanned code is and costs, and importing the store's catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from edge.catalog.barcodes import normalize_gtin, parse_barcode
from edge.catalog.models import Barcode, Product
from edge.catalog.scan_rules import ProductTerms, ScanRules, price_scan
from edge.db import Database, RawTransaction
from edge.errors import InvalidBarcode, NotFound, Unprocessable
from shared import catalog_csv
from shared.catalog_csv import CatalogFileError, CatalogRow, normalize_plu
from shared.catalog_write import write_catalog
from sync.contract import CatalogItem, PriceItem


@dataclass(frozen=True, slots=True)
class ScannedItem:
    """A product as scanned: its catalog data and what this one scan costs."""

    sku: str
    name: str
    barcode: str
    unit_price: int
    piece_price: int
    weight_g: int | None
    sold_by: str
    tax_rate_bp: int
    age_restricted: bool
    category: str

    def to_dict(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "name": self.name,
            "barcode": self.barcode,
            "unit_price": self.unit_price,
            "price": self.piece_price,
            "weight_g": self.weight_g,
            "sold_by": self.sold_by,
            "tax_rate_bp": self.tax_rate_bp,
            "age_restricted": self.age_restricted,
            "category": self.category,
        }


_PRODUCT_COLUMNS = "p.sku, p.name, p.unit_price, p.tax_rate_bp, p.category, p.sold_by, "
_PRODUCT_COLUMNS += "p.age_restricted, p.max_price"
_BY_PLU = f"SELECT {_PRODUCT_COLUMNS} FROM products p WHERE p.plu = ?"
_BY_GTIN = (
    f"SELECT {_PRODUCT_COLUMNS} FROM barcodes b JOIN products p ON p.sku = b.sku WHERE b.gtin = ?"
)


def lookup_scan(tx: RawTransaction, code: str, rules: ScanRules) -> ScannedItem:
    """Parse ``code`` and find its product and price; 422 ``invalid_barcode``, 404
    ``unknown_product``, or a 422 from :func:`~edge.catalog.scan_rules.price_scan` for a code
    that may not set the price it carries.

    On every scan's path, so it reads with one plain SQL statement.
    """
    scanned = parse_barcode(code, rules.layout, minor_exponent=rules.minor_exponent)
    if scanned.kind == "variable_measure":
        assert scanned.plu is not None
        product = tx.one(_BY_PLU, (normalize_plu(scanned.plu),))
    else:
        product = tx.one(_BY_GTIN, (scanned.gtin,))
    if product is None:
        raise NotFound(
            f"no product for barcode {scanned.raw}",
            code="unknown_product",
            details={"barcode": scanned.raw, "kind": scanned.kind},
        )
    terms = ProductTerms(
        sku=product["sku"],
        name=product["name"],
        sold_by=product["sold_by"],
        unit_price=product["unit_price"],
        max_price=product["max_price"],
    )
    piece = price_scan(terms, scanned, rules)
    return ScannedItem(
        sku=product["sku"],
        name=product["name"],
        barcode=scanned.raw,
        unit_price=product["unit_price"],
        piece_price=piece.price,
        weight_g=piece.weight_g,
        sold_by=product["sold_by"],
        tax_rate_bp=product["tax_rate_bp"],
        age_restricted=bool(product["age_restricted"]),
        category=product["category"],
    )


def get_product(session: Session, sku: str) -> Product:
    product = session.get(Product, sku)
    if product is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku", details={"sku": sku})
    return product


# --- import -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    barcodes: int


class CatalogImportError(Unprocessable):
    """A catalog file with bad rows; ``details["rows"]`` lists each row number and problem."""

    code = "invalid_catalog"


def _gtin(code: str) -> str:
    try:
        return normalize_gtin(code)
    except InvalidBarcode as exc:
        raise ValueError(f"barcode {code!r}: {exc.message}") from None


def parse_catalog(text: str) -> list[CatalogRow]:
    """Validate a whole catalog CSV; raises :class:`CatalogImportError` listing every bad row."""
    try:
        return catalog_csv.parse_catalog(text, gtin=_gtin)
    except CatalogFileError as exc:
        raise CatalogImportError(exc.message, details={"rows": exc.rows}) from None


def import_catalog(
    db: Database, path: Path, *, now: datetime, plu_length: int | None = None
) -> ImportResult:
    """Import a catalog CSV all or nothing; re-importing a SKU updates it in place.

    ``plu_length`` is the store's scale-label PLU width: a PLU with more digits could never be
    scanned, so its row is refused.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogImportError("catalog file is not UTF-8 text", details={"rows": []}) from None
    rows = parse_catalog(text)
    if plu_length is not None:
        too_long = [
            {
                "row": number,
                "problem": f"plu {row.plu} has more than the {plu_length} digits "
                "the store's scale labels carry",
            }
            for number, row in enumerate(rows, start=2)
            if row.plu is not None and len(row.plu) > plu_length
        ]
        if too_long:
            raise CatalogImportError(
                f"{len(too_long)} bad row(s) in the catalog; nothing was imported",
                details={"rows": too_long},
            )
    with db.write() as uow:
        try:
            written = write_catalog(
                uow.session, product=Product, barcode=Barcode, rows=rows, now=now, take_over=False
            )
        except CatalogFileError as exc:
            raise CatalogImportError(exc.message, details={"rows": exc.rows}) from None
        uow.commit()
    return ImportResult(created=written.created, updated=written.updated, barcodes=written.barcodes)


def apply_catalog_items(session: Session, items: Iterable[CatalogItem], now: datetime) -> None:
    """Write products from the cloud's catalog feed, in the caller's transaction. The cloud is
    the master: a barcode or PLU it gives a product leaves the product that had it."""
    by_sku = {item.sku: item for item in items}  # a later item of the same product wins
    rows = [
        CatalogRow(
            sku=item.sku,
            name=item.name,
            gtins=tuple(item.barcodes),
            unit_price=item.unit_price,
            tax_rate_bp=item.tax_rate_bp,
            category=item.category or "",
            sold_by=item.sold_by,
            age_restricted=item.age_restricted,
            plu=normalize_plu(item.plu or ""),
            max_price=item.max_price,
        )
        for item in by_sku.values()
    ]
    write_catalog(session, product=Product, barcode=Barcode, rows=rows, now=now, take_over=True)


def apply_price_items(session: Session, items: Iterable[PriceItem], now: datetime) -> None:
    """Set this store's prices from the cloud's prices feed; a product the store does not have
    yet is skipped (the catalog feed brings it with its price)."""
    for item in items:
        product = session.get(Product, item.sku)
        if product is not None:
            product.unit_price = item.unit_price
            product.updated_at = now
