"""Pull feeds: the change log (:mod:`cloud.changes.log`) paged by cursor, with snapshots.

A store pulls a feed by cursor and gets the keys that changed with their *current* data, store
price overrides applied for that store. The log says which keys changed and in which order, and
why a cursor never skips a change; this module reads pages of it.

A cursor names its epoch by a random token, and the row it stands on by its ``(xid, id)`` and
the row's random ``tag``. A store gets a paged snapshot when its cursor is from another epoch,
stands on a row this database does not hold (beyond the head, or a history the restore lost),
or is older than the history kept (before the feed's pruned horizon): every key in key order,
marked ``"snapshot": true`` with its reason, and then it continues from the log position taken
when the snapshot began. Never a silent restart from zero, never an empty feed for good.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import literal, or_, select, tuple_
from sqlalchemy.orm import Session

from cloud.catalog.models import Barcode, Product, StorePrice
from cloud.changes.log import (
    StaleEpoch,
    current_epoch,
    ensure_epoch,
    pruned_horizon,
    running_horizon,
    servable,
    stale_reason,
)
from cloud.changes.models import Change, FeedEpoch
from cloud.coupons.service import campaign_ids_after, campaign_items, quota_ids_after, quota_items
from cloud.db import Database
from cloud.errors import BadRequest, NotFound
from cloud.members.registry import member_merges, merged_members_after
from cloud.members.rules import RULES_KEY, current_rules
from cloud.promotions.service import promotion_ids_after, promotion_items
from cloud.stores.models import Store
from sync.contract import (
    FEED_COUPON_CAMPAIGNS,
    FEED_COUPON_QUOTAS,
    FEED_EARN_RULES,
    FEED_MEMBER_MERGES,
    FEED_PROMOTIONS,
    FEEDS,
    CatalogItem,
    PriceItem,
    StoreSettingsItem,
)
from sync.protocol import (
    ERR_BAD_CURSOR,
    ERR_UNKNOWN_FEED,
    SNAPSHOT_FIRST_PULL,
    SNAPSHOT_NEW_EPOCH,
    SNAPSHOT_PRUNED,
    SNAPSHOT_UNKNOWN_POSITION,
    FeedChange,
    PullPage,
)

CURSOR_VERSION = "2"


# --- cursors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a feed: the epoch (its token), the last ``(xid, id)`` served and that row's
    ``tag``; while a snapshot runs, the last key it served (``snapshot_after``; "" before the
    first). ``epoch`` "" is a cursor of an older cloud: it gets a snapshot."""

    epoch: str = ""
    xid: int = 0
    id: int = 0
    tag: int = 0
    snapshot_after: str | None = None

    def encode(self) -> str:
        text = f"{CURSOR_VERSION}.{self.epoch}.{self.xid}.{self.id}.{self.tag}"
        if self.snapshot_after is not None:
            key = base64.urlsafe_b64encode(self.snapshot_after.encode()).decode().rstrip("=")
            text += f".s{key}"
        return text

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor, or None for none; a version-1 cursor is one of another epoch."""
        if not text:
            return None
        parts = text.split(".")
        try:
            if parts[0] == "1" and len(parts) in (3, 4):
                # A cursor of the cloud before epochs: well formed, it gets a snapshot.
                if min(int(parts[1]), int(parts[2])) < 0:
                    raise ValueError(text)
                if len(parts) == 4 and not parts[3].startswith("s"):
                    raise ValueError(text)
                return cls()
            if parts[0] != CURSOR_VERSION or len(parts) not in (5, 6):
                raise ValueError(text)
            epoch = parts[1]
            if not epoch or len(epoch) > 32 or not epoch.isalnum():
                raise ValueError(text)
            xid, change_id, tag = int(parts[2]), int(parts[3]), int(parts[4])
            if min(xid, change_id, tag) < 0 or max(xid, change_id, tag) >= 1 << 63:
                raise ValueError(text)
            after = None
            if len(parts) == 6:
                if not parts[5].startswith("s"):
                    raise ValueError(text)
                raw = parts[5][1:]
                after = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
            raise BadRequest(
                "cursor is not one this cloud handed out", code=ERR_BAD_CURSOR
            ) from None
        return cls(epoch, xid, change_id, tag, after)

    @property
    def position(self) -> tuple[int, int]:
        return (self.xid, self.id)


def _snapshot_reason(
    session: Session, feed: str, cursor: Cursor | None, epoch: FeedEpoch
) -> str | None:
    """Why this cursor cannot go on from the log, or None when it can."""
    horizon = pruned_horizon(session, feed, epoch)
    if cursor is None:
        # A first pull reads the log only if the log still holds everything: the first epoch,
        # never pruned.
        if epoch.seq > 1:
            return SNAPSHOT_NEW_EPOCH
        return SNAPSHOT_FIRST_PULL if horizon > (0, 0) else None
    if cursor.epoch != epoch.token:
        return SNAPSHOT_NEW_EPOCH
    if cursor.position < horizon:
        return SNAPSHOT_PRUNED
    if cursor.position == horizon:
        return None  # at the epoch's start, or exactly where pruning stopped
    row = session.execute(
        select(Change.epoch, Change.xid, Change.tag).where(Change.id == cursor.id)
    ).first()
    if row is None or tuple(row) != (epoch.seq, cursor.xid, cursor.tag):
        return SNAPSHOT_UNKNOWN_POSITION  # beyond the head, or a history the restore lost
    return None


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
    decoded = Cursor.decode(cursor_text)
    epoch = current_epoch(session)
    if epoch is None or stale_reason(session, epoch) is not None:
        raise StaleEpoch
    xmin = running_horizon(session)
    if decoded is not None and decoded.snapshot_after is not None and decoded.epoch == epoch.token:
        return _snapshot_page(session, store_id, feed, decoded, limit, xmin, epoch, None)
    reason = _snapshot_reason(session, feed, decoded, epoch)
    if reason is not None:
        # Snapshot from the first key, then go on from the log position taken now (never
        # before the horizon).
        last = session.execute(
            servable(
                select(Change.xid, Change.id, Change.tag).where(Change.feed == feed), epoch, xmin
            )
            .order_by(Change.xid.desc(), Change.id.desc())
            .limit(1)
        ).first()
        horizon = pruned_horizon(session, feed, epoch)
        if last is None or (last[0], last[1]) <= horizon:
            start = Cursor(epoch.token, horizon[0], horizon[1], 0, "")
        else:
            start = Cursor(epoch.token, last[0], last[1], last[2], "")
        return _snapshot_page(session, store_id, feed, start, limit, xmin, epoch, reason)
    cursor = decoded or Cursor(epoch.token)
    rows = session.execute(
        servable(
            select(Change.xid, Change.id, Change.tag, Change.key).where(
                Change.feed == feed,
                or_(Change.store_id.is_(None), Change.store_id == store_id),
                tuple_(Change.xid, Change.id) > tuple_(literal(cursor.xid), literal(cursor.id)),
            ),
            epoch,
            xmin,
        )
        .order_by(Change.xid, Change.id)
        .limit(limit + 1)
    ).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    keys = list(dict.fromkeys(r.key for r in rows))
    next_cursor = Cursor(epoch.token, rows[-1].xid, rows[-1].id, rows[-1].tag) if rows else cursor
    return PullPage(
        feed=feed,
        changes=tuple(_materialise(session, store_id, feed, keys)),
        next_cursor=next_cursor.encode(),
        has_more=has_more,
    )


def _snapshot_page(
    session: Session,
    store_id: str,
    feed: str,
    cursor: Cursor,
    limit: int,
    xmin: int | None,
    epoch: FeedEpoch,
    reason: str | None,
) -> PullPage:
    after = cursor.snapshot_after or ""
    if feed == "store_settings":
        keys = [store_id] if after < store_id else []
        more_keys = False
    elif feed == FEED_MEMBER_MERGES:
        keys, more_keys = merged_members_after(session, after, limit)
    elif feed == FEED_EARN_RULES:
        keys, more_keys = ([RULES_KEY] if after < RULES_KEY else []), False
    elif feed == FEED_PROMOTIONS:
        keys, more_keys = promotion_ids_after(session, after, limit)
    elif feed == FEED_COUPON_CAMPAIGNS:
        keys, more_keys = campaign_ids_after(session, after, limit)
    elif feed == FEED_COUPON_QUOTAS:
        keys, more_keys = quota_ids_after(session, store_id, after, limit)
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
        next_cursor = Cursor(cursor.epoch, cursor.xid, cursor.id, cursor.tag, keys[-1])
        has_more = True
    else:
        # The snapshot is complete: continue from the log position it started at.
        next_cursor = Cursor(cursor.epoch, cursor.xid, cursor.id, cursor.tag)
        has_more = (
            session.execute(
                servable(
                    select(Change.id).where(
                        Change.feed == feed,
                        or_(Change.store_id.is_(None), Change.store_id == store_id),
                        tuple_(Change.xid, Change.id)
                        > tuple_(literal(cursor.xid), literal(cursor.id)),
                    ),
                    epoch,
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
        snapshot_reason=reason,
    )


def _materialise(session: Session, store_id: str, feed: str, keys: list[str]) -> list[FeedChange]:
    if not keys:
        return []
    if feed == "store_settings":
        stores = {
            s.id: s for s in session.execute(select(Store).where(Store.id.in_(keys))).scalars()
        }
        return [FeedChange(k, store_settings_dict(stores[k])) for k in keys if k in stores]
    if feed == FEED_MEMBER_MERGES:
        return [FeedChange(k, item.to_dict()) for k, item in member_merges(session, keys)]
    if feed == FEED_EARN_RULES:
        return [FeedChange(RULES_KEY, current_rules(session).to_dict())] if keys else []
    if feed == FEED_PROMOTIONS:
        return [FeedChange(k, item.to_dict()) for k, item in promotion_items(session, keys)]
    if feed == FEED_COUPON_CAMPAIGNS:
        return [FeedChange(k, item.to_dict()) for k, item in campaign_items(session, keys)]
    if feed == FEED_COUPON_QUOTAS:
        return [FeedChange(k, item.to_dict()) for k, item in quota_items(session, store_id, keys)]
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
        price = PriceItem(
            sku=product.sku,
            unit_price=product.unit_price if override is None else override,
            chain_unit_price=product.unit_price,
            price_source="chain" if override is None else "store",
        )
        if feed == "prices":
            out.append(FeedChange(key, price.to_dict()))
            continue
        item = CatalogItem.of_record(
            product,
            **price.model_dump(),
            barcodes=barcodes.get(key, []),
            updated_at=product.updated_at.isoformat(),
        )
        out.append(FeedChange(key, item.to_dict()))
    return out


def store_settings_dict(store: Store) -> dict[str, Any]:
    """A store's settings as its feed carries them."""
    return StoreSettingsItem.of_record(store, updated_at=store.updated_at.isoformat()).to_dict()


def read_page(
    db: Database,
    *,
    store_id: str,
    feed: str,
    cursor_text: str | None,
    limit: int,
    now: datetime,
) -> PullPage:
    """One page of ``feed`` for ``store_id``, read in one transaction; a database found restored
    first gets its new epoch (in a transaction of its own)."""
    for _ in range(2):
        try:
            with db.read() as session:
                return _read_page(
                    session, store_id=store_id, feed=feed, cursor_text=cursor_text, limit=limit
                )
        except StaleEpoch:
            ensure_epoch(db, now=now)
    raise RuntimeError("the feed epoch could not be brought up to date")
