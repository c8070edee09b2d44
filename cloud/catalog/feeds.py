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
``xid8`` that never wraps). A pull serves only rows whose ``xid`` is below the *horizon*: the
oldest transaction still running (``pg_current_snapshot()``) that could write to this database.
Every transaction below it has finished, so every row below it that will ever be visible is
visible now. Rows are served in ``(xid, id)`` order and the cursor is the last ``(xid, id)``
served. Any transaction that commits later is still running now, so its ``xid`` is at or above
the horizon, above every ``xid`` served: it lands after the cursor. A long transaction holds the
feed back (lag), never makes it skip.

Transaction ids are shared by the whole PostgreSQL cluster, so the snapshot also lists the
transactions of its other databases (another service's long report, a migration elsewhere).
Those are left out of the horizon when ``pg_stat_activity`` shows them running in another
database: a backend belongs to one database for its life, so such a transaction can never write
a change row here. A running transaction the view does not show (it just ended, or the role may
not see it) is kept in the horizon: the feed may lag for it, never skip.

On SQLite writers are serialised (``BEGIN IMMEDIATE`` holds the one write lock from the first
statement to the commit), so ids become visible in id order; ``xid`` is 0 and the id alone
orders the feed.

Epochs: a restored database
---------------------------
Transaction ids belong to a PostgreSQL cluster, not to the data. Restore a dump into a new
cluster and its new transactions take ids *below* the stored rows'; a point-in-time restore
hands out again the ids of the transactions it threw away. Ordered by ``xid`` alone, the feeds
would freeze: new changes sort before every store's cursor, and a new store finds nothing
servable.

So the log lives in epochs (``feed_epochs``). Each row carries its epoch, and the feeds read
only the current one, in ``(xid, id)`` order. A new epoch starts as soon as the cloud sees the
transaction counter behind a row it stored (:func:`ensure_epoch`: at start, before writing a
change, and on a pull). A cursor names its epoch by a random token, and the row it stands on by
its ``(xid, id)`` and the row's random ``tag``. A store gets a paged snapshot when its cursor
is from another epoch, stands on a row this database does not hold (beyond the head, or a
history the restore lost), or is older than the history kept. Never a silent restart from zero,
never an empty feed for good.

History and snapshots
---------------------
Old change rows are pruned (:func:`prune_changes`); the feed's horizon remembers the newest
pruned position. A cursor before the horizon (or no cursor once history was pruned) gets a paged
snapshot of every key in key order, marked ``"snapshot": true`` with its reason, and then
continues from the log position taken when the snapshot began.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, literal, literal_column, or_, select, tuple_
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from cloud.catalog.models import Barcode, Change, FeedEpoch, FeedHorizon, Product, StorePrice
from cloud.db import Database
from cloud.errors import BadRequest, NotFound
from cloud.stores.models import Store
from sync.contract import FEEDS, CatalogItem, PriceItem, StoreSettingsItem
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
_PG_XID = "pg_current_xact_id()::text::bigint"
#: The running transactions (the snapshot's text, ``xmin:xmax:xip,...``) and, of those the
#: server shows, the ones of other databases (32-bit ``xid``).
_PG_RUNNING = (
    "SELECT pg_current_snapshot()::text, ARRAY(SELECT a.backend_xid::text::bigint "
    "FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL "
    "AND a.datname IS DISTINCT FROM current_database())"
)
_PG_XMAX = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
_TAG_BITS = 62


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _xid_expr(session: Session) -> ColumnElement[Any]:
    return literal_column(_PG_XID) if _is_pg(session) else literal(0)


# --- epochs -------------------------------------------------------------------------------------


class StaleEpoch(Exception):
    """The current epoch's rows are ahead of this cluster's transaction counter."""


def _current_epoch(session: Session) -> FeedEpoch | None:
    return session.execute(
        select(FeedEpoch).order_by(FeedEpoch.seq.desc()).limit(1)
    ).scalar_one_or_none()


def _stale_reason(session: Session, epoch: FeedEpoch) -> str | None:
    """Why ``epoch`` cannot go on in this database, or None. On PostgreSQL: a row (or pruned
    position) of the epoch holds a transaction id this cluster has not handed out yet."""
    if not _is_pg(session):
        return None
    next_xid = int(session.execute(select(literal_column(_PG_XMAX))).scalar_one())
    highest = 0
    for feed in FEEDS:
        top = session.execute(
            select(Change.xid)
            .where(Change.feed == feed, Change.epoch == epoch.seq)
            .order_by(Change.xid.desc())
            .limit(1)
        ).scalar_one_or_none()
        highest = max(highest, top or 0)
    for horizon in session.execute(
        select(FeedHorizon).where(FeedHorizon.epoch == epoch.seq)
    ).scalars():
        highest = max(highest, horizon.xid)
    if highest >= next_xid:
        return (
            f"the stored feed log reaches transaction {highest} but this database's next is "
            f"{next_xid}: it was restored"
        )
    return None


def _start_epoch(session: Session, seq: int, reason: str, now: datetime) -> None:
    values = {"seq": seq, "token": secrets.token_hex(8), "reason": reason, "started_at": now}
    if _is_pg(session):
        # Two processes that see the same restore agree on one new epoch.
        session.execute(pg_insert(FeedEpoch).values(**values).on_conflict_do_nothing())
    else:
        session.add(FeedEpoch(**values))
    session.flush()


def _writing_epoch(session: Session, now: datetime) -> FeedEpoch:
    """The epoch a write in ``session`` records its changes under, started anew if stale."""
    epoch = _current_epoch(session)
    if epoch is None:
        _start_epoch(session, 1, "the first change", now)
    else:
        reason = _stale_reason(session, epoch)
        if reason is None:
            return epoch
        _start_epoch(session, epoch.seq + 1, reason, now)
    current = _current_epoch(session)
    assert current is not None
    return current


def ensure_epoch(db: Database, *, now: datetime) -> tuple[int, str | None]:
    """Start a new epoch if the database was restored; ``(current seq, reason if started)``.
    Run at start (``aisle cloud serve`` and ``migrate``) and by a pull that finds it stale."""
    with db.write() as uow:
        before = _current_epoch(uow.session)
        after = _writing_epoch(uow.session, now)
        uow.commit()
        started = before is None or after.seq != before.seq
        return after.seq, after.reason if started else None


def record_changes(
    session: Session, changes: Iterable[tuple[str, str, str | None]], *, now: datetime
) -> None:
    """Log ``(feed, key, store_id or None)`` changes in the caller's transaction."""
    rows = [
        {
            "feed": feed,
            "key": key,
            "store_id": store_id,
            "created_at": now,
            "tag": secrets.randbits(_TAG_BITS),
        }
        for feed, key, store_id in changes
    ]
    for feed in {r["feed"] for r in rows}:
        if feed not in FEEDS:
            raise ValueError(f"unknown feed {feed!r}")
    if rows:
        epoch = _writing_epoch(session, now)
        session.execute(insert(Change).values(xid=_xid_expr(session), epoch=epoch.seq), rows)


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


def _xmin(session: Session) -> int | None:
    """The horizon: every change row below it that will ever be visible is visible now (None on
    SQLite, where writers are serialised)."""
    if not _is_pg(session):
        return None
    snapshot, elsewhere = session.execute(sql_text(_PG_RUNNING)).one()
    return horizon_of(snapshot, elsewhere or ())


def horizon_of(snapshot: str, elsewhere: Iterable[int]) -> int:
    """The oldest running transaction of ``snapshot`` (PostgreSQL's ``xmin:xmax:xip,...``) not
    known to run in another database (``elsewhere``: their 32-bit ids); ``xmax`` when none."""
    _, xmax, running = snapshot.split(":")
    other = {int(x) for x in elsewhere}
    ours = [xid for xid in map(int, filter(None, running.split(","))) if xid % 2**32 not in other]
    return min(ours, default=int(xmax))


def _horizon(session: Session, feed: str, epoch: FeedEpoch) -> tuple[int, int]:
    row = session.get(FeedHorizon, feed)
    if row is None or row.epoch != epoch.seq:
        return (0, 0)
    return (row.xid, row.change_id)


def _servable(query: Any, epoch: FeedEpoch, xmin: int | None) -> Any:
    query = query.where(Change.epoch == epoch.seq)
    return query if xmin is None else query.where(Change.xid < xmin)


def _snapshot_reason(
    session: Session, feed: str, cursor: Cursor | None, epoch: FeedEpoch
) -> str | None:
    """Why this cursor cannot go on from the log, or None when it can."""
    horizon = _horizon(session, feed, epoch)
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
    epoch = _current_epoch(session)
    if epoch is None or _stale_reason(session, epoch) is not None:
        raise StaleEpoch
    xmin = _xmin(session)
    if decoded is not None and decoded.snapshot_after is not None and decoded.epoch == epoch.token:
        return _snapshot_page(session, store_id, feed, decoded, limit, xmin, epoch, None)
    reason = _snapshot_reason(session, feed, decoded, epoch)
    if reason is not None:
        # Snapshot from the first key, then go on from the log position taken now (never
        # before the horizon).
        last = session.execute(
            _servable(
                select(Change.xid, Change.id, Change.tag).where(Change.feed == feed), epoch, xmin
            )
            .order_by(Change.xid.desc(), Change.id.desc())
            .limit(1)
        ).first()
        horizon = _horizon(session, feed, epoch)
        if last is None or (last[0], last[1]) <= horizon:
            start = Cursor(epoch.token, horizon[0], horizon[1], 0, "")
        else:
            start = Cursor(epoch.token, last[0], last[1], last[2], "")
        return _snapshot_page(session, store_id, feed, start, limit, xmin, epoch, reason)
    cursor = decoded or Cursor(epoch.token)
    rows = session.execute(
        _servable(
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
                _servable(
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
        item = CatalogItem(
            **price.model_dump(),
            name=product.name,
            barcodes=barcodes.get(key, []),
            tax_rate_bp=product.tax_rate_bp,
            category=product.category,
            sold_by=product.sold_by,  # type: ignore[arg-type]  # the table's check constraint
            age_restricted=product.age_restricted,
            plu=product.plu,
            max_price=product.max_price,
            updated_at=product.updated_at.isoformat(),
        )
        out.append(FeedChange(key, item.to_dict()))
    return out


def store_settings_dict(store: Store) -> dict[str, Any]:
    """A store's settings as its feed carries them."""
    return StoreSettingsItem(
        id=store.id,
        name=store.name,
        format=store.format,
        area_m2=store.area_m2,
        timezone=store.timezone,
        currency=store.currency,
        updated_at=store.updated_at.isoformat(),
    ).to_dict()


# --- pruning ------------------------------------------------------------------------------------


def prune_changes(session: Session, *, older_than: datetime, now: datetime) -> dict[str, int]:
    """Drop change rows older than ``older_than`` (finished transactions only) and move each
    feed's horizon; returns how many rows each feed lost. Cursors before a horizon get a
    snapshot. Rows of earlier epochs are never served again: they all go."""
    epoch = _writing_epoch(session, now)
    xmin = _xmin(session)
    pruned: dict[str, int] = {}
    for feed in FEEDS:
        old = session.execute(delete(Change).where(Change.feed == feed, Change.epoch < epoch.seq))
        count = int(getattr(old, "rowcount", 0) or 0)
        last = session.execute(
            _servable(
                select(Change.xid, Change.id).where(
                    Change.feed == feed, Change.created_at < older_than
                ),
                epoch,
                xmin,
            )
            .order_by(Change.xid.desc(), Change.id.desc())
            .limit(1)
        ).first()
        if last is not None:
            result = session.execute(
                delete(Change).where(
                    Change.feed == feed,
                    Change.epoch == epoch.seq,
                    tuple_(Change.xid, Change.id) <= tuple_(literal(last[0]), literal(last[1])),
                )
            )
            count += int(getattr(result, "rowcount", 0) or 0)
            horizon = session.get(FeedHorizon, feed)
            if horizon is None:
                session.add(
                    FeedHorizon(
                        feed=feed, epoch=epoch.seq, xid=last[0], change_id=last[1], pruned_at=now
                    )
                )
            elif horizon.epoch != epoch.seq or (last[0], last[1]) > (
                horizon.xid,
                horizon.change_id,
            ):
                horizon.epoch, horizon.xid, horizon.change_id = epoch.seq, last[0], last[1]
                horizon.pruned_at = now
        if count:
            pruned[feed] = count
    session.flush()
    return pruned


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
