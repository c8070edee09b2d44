"""Catalog use cases: what a scanned code is and costs, and importing the store's catalog."""

from __future__ import annotations

import csv
import io
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from edge.catalog.barcodes import ScannedCode, VariableMeasureLayout, normalize_gtin, parse_barcode
from edge.catalog.models import Barcode, Product
from edge.db import Database, RawTransaction
from edge.errors import InvalidBarcode, NotFound, Unprocessable
from sync.money import round_half_up

CATALOG_COLUMNS = (
    "sku",
    "name",
    "barcodes",
    "unit_price",
    "tax_rate",
    "category",
    "sold_by",
    "age_restricted",
    "plu",
)
MAX_UNIT_PRICE = 100_000_000  # one million in a 2-decimal currency: anything above is a typo


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


def _price_for_scan(product: sqlite3.Row, scanned: ScannedCode) -> tuple[int, int | None]:
    """(price of this piece, its weight in grams) for a scanned product."""
    unit_price: int = product["unit_price"]
    if scanned.price is not None:
        weight = None
        if product["sold_by"] == "kg" and unit_price > 0:
            weight = round_half_up(Fraction(scanned.price * 1000, unit_price))
        if scanned.weight_g is not None:
            weight = scanned.weight_g
        return scanned.price, weight
    if scanned.weight_g is not None:
        return round_half_up(Fraction(unit_price * scanned.weight_g, 1000)), scanned.weight_g
    if product["sold_by"] == "kg":
        raise Unprocessable(
            f"{product['name']} is sold by weight: scan the scale label",
            code="weight_required",
            details={"sku": product["sku"], "barcode": scanned.raw},
        )
    return unit_price, None


_PRODUCT_COLUMNS = "p.sku, p.name, p.unit_price, p.tax_rate_bp, p.category, p.sold_by, "
_PRODUCT_COLUMNS += "p.age_restricted"
_BY_PLU = f"SELECT {_PRODUCT_COLUMNS} FROM products p WHERE p.plu = ?"
_BY_GTIN = (
    f"SELECT {_PRODUCT_COLUMNS} FROM barcodes b JOIN products p ON p.sku = b.sku WHERE b.gtin = ?"
)


