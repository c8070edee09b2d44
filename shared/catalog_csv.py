"""The catalog CSV both the store and the cloud import: its columns and its row rules.

``sku,name,barcodes,unit_price,tax_rate,category,sold_by,age_restricted,plu`` and optionally
``max_price``: barcodes separated by ``|``, ``unit_price`` in minor units (per kg when
``sold_by`` is ``kg``), ``sold_by`` one of ``each``, ``kg`` or ``variable`` (a label carries the
price), ``tax_rate`` a percentage with at most two decimals, ``age_restricted`` true/false,
``plu`` the scale's item number (stored without leading zeros), ``max_price`` the highest price a
label may carry for a ``kg`` or ``variable`` product. A file is all or nothing: every problem of
every bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TypeVar

from shared.text import check_free_text

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
MAX_PLU_DIGITS = 8
SOLD_BY = ("each", "kg", "variable")
#: Columns a file may leave out (older files do).
OPTIONAL_COLUMNS = ("max_price",)
_T = TypeVar("_T")


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
    max_price: int | None = None


class CatalogFileError(ValueError):
    """A file with bad rows; ``rows`` lists ``{"row", "problem"}`` for each."""

    def __init__(self, message: str, rows: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.message = message
        self.rows = rows


def normalize_plu(text: str) -> str | None:
    """A scale's item number in its one stored form: digits without leading zeros.

    A scale prints the PLU zero-padded to its label layout (``000123``), a catalog may write it
    either way (``123``): both are the same item, so both are kept as ``123`` and a scanned label
    is looked up the same way. ``None`` for an empty cell.
    """
    value = text.strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > MAX_PLU_DIGITS:
        raise ValueError(f"plu {value!r} must be up to {MAX_PLU_DIGITS} digits")
    return value.lstrip("0") or "0"


def _parse_amount(text: str | None, field: str) -> int:
    value = (text or "").strip()
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{field} {value!r} must be a whole number of minor units")
    amount = int(value)
    if amount > MAX_UNIT_PRICE:
        raise ValueError(f"{field} {amount} is implausibly large")
    return amount


def _parse_optional_amount(text: str | None, field: str) -> int | None:
    if not (text or "").strip():
        return None
    amount = _parse_amount(text, field)
    if amount == 0:
        raise ValueError(f"{field} must be positive when given")
    return amount


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


def _parse_row(row: dict[str, str], gtin: Callable[[str], str]) -> CatalogRow | list[str]:
    """The row, or every problem it has (a person fixing the file wants them all at once)."""
    problems: list[str] = []

    def check(parse: Callable[[], _T], fallback: _T) -> _T:
        try:
            return parse()
        except ValueError as exc:
            problems.append(str(exc))
            return fallback

    sku = (row.get("sku") or "").strip()
    if not sku or len(sku) > 64:
        problems.append("sku is empty or longer than 64 characters")
    name = (row.get("name") or "").strip()
    if not name or len(name) > 200:
        problems.append("name is empty or longer than 200 characters")
    else:
        check(lambda: check_free_text(name, "name"), "")
    unit_price = check(lambda: _parse_amount(row.get("unit_price"), "unit_price"), 0)
    max_price = check(lambda: _parse_optional_amount(row.get("max_price"), "max_price"), None)
    sold_by = (row.get("sold_by") or "each").strip().lower()
    if sold_by not in SOLD_BY:
        problems.append(f"sold_by {sold_by!r} must be one of {', '.join(SOLD_BY)}")
    elif max_price is not None and sold_by == "each":
        problems.append("max_price is for products sold by kg or at a variable price")
    plu_text = (row.get("plu") or "").strip()
    plu = check(lambda: normalize_plu(plu_text), None)
    codes = [part.strip() for part in (row.get("barcodes") or "").split("|") if part.strip()]
    gtins = [check(partial(gtin, code), "") for code in codes]
    if not codes and not plu_text:
        problems.append("a product needs at least one barcode or a plu")
    tax_rate_bp = check(lambda: _parse_tax_rate(row.get("tax_rate") or "0"), 0)
    age_restricted = check(lambda: _parse_bool(row.get("age_restricted") or ""), False)
    category = (row.get("category") or "").strip()[:64]
    check(lambda: check_free_text(category, "category"), "")
    if problems:
        return problems
    return CatalogRow(
        sku=sku,
        name=name,
        gtins=tuple(dict.fromkeys(g for g in gtins if g)),
        unit_price=unit_price,
        tax_rate_bp=tax_rate_bp,
        category=category,
        sold_by=sold_by,
        age_restricted=age_restricted,
        plu=plu,
        max_price=max_price,
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
        row = _parse_row({k.strip(): v for k, v in raw.items()}, gtin)
        if isinstance(row, list):
            problems.extend({"row": number, "problem": problem} for problem in row)
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
