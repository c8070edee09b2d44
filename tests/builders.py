"""Plain builder functions for tests: stores, catalogs, codes. Overrides by keyword."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devices.barcodes import make_weighed_code, with_check_digit
from edge.app import build_context, create_app
from edge.auth.service import pair_device
from edge.catalog.service import import_catalog
from edge.checkout.payments import SimulatedProvider
from edge.context import StoreContext
from edge.db import Database
from edge.migrations import upgrade
from edge.settings import EdgeSettings, load_settings
from shared.catalog_csv import CATALOG_COLUMNS
from shared.clock import FixedClock

T0 = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def ean13(payload12: str) -> str:
    """A valid EAN-13 from its first 12 digits."""
    return with_check_digit(payload12)


def weighed_code(plu: str, price: int, prefix: str = "2") -> str:
    """A scale label in the store's default layout: 2 + PLU(6) + price(5) + check digit."""
    return make_weighed_code(plu, price, prefix=prefix)


MILK = {
    "sku": "MILK1L",
    "name": "Fresh Milk 1L",
    "barcodes": ean13("690000000001"),
    "unit_price": "1250",
    "tax_rate": "9",
    "category": "dairy",
    "sold_by": "each",
    "age_restricted": "false",
    "plu": "",
}
RICE = {
    "sku": "RICE5",
    "name": "东北大米 5kg",
    "barcodes": ean13("690000000002"),
    "unit_price": "4990",
    "tax_rate": "9",
    "category": "grocery",
    "sold_by": "each",
    "age_restricted": "false",
    "plu": "",
}
SOAP = {
    "sku": "SOAP",
    "name": "Hand Soap",
    "barcodes": ean13("690000000003") + "|036000291452",
    "unit_price": "333",
    "tax_rate": "13",
    "category": "household",
    "sold_by": "each",
    "age_restricted": "false",
    "plu": "",
}
BAIJIU = {
    "sku": "BAIJIU",
    "name": "Baijiu 500ml",
    "barcodes": ean13("690000000004"),
    "unit_price": "19900",
    "tax_rate": "13",
    "category": "alcohol",
    "sold_by": "each",
    "age_restricted": "true",
    "plu": "",
}
APPLES = {
    "sku": "APPLE",
    "name": "Fuji Apples",
    "barcodes": "",
    "unit_price": "1580",
    "tax_rate": "9",
    "category": "produce",
    "sold_by": "kg",
    "age_restricted": "false",
    "plu": "012345",
}
DEFAULT_PRODUCTS = [MILK, RICE, SOAP, BAIJIU, APPLES]


def write_catalog(path: Path, rows: list[dict[str, str]] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CATALOG_COLUMNS)
        writer.writeheader()
        writer.writerows(DEFAULT_PRODUCTS if rows is None else rows)
    return path


def make_settings(data_dir: Path, **overrides: Any) -> EdgeSettings:
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "store.id": "S001",
        "store.name": "Test Store",
        "payments.latency_ms": 0,
    }
    base.update(overrides)
    return load_settings(None, environ={}, overrides=base)


@dataclass
class Store:
    """A migrated store with a catalog, tokens for each role and a context or app."""

    settings: EdgeSettings
    ctx: StoreContext
    clock: FixedClock
    tokens: dict[str, str]
    devices: dict[str, str]
    payments: SimulatedProvider

    @property
    def db(self) -> Database:
        return self.ctx.db


def make_store(
    data_dir: Path,
    *,
    products: list[dict[str, str]] | None = None,
    payments: SimulatedProvider | None = None,
    **overrides: Any,
) -> Store:
    settings = make_settings(data_dir, **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(settings.database_path)
    upgrade(db.writer)
    clock = FixedClock(T0)
    import_catalog(db, write_catalog(data_dir / "catalog.csv", products), now=T0)
    tokens, devices = {}, {}
    for role in ("kiosk", "phone", "handheld", "tablet", "manager", "exit"):
        devices[role], tokens[role] = pair_device(db, role=role, name=role, now=T0)
    db.dispose()
    provider = payments or SimulatedProvider(latency_ms=0, seed=1)
    ctx = build_context(settings, clock=clock, payments=provider)
    return Store(settings, ctx, clock, tokens, devices, provider)


def make_app_for(store: Store) -> Any:
    """A Flask app on the same store files, sharing the store's clock and provider."""
    return create_app(store.settings, clock=store.clock, payments=store.payments)
