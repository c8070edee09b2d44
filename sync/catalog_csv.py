"""The catalog CSV both the store and the cloud import: its columns and its row rules.

``sku,name,barcodes,unit_price,tax_rate,category,sold_by,age_restricted,plu``: barcodes separated
by ``|``, ``unit_price`` in minor units (per kg when ``sold_by`` is ``kg``), ``tax_rate`` a
percentage with at most two decimals, ``age_restricted`` true/false, ``plu`` the scale's item
number. A file is all or nothing: every bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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


class CatalogFileError(ValueError):
    """A file with bad rows; ``rows`` lists ``{"row", "problem"}`` for each."""

    def __init__(self, message: str, rows: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.message = message
        self.rows = rows


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


def _parse_row(row: dict[str, str], gtin: Callable[[str], str]) -> CatalogRow:
    sku = (row.get("sku") or "").strip()
    if not sku or len(sku) > 64:
        raise ValueError("sku is empty or longer than 64 characters")
    name = (row.get("name") or "").strip()
    if not name or len(name) > 200:
        raise ValueError("name is empty or longer than 200 characters")
    price_text = (row.get("unit_price") or "").strip()
    if not price_text.isascii() or not price_text.isdigit():
        raise ValueError(f"unit_price {price_text!r} must be a whole number of minor units")
    unit_price = int(price_text)
    if unit_price > MAX_UNIT_PRICE:
        raise ValueError(f"unit_price {unit_price} is implausibly large")
    sold_by = (row.get("sold_by") or "each").strip().lower()
    if sold_by not in ("each", "kg"):
        raise ValueError(f"sold_by {sold_by!r} must be each or kg")
    plu = (row.get("plu") or "").strip() or None
    if plu is not None and (not plu.isascii() or not plu.isdigit() or len(plu) > 16):
        raise ValueError(f"plu {plu!r} must be up to 16 digits")
    gtins = [gtin(p.strip()) for p in (row.get("barcodes") or "").split("|") if p.strip()]
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


def parse_catalog(text: str, *, gtin: Callable[[str], str]) -> list[CatalogRow]:
    """Validate a whole catalog CSV; raises :class:`CatalogFileError` listing every bad row.

    ``gtin`` checks one barcode and returns its GTIN-14, raising ``ValueError`` for a bad one
    (each side brings its own: the store reads barcodes with biip).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    missing = [c for c in CATALOG_COLUMNS if c not in header]
    if missing:
        raise CatalogFileError(
            f"catalog header lacks columns: {', '.join(missing)}",
            [{"row": 1, "problem": f"missing columns {missing}"}],
        )
    rows: list[CatalogRow] = []
    problems: list[dict[str, object]] = []
    seen: dict[str, dict[str, int]] = {"sku": {}, "barcode": {}, "plu": {}}
    for number, raw in enumerate(reader, start=2):
        if None in raw:
            problems.append({"row": number, "problem": "more fields than the header has"})
            continue
        try:
            row = _parse_row({k.strip(): v for k, v in raw.items()}, gtin)
        except ValueError as exc:
            problems.append({"row": number, "problem": str(exc)})
            continue
        for label, values in (
            ("sku", (row.sku,)),
            ("barcode", row.gtins),
            ("plu", (row.plu,) if row.plu else ()),
        ):
            for value in values:
                if value in seen[label]:
                    problem = f"{label} {value} repeats row {seen[label][value]}"
                    problems.append({"row": number, "problem": problem})
                seen[label][value] = number
        rows.append(row)
    if problems:
        raise CatalogFileError(
            f"{len(problems)} bad row(s) in the catalog; nothing was imported", problems
        )
    return rows
