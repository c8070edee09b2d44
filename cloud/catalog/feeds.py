"""Pull feeds: a change log that never skips a change, paged by cursor, with snapshots.

Every change to master data writes a row to ``changes`` in the same transaction: which feed,
which key, and for which store (NULL: every store). A store pulls a feed by cursor and gets the
keys that changed with their *current* data, store price overrides applied for that store.

Why the cursor cannot skip a change
-----------------------------------
A plain ``id > cursor`` read is wrong on PostgreSQL: ids come from a sequence handed out before
commit, so transaction A can take id 5, transaction B id 6, B commits first, a pull reads 6 and
moves its cursor past 5, then A commits id 5 and it is never served.

On PostgreSQL each change row stores its transaction's id (``pg_current_xact_id()``, a 64-bit
``xid8`` that never wraps). A pull serves only rows whose ``xid`` is below
``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction still running: every
transaction below it has finished, so every row below it that will ever be visible is visible
now. Rows are served in ``(xid, id)`` order and the cursor is the last ``(xid, id)`` served.
Any transaction that commits later is still running now, so its ``xid >= xmin`` is above every
``xid`` served: it lands after the cursor. A long transaction holds the feed back (lag), never
makes it skip.

On SQLite writers are serialised (``BEGIN IMMEDIATE`` holds the one write lock from the first
statement to the commit), so ids become visible in id order; ``xid`` is 0 and the id alone
orders the feed.

History and snapshots
---------------------
Old change rows are pruned (:func:`prune_changes`); the feed's horizon remembers the newest
pruned position. A cursor before the horizon (or no cursor once history was pruned) gets a paged
snapshot of every key in key order, marked ``"snapshot": true``, and then continues from the
log position taken when the snapshot began. Never a silent restart from zero.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, literal, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from cloud.catalog.models import Barcode, Change, FeedHorizon, Product, StorePrice
from cloud.db import Database
from cloud.errors import BadRequest, NotFound
from cloud.stores.models import Store
from sync.protocol import ERR_BAD_CURSOR, ERR_UNKNOWN_FEED, FEEDS, FeedChange, PullPage

CURSOR_VERSION = "1"
_PG_XID = "pg_current_xact_id()::text::bigint"
_PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _xid_expr(session: Session) -> ColumnElement[Any]:
    return literal_column(_PG_XID) if _is_pg(session) else literal(0)


def record_changes(
    session: Session, changes: Iterable[tuple[str, str, str | None]], *, now: datetime
) -> None:
    """Log ``(feed, key, store_id or None)`` changes in the caller's transaction."""
    rows = [
        {"feed": feed, "key": key, "store_id": store_id, "created_at": now}
        for feed, key, store_id in changes
    ]
    for feed in {r["feed"] for r in rows}:
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}")
    if rows:
        session.execute(insert(Change).values(xid=_xid_expr(session)), rows)


