"""The change log: every feature records its changes here; the pull feeds read them.

Every change to data a store pulls writes a row to ``changes`` in the same transaction: which
feed, which key, and for which store (NULL: every store). A store pulls a feed by cursor
(:mod:`cloud.catalog.feeds`) and gets the keys that changed with their *current* data.

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

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, literal, literal_column, select, tuple_
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from cloud.changes.models import Change, FeedEpoch, FeedHorizon
from cloud.db import Database
from sync.contract import FEEDS

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


def current_epoch(session: Session) -> FeedEpoch | None:
    return session.execute(
        select(FeedEpoch).order_by(FeedEpoch.seq.desc()).limit(1)
    ).scalar_one_or_none()


def stale_reason(session: Session, epoch: FeedEpoch) -> str | None:
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
    epoch = current_epoch(session)
    if epoch is None:
        _start_epoch(session, 1, "the first change", now)
    else:
        reason = stale_reason(session, epoch)
        if reason is None:
            return epoch
        _start_epoch(session, epoch.seq + 1, reason, now)
    current = current_epoch(session)
    assert current is not None
    return current


def ensure_epoch(db: Database, *, now: datetime) -> tuple[int, str | None]:
    """Start a new epoch if the database was restored; ``(current seq, reason if started)``.
    Run at start (``aisle cloud serve`` and ``migrate``) and by a pull that finds it stale."""
    with db.write() as uow:
        before = current_epoch(uow.session)
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


# --- the horizon -------------------------------------------------------------------------------


def running_horizon(session: Session) -> int | None:
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


def pruned_horizon(session: Session, feed: str, epoch: FeedEpoch) -> tuple[int, int]:
    row = session.get(FeedHorizon, feed)
    if row is None or row.epoch != epoch.seq:
        return (0, 0)
    return (row.xid, row.change_id)


def servable(query: Any, epoch: FeedEpoch, xmin: int | None) -> Any:
    query = query.where(Change.epoch == epoch.seq)
    return query if xmin is None else query.where(Change.xid < xmin)


# --- pruning ------------------------------------------------------------------------------------


def prune_changes(session: Session, *, older_than: datetime, now: datetime) -> dict[str, int]:
    """Drop change rows older than ``older_than`` (finished transactions only) and move each
    feed's horizon; returns how many rows each feed lost. Cursors before a horizon get a
    snapshot. Rows of earlier epochs are never served again: they all go."""
    epoch = _writing_epoch(session, now)
    xmin = running_horizon(session)
    pruned: dict[str, int] = {}
    for feed in FEEDS:
        old = session.execute(delete(Change).where(Change.feed == feed, Change.epoch < epoch.seq))
        count = int(getattr(old, "rowcount", 0) or 0)
        last = session.execute(
            servable(
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
