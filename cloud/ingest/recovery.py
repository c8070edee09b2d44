"""Moving a restored or replaced store onto a new stream, once HQ approves.

A store whose database went back in time asks to recover, saying how far it agrees with what the
cloud holds from it (``agreed_seq``). The cloud records the request with what it holds past that
point, which the store no longer has (sales the store made after its backup, say): these are
kept, never merged into anything, and reported to HQ and to the store. HQ approves; the approval
fixes ``base_seq``, the last seq of the old stream, and unfreezes the store's stream. The store
then numbers its own events after ``agreed_seq`` from ``base_seq + 1`` and pushes them as new:
the cloud never holds an event twice (events it has are recognised by their ids), and never
confuses two events under one number.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.db import Database
from cloud.errors import Conflict, NotFound, Unprocessable
from cloud.ingest.models import AppliedEvent, StoreRecovery, StoreSyncState
from cloud.sales.models import Sale
from shared.ids import new_id
from shared.text import unsafe_character
from sync.protocol import (
    ERR_NO_RECOVERY,
    RECOVERY_APPROVED,
    RECOVERY_PENDING,
    CloudOnlySale,
    HeldEventsPage,
    Recovery,
    RecoveryRequest,
)

LISTED_SALES = 100


def held_events(db: Database, store_id: str, *, after: int, limit: int) -> HeldEventsPage:
    """The cloud's record of ``store_id``'s events after seq ``after`` (a range of its primary
    key: the rows read are the rows returned)."""
    with db.read() as session:
        state = session.get(StoreSyncState, store_id)
        high = state.high_water_seq if state else 0
        rows = session.execute(
            select(AppliedEvent.seq, AppliedEvent.event_id)
            .where(AppliedEvent.store_id == store_id, AppliedEvent.seq > after)
            .order_by(AppliedEvent.seq)
            .limit(limit + 1)
        ).all()
    return HeldEventsPage(
        events=tuple((int(seq), str(event_id)) for seq, event_id in rows[:limit]),
        high_water_seq=high,
        has_more=len(rows) > limit,
    )


def _report(session: Session, store_id: str, after: int, upto: int) -> dict[str, Any]:
    """What the cloud holds from the store in ``(after, upto]``."""
    in_range = (Sale.store_id == store_id, Sale.seq > after, Sale.seq <= upto)
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(Sale.total), 0)).where(*in_range)
    ).one()
    listed = session.execute(
        select(Sale.id, Sale.number, Sale.total, Sale.created_at)
        .where(*in_range)
        .order_by(Sale.seq)
        .limit(LISTED_SALES)
    ).all()
    highest = session.execute(
        select(Sale.number).where(Sale.store_id == store_id).order_by(Sale.seq.desc()).limit(1)
    ).scalar_one_or_none()
    return {
        "cloud_only_events": max(0, upto - after),
        "cloud_only_sales_count": int(count),
        "cloud_only_sales_total": int(total),
        "cloud_only_sales": [
            CloudOnlySale(str(i), n, int(t), c.isoformat()).to_dict() for i, n, t, c in listed
        ],
        "highest_sale_number": highest,
    }


def _as_recovery(row: StoreRecovery, high_water: int) -> Recovery:
    """The recovery as the wire carries it: the stored report, with the row's own fields."""
    return Recovery.from_dict(
        {
            **json.loads(row.report),
            "id": row.id,
            "store_id": row.store_id,
            "status": row.status,
            "stream": row.stream,
            "agreed_seq": row.agreed_seq,
            "outbox_last_seq": row.outbox_last_seq,
            "cloud_high_water_seq": high_water,
            "base_seq": row.base_seq,
            "requested_at": row.requested_at.isoformat(),
            "approved_at": row.approved_at.isoformat() if row.approved_at else None,
            "approved_by": row.approved_by,
        }
    )


def _latest(session: Session, store_id: str) -> StoreRecovery | None:
    return session.execute(
        select(StoreRecovery)
        .where(StoreRecovery.store_id == store_id)
        .order_by(StoreRecovery.stream.desc())
        .limit(1)
    ).scalar_one_or_none()