# --- cursors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a feed: the last ``(xid, id)`` served, and while a snapshot runs, the last
    key it served (``snapshot_after``; "" before the first)."""

    xid: int = 0
    id: int = 0
    snapshot_after: str | None = None

    def encode(self) -> str:
        text = f"{CURSOR_VERSION}.{self.xid}.{self.id}"
        if self.snapshot_after is not None:
            key = base64.urlsafe_b64encode(self.snapshot_after.encode()).decode().rstrip("=")
            text += f".s{key}"
        return text

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        parts = text.split(".")
        try:
            if parts[0] != CURSOR_VERSION or len(parts) not in (3, 4):
                raise ValueError(text)
            xid, change_id = int(parts[1]), int(parts[2])
            if xid < 0 or change_id < 0:
                raise ValueError(text)
            after = None
            if len(parts) == 4:
                if not parts[3].startswith("s"):
                    raise ValueError(text)
                raw = parts[3][1:]
                after = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                "cursor is not one this cloud handed out", code=ERR_BAD_CURSOR
            ) from None
        return cls(xid, change_id, after)

    @property
    def position(self) -> tuple[int, int]:
        return (self.xid, self.id)


def _xmin(session: Session) -> int | None:
    if not _is_pg(session):
        return None
    return int(session.execute(select(literal_column(_PG_XMIN))).scalar_one())


def _horizon(session: Session, feed: str) -> tuple[int, int]:
    row = session.get(FeedHorizon, feed)
    return (0, 0) if row is None else (row.xid, row.change_id)


def _servable(query: Any, xmin: int | None) -> Any:
    return query if xmin is None else query.where(Change.xid < xmin)


# --- reading a page -----------------------------------------------------------------------------


def _read_page(
    session: Session, *, store_id: str, feed: str, cursor_text: str | None, limit: int
) -> PullPage:
    """One page of ``feed`` for ``store_id`` after the cursor; never skips, never restarts."""
    if feed not in FEEDS:
        raise NotFound(
            f"no feed {feed!r}; feeds are {', '.join(FEEDS)}",
            code=ERR_UNKNOWN_FEED,
            details={"feeds": list(FEEDS)},
        )
    cursor = Cursor.decode(cursor_text)
    xmin = _xmin(session)
    if cursor.snapshot_after is None and cursor.position < _horizon(session, feed):
        # Older than the history kept: snapshot from the first key, then go on from the log
        # position taken now (never before the horizon).
        last = session.execute(
            _servable(select(Change.xid, Change.id).where(Change.feed == feed), xmin)
            .order_by(Change.xid.desc(), Change.id.desc())
            .limit(1)
        ).first()
        start = max(_horizon(session, feed), (0, 0) if last is None else (last[0], last[1]))
        cursor = Cursor(start[0], start[1], "")
    if cursor.snapshot_after is not None:
        return _snapshot_page(session, store_id, feed, cursor, limit, xmin)
    rows = session.execute(
        _servable(
            select(Change.xid, Change.id, Change.key).where(
                Change.feed == feed,
                or_(Change.store_id.is_(None), Change.store_id == store_id),
                tuple_(Change.xid, Change.id) > tuple_(literal(cursor.xid), literal(cursor.id)),
            ),
            xmin,
        )
        .order_by(Change.xid, Change.id)
        .limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    keys = list(dict.fromkeys(r.key for r in rows))
    next_cursor = Cursor(rows[-1].xid, rows[-1].id) if rows else cursor
    return PullPage(
        feed=feed,
        changes=tuple(_materialise(session, store_id, feed, keys)),
        next_cursor=next_cursor.encode(),
        has_more=has_more,
    )


def _snapshot_page(
    session: Session, store_id: str, feed: str, cursor: Cursor, limit: int, xmin: int | None
) -> PullPage:
    after = cursor.snapshot_after or ""
    if feed == "store_settings":
        keys = [store_id] if after < store_id else []
        more_keys = False
    else:
        found = list(
            session.execute(
                select(Product.sku)
                .where(Product.sku > after)
                .order_by(Product.sku)
                .limit(limit + 1)
            ).scalars()
        )
        more_keys = len(found) > limit
        keys = found[:limit]
    changes = tuple(_materialise(session, store_id, feed, keys))
    if more_keys:
        next_cursor = Cursor(cursor.xid, cursor.id, keys[-1])
        has_more = True
    else:
        # The snapshot is complete: continue from the log position it started at.
        next_cursor = Cursor(cursor.xid, cursor.id)
        has_more = (
            session.execute(
                _servable(
                    select(Change.id).where(
                        Change.feed == feed,
                        or_(Change.store_id.is_(None), Change.store_id == store_id),
                        tuple_(Change.xid, Change.id)
                        > tuple_(literal(cursor.xid), literal(cursor.id)),
                    ),
                    xmin,
                ).limit(1)
            ).first()
            is not None
        )
    return PullPage(
        feed=feed,
        changes=changes,
        next_cursor=next_cursor.encode(),
        has_more=has_more,
        snapshot=True,
    )


def _materialise(session: Session, store_id: str, feed: str, keys: list[str]) -> list[FeedChange]:
    if not keys:
        return []
    if feed == "store_settings":
        stores = {
            s.id: s for s in session.execute(select(Store).where(Store.id.in_(keys))).scalars()
        }
        return [FeedChange(k, store_settings_dict(stores[k])) for k in keys if k in stores]
    products = {
        p.sku: p for p in session.execute(select(Product).where(Product.sku.in_(keys))).scalars()
    }
    overrides = dict(
        session.execute(
            select(StorePrice.sku, StorePrice.unit_price).where(
                StorePrice.store_id == store_id, StorePrice.sku.in_(keys)
            )
        ).all()
    )
    barcodes: dict[str, list[str]] = {}
    if feed == "catalog":
        for gtin, sku in session.execute(
            select(Barcode.gtin, Barcode.sku).where(Barcode.sku.in_(keys)).order_by(Barcode.gtin)
        ):
            barcodes.setdefault(sku, []).append(gtin)
    out = []
    for key in keys:
        product = products.get(key)
        if product is None:
            continue
        override = overrides.get(key)
        price = {
            "sku": product.sku,
            "unit_price": product.unit_price if override is None else override,
            "chain_unit_price": product.unit_price,
            "price_source": "chain" if override is None else "store",
        }
        if feed == "prices":
            out.append(FeedChange(key, price))
            continue
        out.append(
            FeedChange(
                key,
                {
                    **price,
                    "name": product.name,
                    "barcodes": barcodes.get(key, []),
                    "tax_rate_bp": product.tax_rate_bp,
                    "category": product.category,
                    "sold_by": product.sold_by,
                    "age_restricted": product.age_restricted,
                    "plu": product.plu,
                    "max_price": product.max_price,
                    "updated_at": product.updated_at.isoformat(),
                },
            )
        )
    return out


def store_settings_dict(store: Store) -> dict[str, Any]:
    """A store's settings as its feed carries them."""
    return {
        "id": store.id,
        "name": store.name,
        "format": store.format,
        "area_m2": store.area_m2,
        "timezone": store.timezone,
        "currency": store.currency,
        "updated_at": store.updated_at.isoformat(),
    }