def lookup_scan(tx: RawTransaction, code: str, layout: VariableMeasureLayout) -> ScannedItem:
    """Parse ``code`` and find its product; 422 ``invalid_barcode``, 404 ``unknown_product``.

    On every scan's path, so it reads with one plain SQL statement.
    """
    scanned = parse_barcode(code, layout)
    if scanned.kind == "variable_measure":
        product = tx.one(_BY_PLU, (scanned.plu,))
    else:
        product = tx.one(_BY_GTIN, (scanned.gtin,))
    if product is None:
        raise NotFound(
            f"no product for barcode {scanned.raw}",
            code="unknown_product",
            details={"barcode": scanned.raw, "kind": scanned.kind},
        )
    piece_price, weight_g = _price_for_scan(product, scanned)
    return ScannedItem(
        sku=product["sku"],
        name=product["name"],
        barcode=scanned.raw,
        unit_price=product["unit_price"],
        piece_price=piece_price,
        weight_g=weight_g,
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


@dataclass(frozen=True, slots=True)
class CatalogRow:
    sku: str
    name: str
    gtins: tuple[str, ...]
    unit_price: int
    tax_rate_bp: int
    category: str
    sold_by: str
    age_restricted: bool
    plu: str | None


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    barcodes: int


class CatalogImportError(Unprocessable):
    """A catalog file with bad rows; ``details["rows"]`` lists each row number and problem."""

    code = "invalid_catalog"


def _parse_tax_rate(text: str) -> int:
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation:
        raise ValueError(f"tax_rate {text!r} is not a number") from None
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError(f"tax_rate {text!r} must be between 0 and 100")
    bp = value * 100
    if bp != bp.to_integral_value():
        raise ValueError(f"tax_rate {text!r} has more than two decimals")
    return int(bp)


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0", ""):
        return False
    raise ValueError(f"age_restricted {text!r} must be true or false")


def _parse_row(row: dict[str, str]) -> CatalogRow:
    sku = (row.get("sku") or "").strip()
    if not sku or len(sku) > 64:
        raise ValueError("sku is empty or longer than 64 characters")
    name = (row.get("name") or "").strip()
    if not name or len(name) > 200:
        raise ValueError("name is empty or longer than 200 characters")
    price_text = (row.get("unit_price") or "").strip()
    if not price_text.isdigit():
        raise ValueError(f"unit_price {price_text!r} must be a whole number of minor units")
    unit_price = int(price_text)
    if unit_price > MAX_UNIT_PRICE:
        raise ValueError(f"unit_price {unit_price} is implausibly large")
    sold_by = (row.get("sold_by") or "each").strip().lower()
    if sold_by not in ("each", "kg"):
        raise ValueError(f"sold_by {sold_by!r} must be each or kg")
    plu = (row.get("plu") or "").strip() or None
    if plu is not None and not plu.isdigit():
        raise ValueError(f"plu {plu!r} must be digits")
    gtins = []
    for part in (row.get("barcodes") or "").split("|"):
        if part.strip():
            try:
                gtins.append(normalize_gtin(part.strip()))
            except InvalidBarcode as exc:
                raise ValueError(f"barcode {part.strip()!r}: {exc.message}") from None
    if not gtins and plu is None:
        raise ValueError("a product needs at least one barcode or a plu")
    return CatalogRow(
        sku=sku,
        name=name,
        gtins=tuple(dict.fromkeys(gtins)),
        unit_price=unit_price,
        tax_rate_bp=_parse_tax_rate(row.get("tax_rate") or "0"),
        category=(row.get("category") or "").strip()[:64],
        sold_by=sold_by,
        age_restricted=_parse_bool(row.get("age_restricted") or ""),
        plu=plu,
    )


def parse_catalog(text: str) -> list[CatalogRow]:
    """Validate a whole catalog CSV; raises :class:`CatalogImportError` listing every bad row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    missing = [c for c in CATALOG_COLUMNS if c not in header]
    if missing:
        raise CatalogImportError(
            f"catalog header lacks columns: {', '.join(missing)}",
            details={"rows": [{"row": 1, "problem": f"missing columns {missing}"}]},
        )
    rows: list[CatalogRow] = []
    problems: list[dict[str, object]] = []
    seen_sku: dict[str, int] = {}
    seen_gtin: dict[str, int] = {}
    seen_plu: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        if None in raw:
            problems.append({"row": number, "problem": "more fields than the header has"})
            continue
        try:
            row = _parse_row({k.strip(): v for k, v in raw.items()})
        except ValueError as exc:
            problems.append({"row": number, "problem": str(exc)})
            continue
        for key, seen, label in (
            ((row.sku,), seen_sku, "sku"),
            (row.gtins, seen_gtin, "barcode"),
            ((row.plu,) if row.plu else (), seen_plu, "plu"),
        ):
            for value in key:
                if value in seen:
                    problems.append(
                        {"row": number, "problem": f"{label} {value} repeats row {seen[value]}"}
                    )
                seen[value] = number
        rows.append(row)
    if problems:
        raise CatalogImportError(
            f"{len(problems)} bad row(s) in the catalog; nothing was imported",
            details={"rows": problems},
        )
    return rows


def import_catalog(db: Database, path: Path, *, now: datetime) -> ImportResult:
    """Import a catalog CSV all or nothing; re-importing a SKU updates it in place."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogImportError("catalog file is not UTF-8 text", details={"rows": []}) from None
    rows = parse_catalog(text)
    created = updated = 0
    with db.write() as uow:
        session = uow.session
        existing = {p.sku: p for p in session.execute(select(Product)).scalars()}
        owners = dict(session.execute(select(Barcode.gtin, Barcode.sku)).all())
        plu_owners = {p.plu: p.sku for p in existing.values() if p.plu}
        in_file = {r.sku for r in rows}
        problems = []
        for number, row in enumerate(rows, start=2):
            for gtin in row.gtins:
                owner = owners.get(gtin)
                if owner is not None and owner != row.sku and owner not in in_file:
                    problems.append(
                        {"row": number, "problem": f"barcode {gtin} belongs to sku {owner}"}
                    )
            plu_owner = plu_owners.get(row.plu or "", row.sku)
            if plu_owner != row.sku and plu_owner not in in_file:
                problems.append(
                    {"row": number, "problem": f"plu {row.plu} belongs to sku {plu_owner}"}
                )
        if problems:
            raise CatalogImportError(
                f"{len(problems)} bad row(s) in the catalog; nothing was imported",
                details={"rows": problems},
            )
        # Free PLUs and barcodes of the rows being rewritten first, so swaps between rows work.
        skus = [r.sku for r in rows]
        for chunk in range(0, len(skus), 500):
            part = skus[chunk : chunk + 500]
            session.execute(delete(Barcode).where(Barcode.sku.in_(part)))
            for sku in part:
                if sku in existing and existing[sku].plu is not None:
                    existing[sku].plu = None
        session.flush()
        for row in rows:
            product = existing.get(row.sku)
            if product is None:
                product = Product(sku=row.sku)
                session.add(product)
                created += 1
            else:
                updated += 1
            product.name = row.name
            product.unit_price = row.unit_price
            product.tax_rate_bp = row.tax_rate_bp
            product.category = row.category
            product.sold_by = row.sold_by
            product.age_restricted = row.age_restricted
            product.plu = row.plu
            product.updated_at = now
        session.flush()
        session.add_all(Barcode(gtin=g, sku=r.sku) for r in rows for g in r.gtins)
        uow.commit()
    return ImportResult(created=created, updated=updated, barcodes=sum(len(r.gtins) for r in rows))
