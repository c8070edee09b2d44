"""Pulling the cloud's feeds: each page applied in one transaction with its cursor."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from edge.catalog.models import Barcode, Product
from edge.db import Database
from edge.sync_client.models import FeedCursor, StoreSetting
from edge.sync_client.state import mark_healthy, sync_state
from edge.sync_client.transport import CloudClient
from sync.catalog_csv import normalize_plu
from sync.faults import fault_point
from sync.protocol import FEEDS, PullPage

#: Refusals that stop pushing until a person acts (re-enrol, upgrade, investigate a restore).
#: Pages of one feed pulled in one run; the next run continues from the cursor.
MAX_PAGES_PER_RUN = 50


# --- pull -----------------------------------------------------------------------------------


def _cursor(session: Session, feed: str) -> FeedCursor | None:
    return session.get(FeedCursor, feed)


def pull_feed(
    db: Database, client: CloudClient, feed: str, *, now: datetime, limit: int = 500
) -> int:
    """Pull ``feed`` until the cloud has no more; returns the number of changes applied."""
    applied = 0
    for _ in range(MAX_PAGES_PER_RUN):
        with db.read() as session:
            row = _cursor(session, feed)
            cursor = row.cursor if row else None
        page = client.pull(feed, cursor=cursor, limit=limit, now=now)
        apply_page(db, page, previous_cursor=cursor, now=now)
        applied += len(page.changes)
        if not page.has_more:
            break
    return applied


def apply_page(db: Database, page: PullPage, *, previous_cursor: str | None, now: datetime) -> None:
    """Apply one page and move the feed's cursor, in one transaction."""
    with db.write() as uow:
        session = uow.session
        row = _cursor(session, page.feed)
        if (row.cursor if row else None) != previous_cursor:
            # Another process applied a page meanwhile; this one would move the cursor back.
            return
        if page.feed == "catalog":
            _apply_catalog(session, (c.data for c in page.changes), now)
        elif page.feed == "prices":
            _apply_prices(session, (c.data for c in page.changes), now)
        elif page.feed == "store_settings":
            _apply_store_settings(session, (c.data for c in page.changes), now)
        fault_point("edge.pull.mid_apply")
        if row is None:
            row = FeedCursor(feed=page.feed, cursor="", changes_applied=0, updated_at=now)
            session.add(row)
        row.cursor = page.next_cursor
        row.in_snapshot = page.snapshot
        row.changes_applied = (row.changes_applied or 0) + len(page.changes)
        row.updated_at = now
        state = sync_state(session)
        state.last_pull_at = now
        mark_healthy(state, now)
        uow.commit()


def _apply_catalog(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        sku = str(data["sku"])
        product = session.get(Product, sku)
        if product is None:
            product = Product(sku=sku)
            session.add(product)
        product.name = str(data["name"])
        product.unit_price = int(data["unit_price"])
        product.tax_rate_bp = int(data["tax_rate_bp"])
        product.category = str(data.get("category") or "")
        product.sold_by = str(data["sold_by"])
        product.age_restricted = bool(data.get("age_restricted", False))
        max_price = data.get("max_price")
        product.max_price = int(max_price) if max_price else None
        plu = normalize_plu(str(data.get("plu") or ""))
        if plu:
            # The cloud is the master: a PLU moved to this product leaves its old owner.
            session.execute(
                update(Product).where(Product.plu == str(plu), Product.sku != sku).values(plu=None)
            )
        product.plu = str(plu) if plu else None
        product.updated_at = now
        session.flush()
        wanted = {str(g) for g in data.get("barcodes", [])}
        for barcode in session.execute(select(Barcode).where(Barcode.sku == sku)).scalars():
            if barcode.gtin not in wanted:
                session.delete(barcode)
        for gtin in wanted:
            owned = session.get(Barcode, gtin)
            if owned is None:
                session.add(Barcode(gtin=gtin, sku=sku))
            elif owned.sku != sku:
                owned.sku = sku
        session.flush()


def _apply_prices(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        product = session.get(Product, str(data["sku"]))
        if product is None:
            continue  # the catalog feed brings the product with its price
        product.unit_price = int(data["unit_price"])
        product.updated_at = now


def _apply_store_settings(session: Session, items: Iterable[dict[str, Any]], now: datetime) -> None:
    for data in items:
        for key, value in data.items():
            session.merge(StoreSetting(key=str(key), value=json.dumps(value), updated_at=now))


def pull_all(db: Database, client: CloudClient, *, now: datetime) -> dict[str, int]:
    return {feed: pull_feed(db, client, feed, now=now) for feed in FEEDS}
