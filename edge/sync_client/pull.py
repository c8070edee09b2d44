"""Pulling the cloud's feeds: each page applied in one transaction with its cursor."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from edge.catalog.models import Barcode, Product
from edge.db import Database
from edge.sync_client.models import FeedCursor, StoreSetting
from edge.sync_client.state import mark_healthy, sync_state
from edge.sync_client.transport import CloudClient, CloudUnavailable
from shared.catalog_csv import MAX_UNIT_PRICE, normalize_plu
from shared.faults import fault_point
from sync.protocol import FEEDS, PullPage

#: Pages of one feed pulled in one run; the next run continues from the cursor.
MAX_PAGES_PER_RUN = 50

log = logging.getLogger(__name__)

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


class BadFeedPage(CloudUnavailable):
    """A page this store cannot apply: nothing of it is applied, the cursor stays, the status
    shows why, and the pull is tried again after the backoff (a cloud put right, or a newer
    store, takes it)."""

    def __init__(self, feed: str, problem: str) -> None:
        super().__init__(
            f"the {feed} feed sent a page this store cannot apply: {problem}", code="bad_feed_page"
        )


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class CatalogItem(_Item):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    unit_price: int = Field(ge=0, le=MAX_UNIT_PRICE)
    tax_rate_bp: int = Field(ge=0, le=10_000)
    category: str | None = Field(default="", max_length=64)
    sold_by: Literal["each", "kg", "variable"]
    age_restricted: bool = False
    plu: str | None = Field(default=None, max_length=16)
    max_price: int | None = Field(default=None, ge=1, le=MAX_UNIT_PRICE)
    barcodes: list[str] = Field(default=[], max_length=100)


class PriceItem(_Item):
    sku: str = Field(min_length=1, max_length=64)
    unit_price: int = Field(ge=0, le=MAX_UNIT_PRICE)


ITEM_MODELS: dict[str, type[_Item]] = {"catalog": CatalogItem, "prices": PriceItem}


def _check_page(page: PullPage) -> None:
    """Every item of the page is one this store can apply, or :class:`BadFeedPage`."""
    model = ITEM_MODELS.get(page.feed)
    for change in page.changes:
        if not isinstance(change.data, dict):
            raise BadFeedPage(page.feed, f"item {change.key!r} is not an object")
        if model is None:
            continue
        try:
            item = model.model_validate(change.data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False)[:3]
            )
            raise BadFeedPage(page.feed, f"item {change.key!r}: {problems}") from None
        if isinstance(item, CatalogItem):
            try:
                normalize_plu(item.plu or "")
                for gtin in item.barcodes:
                    if len(gtin) != 14 or not (gtin.isascii() and gtin.isdigit()):
                        raise ValueError(f"barcode {gtin!r} is not a GTIN-14")
            except ValueError as exc:
                raise BadFeedPage(page.feed, f"item {change.key!r}: {exc}") from None


def apply_page(db: Database, page: PullPage, *, previous_cursor: str | None, now: datetime) -> None:
    """Apply one page and move the feed's cursor, in one transaction; a page that cannot be
    applied whole raises :class:`BadFeedPage` and changes nothing."""
    _check_page(page)
    try:
        _apply_checked(db, page, previous_cursor=previous_cursor, now=now)
    except (IntegrityError, DataError, ValueError, KeyError, TypeError) as exc:
        raise BadFeedPage(page.feed, f"{type(exc).__name__}: {exc}"[:300]) from None


def _apply_checked(
    db: Database, page: PullPage, *, previous_cursor: str | None, now: datetime
) -> None:
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
        if page.snapshot_reason is not None:
            log.info("feed %s: the cloud sends a snapshot (%s)", page.feed, page.snapshot_reason)
            row.last_snapshot_reason, row.last_snapshot_at = page.snapshot_reason, now
        row.changes_applied = (row.changes_applied or 0) + len(page.changes)
        row.updated_at = now
        state = sync_state(session)
        state.last_pull_at = now
        mark_healthy(state, now, pushed=False)
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
