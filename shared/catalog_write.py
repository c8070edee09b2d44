"""Writing catalog rows into a products table and its barcodes: the one rule both sides keep.

The store and the cloud each have a ``products`` table (sku, name, unit_price, tax_rate_bp,
category, sold_by, age_restricted, plu, max_price, updated_at) and a ``barcodes`` table (gtin,
sku) of the same shape. Rows are written in place by SKU, and a PLU or a barcode belongs to one
product at a time. Who may take one from another product depends on who writes:

- a **file import** (``take_over=False``) refuses a row whose barcode or PLU belongs to a
  product the file does not rewrite: a person fixes the file, nothing is written;
- the **cloud's feed** (``take_over=True``) is the master: a PLU or barcode it gives to one
  product leaves its old owner, whichever page brought that owner.

Codes moving between rows of the same write (a swap) are fine either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shared.catalog_csv import CatalogFileError, CatalogRow

_CHUNK = 500


@dataclass(frozen=True)
class CatalogWrite:
    created: int
    updated: int
    barcodes: int


def _conflicts(
    session: Session, product: Any, barcode: Any, rows: Sequence[CatalogRow]
) -> list[dict[str, object]]:
    in_file = {r.sku for r in rows}
    owners: dict[str, str] = dict(session.execute(select(barcode.gtin, barcode.sku)).all())
    plu_owners: dict[str, str] = dict(
        session.execute(select(product.plu, product.sku).where(product.plu.is_not(None))).all()
    )
    problems: list[dict[str, object]] = []
    for number, row in enumerate(rows, start=2):
        for gtin in row.gtins:
            owner = owners.get(gtin)
            if owner is not None and owner != row.sku and owner not in in_file:
                problems.append(
                    {"row": number, "problem": f"barcode {gtin} belongs to sku {owner}"}
                )
        plu_owner = plu_owners.get(row.plu or "", row.sku)
        if plu_owner != row.sku and plu_owner not in in_file:
            problem = f"plu {row.plu} belongs to sku {plu_owner}"
            problems.append({"row": number, "problem": problem})
    return problems


def write_catalog(
    session: Session,
    *,
    product: Any,
    barcode: Any,
    rows: Sequence[CatalogRow],
    now: datetime,
    take_over: bool,
) -> CatalogWrite:
    """Write ``rows`` into the ``product`` and ``barcode`` tables (ORM classes) in the caller's
    transaction; :class:`~shared.catalog_csv.CatalogFileError` lists the rows whose codes belong
    to other products, unless ``take_over``."""
    if not take_over:
        problems = _conflicts(session, product, barcode, rows)
        if problems:
            raise CatalogFileError(
                f"{len(problems)} bad row(s) in the catalog; nothing was imported", problems
            )
    skus = [r.sku for r in rows]
    gtins = [g for r in rows for g in r.gtins]
    plus = [r.plu for r in rows if r.plu]
    existing: dict[str, Any] = {}
    # Free the codes being written first (theirs, and those they take), so swaps work.
    for start in range(0, len(skus), _CHUNK):
        part = skus[start : start + _CHUNK]
        existing.update(
            (p.sku, p)
            for p in session.execute(select(product).where(product.sku.in_(part))).scalars()
        )
        session.execute(delete(barcode).where(barcode.sku.in_(part)))
        session.execute(
            update(product)
            .where(product.sku.in_(part), product.plu.is_not(None))
            .values(plu=None)
            .execution_options(synchronize_session="fetch")
        )
    for start in range(0, len(gtins), _CHUNK):
        session.execute(delete(barcode).where(barcode.gtin.in_(gtins[start : start + _CHUNK])))
    for start in range(0, len(plus), _CHUNK):
        session.execute(
            update(product)
            .where(product.plu.in_(plus[start : start + _CHUNK]))
            .values(plu=None)
            .execution_options(synchronize_session="fetch")
        )
    session.flush()
    created = 0
    for row in rows:
        item = existing.get(row.sku)
        if item is None:
            item = product(sku=row.sku)
            session.add(item)
            existing[row.sku] = item
            created += 1
        item.name = row.name
        item.unit_price = row.unit_price
        item.tax_rate_bp = row.tax_rate_bp
        item.category = row.category
        item.sold_by = row.sold_by
        item.age_restricted = row.age_restricted
        item.plu = row.plu
        item.max_price = row.max_price
        item.updated_at = now
    session.flush()
    session.add_all(barcode(gtin=g, sku=r.sku) for r in rows for g in r.gtins)
    session.flush()
    return CatalogWrite(created=created, updated=len(rows) - created, barcodes=len(gtins))