def request_recovery(
    db: Database, store_id: str, request: RecoveryRequest, *, now: datetime
) -> Recovery:
    """Record (or renew) the store's request; HQ sees it with what the cloud holds past
    ``agreed_seq``."""
    with db.write() as uow:
        session = uow.session
        state = session.get(StoreSyncState, store_id, with_for_update=True)
        high = state.high_water_seq if state else 0
        if not 0 <= request.agreed_seq <= high or request.agreed_seq > request.outbox_last_seq:
            raise Unprocessable(
                f"agreed_seq must be from 0 to the cloud's last seq ({high}) and not past the "
                "store's outbox",
                details={"field": "agreed_seq", "cloud_high_water_seq": high},
            )
        row = _latest(session, store_id)
        if row is None or row.status != RECOVERY_PENDING:
            done = session.scalar(
                select(func.count())
                .select_from(StoreRecovery)
                .where(StoreRecovery.store_id == store_id)
            )
            row = StoreRecovery(
                id=new_id(),
                store_id=store_id,
                stream=int(done or 0) + 2,  # the first stream is the enrollment's
                status=RECOVERY_PENDING,
                base_seq=None,
                approved_at=None,
                approved_by=None,
            )
            session.add(row)
        row.agreed_seq = request.agreed_seq
        row.outbox_last_seq = request.outbox_last_seq
        row.report = json.dumps(_report(session, store_id, request.agreed_seq, high))
        row.requested_at = now
        session.flush()
        recovery = _as_recovery(row, high)
        uow.commit()
    return recovery


def latest_recovery(db: Database, store_id: str) -> Recovery:
    """The store's latest request and whether HQ approved it; 404 when it never asked."""
    with db.read() as session:
        row = _latest(session, store_id)
        if row is None:
            raise NotFound(f"store {store_id} has not asked to recover", code=ERR_NO_RECOVERY)
        state = session.get(StoreSyncState, store_id)
        return _as_recovery(row, state.high_water_seq if state else 0)


def list_recoveries(db: Database, *, status: str | None = None) -> list[dict[str, Any]]:
    """Recoveries of every store, newest first (HQ); ``status`` narrows to pending or approved."""
    with db.read() as session:
        query = select(StoreRecovery).order_by(StoreRecovery.requested_at.desc())
        if status is not None:
            query = query.where(StoreRecovery.status == status)
        rows = session.execute(query.limit(500)).scalars().all()
        highs = {
            s.store_id: s.high_water_seq for s in session.execute(select(StoreSyncState)).scalars()
        }
        return [_as_recovery(r, highs.get(r.store_id, 0)).to_dict() for r in rows]


def approve_recovery(db: Database, store_id: str, *, approved_by: str, now: datetime) -> Recovery:
    """HQ approves the store's pending request: its new stream starts after the cloud's last
    seq, and the stream is unfrozen so the store can push its renumbered events."""
    if not approved_by.strip() or len(approved_by) > 100 or unsafe_character(approved_by):
        raise Unprocessable(
            "approved_by must name who approves, up to 100 characters",
            details={"field": "approved_by"},
        )
    with db.write() as uow:
        session = uow.session
        state = session.get(StoreSyncState, store_id, with_for_update=True)
        row = _latest(session, store_id)
        if row is None or state is None:
            raise NotFound(f"store {store_id} has not asked to recover", code=ERR_NO_RECOVERY)
        if row.status != RECOVERY_PENDING:
            raise Conflict(
                f"store {store_id}'s latest recovery was already approved",
                code="recovery_approved",
                details={
                    "id": row.id,
                    "approved_at": row.approved_at.isoformat() if row.approved_at else None,
                },
            )
        # What the cloud holds now past the agreed point (the store has not pushed since it
        # asked: its stream is halted), reported with the approval.
        row.report = json.dumps(_report(session, store_id, row.agreed_seq, state.high_water_seq))
        row.base_seq = state.high_water_seq
        row.status = RECOVERY_APPROVED
        row.approved_at = now
        row.approved_by = approved_by.strip()
        state.diverged_at = None
        session.flush()
        recovery = _as_recovery(row, state.high_water_seq)
        uow.commit()
    return recovery