# --- pruning ------------------------------------------------------------------------------------


def prune_changes(session: Session, *, older_than: datetime, now: datetime) -> dict[str, int]:
    """Drop change rows older than ``older_than`` (finished transactions only) and move each
    feed's horizon; returns how many rows each feed lost. Cursors before a horizon get a
    snapshot."""
    xmin = _xmin(session)
    pruned: dict[str, int] = {}
    for feed in FEEDS:
        last = session.execute(
            _servable(
                select(Change.xid, Change.id).where(
                    Change.feed == feed, Change.created_at < older_than
                ),
                xmin,
            )
            .order_by(Change.xid.desc(), Change.id.desc())
            .limit(1)
        ).first()
        if last is None:
            continue
        result = session.execute(
            delete(Change).where(
                Change.feed == feed,
                tuple_(Change.xid, Change.id) <= tuple_(literal(last[0]), literal(last[1])),
            )
        )
        pruned[feed] = int(getattr(result, "rowcount", 0) or 0)
        horizon = session.get(FeedHorizon, feed)
        if horizon is None:
            session.add(FeedHorizon(feed=feed, xid=last[0], change_id=last[1], pruned_at=now))
        elif (last[0], last[1]) > (horizon.xid, horizon.change_id):
            horizon.xid, horizon.change_id, horizon.pruned_at = last[0], last[1], now
    session.flush()
    return pruned


def read_page(
    db: Database, *, store_id: str, feed: str, cursor_text: str | None, limit: int
) -> PullPage:
    """One page of ``feed`` for ``store_id``, read in one transaction."""
    with db.read() as session:
        return _read_page(
            session, store_id=store_id, feed=feed, cursor_text=cursor_text, limit=limit
        )
