"""Applying a store's push: exactly once, in sequence order, in one transaction.

For one batch, in one transaction:

1. Lock the store's sync state (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are
   serialised anyway), so two pushes of one store never interleave.
2. Events at or below the high-water seq were applied before: they are skipped, but only if
   the cloud recorded that very event id under that seq. Another id under an applied seq means
   the store's database was restored from an old backup (or replaced): the push is refused
   with 409 ``sequence_diverged``, the divergence is recorded and the store's stream is frozen
   until someone looks. Nothing is merged.
3. New events are taken while they continue the sequence (``high-water + 1``, ``+ 2``, ...);
   the first one after a hole stops the batch (``gap_at``) and the answer says where to resume.
4. Each event is projected (sales, returns, stock movements, ...). One that cannot be applied
   (unknown type, bad payload, a row the database refuses) is quarantined with its reason and
   the sequence moves past it: a poison event never blocks the queue. Database refusals are
   found per event inside a savepoint, after the whole batch's rows failed as one insert.
5. The events are recorded; an event id the store already sent under another seq is refused
   by the unique index, and that too is a divergence.
6. The applied events, the quarantine rows and the new high-water seq commit together.

Every statement of a batch reads about the batch's rows, never the store's history: a store
with two million events costs what a new one does. Earlier events are read by a range of seqs
(the primary key), clashes are left to the unique index to find, and no statement filters a
list of ids or seqs, whose plan without table statistics (autovacuum off, a restore,
``pg_upgrade``) or once prepared (psycopg's generic plan) reads every event of the store.
``cloud/ingest/plan_guard.py`` counts what each statement reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from cloud.coupons.service import apply_all as apply_coupon_effects
from cloud.db import Database, id_key, insert_rows, table_of
from cloud.errors import Conflict, Forbidden, NotFound, Unauthorized
from cloud.ingest.models import AppliedEvent, Divergence, Quarantined, StoreSyncState
from cloud.ingest.projections import PoisonEvent, Rows, project
from cloud.members.effects import MemberRules
from cloud.members.effects import apply_all as apply_member_effects
from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from cloud.stores.service import on_enrolled, store_row, store_rows
from shared.errors import ApiError
from shared.faults import fault_point
from sync.protocol import (
    ERR_DIVERGED,
    ERR_STORE_MISMATCH,
    ERR_UNKNOWN_STORE,
    Batch,
    PushResult,
    QuarantineNotice,
    WireEvent,
    canonical_json,
)

#: Insert order: parents before children.
TABLE_ORDER = (Sale, SaleLine, Return, StockMovement, ExitPassUse)
MAX_REASON_CHARS = 500
#: Failures that are the database's, not an event's: they propagate (503), never quarantine.
CONNECTION_ERRORS = (OperationalError, InterfaceError)


class _Diverged(Exception):
    def __init__(self, seq: int, applied_event_id: str | None, offered_event_id: str) -> None:
        super().__init__(seq)
        self.seq = seq
        self.applied_event_id = applied_event_id
        self.offered_event_id = offered_event_id


def _diverged_error(store_id: str, row: Divergence, acked_seq: int) -> Conflict:
    return Conflict(
        f"store {store_id} sent event {row.offered_event_id} as seq {row.seq}, but the cloud "
        f"applied {row.applied_event_id} under that seq: the store's database looks restored "
        "from an old backup, or replaced. Its events are not merged: run `aisle edge recover` "
        "at the store, and HQ approves the recovery (`aisle cloud approve-recovery`).",
        code=ERR_DIVERGED,
        details={
            "seq": row.seq,
            "applied_event_id": row.applied_event_id,
            "offered_event_id": row.offered_event_id,
            "detected_at": row.detected_at.isoformat(),
            "acked_seq": acked_seq,
        },
    )


def push(
    db: Database,
    *,
    store_id: str,
    batch: Batch,
    now: datetime,
    header_skew_s: float = 0.0,
    members: MemberRules | None = None,
) -> PushResult:
    """Apply ``batch`` from the authenticated ``store_id``; see the module docstring.
    ``members``: how member events are applied (a cloud without it quarantines them)."""
    if batch.store_id != store_id:
        raise Forbidden(
            f"the batch names store {batch.store_id!r} but is signed by {store_id!r}",
            code=ERR_STORE_MISMATCH,
            details={"signed_by": store_id, "batch_store_id": batch.store_id},
        )
    try:
        with db.write() as uow:
            # The store's own clock as it reported it; older stores only have the signature's.
            skew = header_skew_s if batch.edge_clock is None else batch.edge_clock - now.timestamp()
            result = _apply_batch(uow.session, store_id, batch.events, now, round(skew, 3), members)
            fault_point("cloud.push.before_commit")
            uow.commit()
        fault_point("cloud.push.after_commit")  # applied and committed, answer not yet sent
        return result
    except _Diverged as diverged:
        row, acked = _record_divergence(db, store_id, diverged, now)
        raise _diverged_error(store_id, row, acked) from None


def open_sync_state(session: Session, store_id: str) -> StoreSyncState:
    """The store's sync state, opened at zero if it has none yet (at enrollment: registered
    below with :func:`cloud.stores.service.on_enrolled`), in the caller's transaction."""
    state = session.get(StoreSyncState, store_id)
    if state is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(StoreSyncState)
            .values(store_id=store_id, high_water_seq=0, events_applied=0, quarantined=0)
            .on_conflict_do_nothing()
        )
        state = session.get(StoreSyncState, store_id)
        assert state is not None
    return state


on_enrolled(open_sync_state)


def _lock_state(session: Session, store_id: str) -> StoreSyncState:
    state = session.execute(
        select(StoreSyncState).where(StoreSyncState.store_id == store_id).with_for_update()
    ).scalar_one_or_none()
    if state is None:
        store = store_row(session, store_id)
        if store is None or store.enrolled_at is None:
            raise Unauthorized(f"store {store_id} is not enrolled", code=ERR_UNKNOWN_STORE)
        open_sync_state(session, store_id)
        return _lock_state(session, store_id)
    return state


def _apply_batch(
    session: Session,
    store_id: str,
    events: Sequence[WireEvent],
    now: datetime,
    clock_skew_s: float,
    members: MemberRules | None = None,
) -> PushResult:
    state = _lock_state(session, store_id)
    state.clock_skew_s = clock_skew_s
    if state.diverged_at is not None:
        first = (
            session.execute(
                select(Divergence).where(Divergence.store_id == store_id).order_by(Divergence.id)
            )
            .scalars()
            .first()
        )
        assert first is not None
        raise _diverged_error(store_id, first, state.high_water_seq)
    high = state.high_water_seq
    old = [e for e in events if e.seq <= high]
    if old:
        _check_resent(session, store_id, old)
    take: list[WireEvent] = []
    gap_at = None
    for event in (e for e in events if e.seq > high):
        if event.seq != high + len(take) + 1:
            gap_at = event.seq
            break
        take.append(event)
    quarantined: list[QuarantineNotice] = []
    if take:
        quarantined = _apply_events(session, store_id, take, now, members)
        state.high_water_seq = take[-1].seq
        state.events_applied += len(take) - len(quarantined)
        state.quarantined += len(quarantined)
    state.last_push_at = now
    acked = state.high_water_seq
    return PushResult(
        acked_seq=acked,
        resume_from=acked + 1,
        applied=len(take) - len(quarantined),
        duplicates=len(old),
        quarantined=tuple(quarantined),
        gap_at=gap_at,
        server_time=now.isoformat(),
        clock_skew_s=state.clock_skew_s or 0.0,
    )


def _runs(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """Ascending ``seqs`` as (first, last) runs of consecutive numbers: one in a store's batch."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def _check_resent(session: Session, store_id: str, old: Sequence[WireEvent]) -> None:
    """Events at or below the high-water seq must be the very events recorded under their
    seqs. They are read by ranges of seqs on the primary key, so the statement reads the
    batch's rows whatever the plan; a batch with holes reads one range per run."""
    recorded: dict[int, str] = {}
    for first, last in _runs([e.seq for e in old]):
        rows = session.execute(
            select(AppliedEvent.seq, AppliedEvent.event_id).where(
                AppliedEvent.store_id == store_id, AppliedEvent.seq.between(first, last)
            )
        )
        recorded.update((seq, event_id) for seq, event_id in rows)
    for event in old:
        if recorded.get(event.seq) != id_key(event.id):
            raise _Diverged(event.seq, recorded.get(event.seq), event.id)


def _insert_rows(session: Session, by_table: dict[Any, list[dict[str, Any]]]) -> None:
    for table in TABLE_ORDER:
        rows = by_table.get(table)
        if rows:
            insert_rows(session, table_of(table), rows)


def _db_reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return f"the database refused it: {text}"


def _apply_events(
    session: Session,
    store_id: str,
    events: list[WireEvent],
    now: datetime,
    members: MemberRules | None = None,
) -> list[QuarantineNotice]:
    poisoned: dict[int, str] = {}
    projected: list[tuple[WireEvent, Rows]] = []
    for event in events:
        try:
            rows = project(event, store_id, now)
            if rows.effects and members is None:
                raise PoisonEvent("this cloud applies no member events (no member rules)")
            projected.append((event, rows))
        except PoisonEvent as exc:
            poisoned[event.seq] = str(exc)
        except Exception as exc:
            poisoned[event.seq] = f"could not be read: {type(exc).__name__}: {exc}"
    merged = Rows()
    for _, rows in projected:
        merged.extend(rows)
    try:
        with session.begin_nested():
            _insert_rows(session, merged.by_table)
            _apply_effects(session, merged, members, now)
    except CONNECTION_ERRORS:
        raise  # the database is away: nothing is the events' fault; the push answers 503
    except Exception:
        # Some row is refused (a sale id seen before, a number out of range, a value the
        # driver cannot send) or a member move is (an unknown member): find which events, one
        # savepoint each, and quarantine just them.
        for event, rows in projected:
            try:
                with session.begin_nested():
                    _insert_rows(session, rows.by_table)
                    _apply_effects(session, rows, members, now)
            except CONNECTION_ERRORS:
                raise
            except ApiError as exc:
                poisoned[event.seq] = f"{exc.code}: {exc.message}"
            except Exception as exc:
                poisoned[event.seq] = _db_reason(exc)
    _record_events(session, store_id, events, poisoned, now)
    out = []
    if poisoned:
        rows_q = []
        for event in events:
            reason = poisoned.get(event.seq)
            if reason is None:
                continue
            reason = reason[:MAX_REASON_CHARS]
            rows_q.append(
                {
                    "store_id": store_id,
                    "seq": event.seq,
                    "event_id": event.id,
                    "type": event.type[:64],
                    "reason": reason,
                    "event": canonical_json(event.to_dict()).decode(),
                    "created_at": now,
                }
            )
            out.append(QuarantineNotice(event.seq, event.id, event.type, reason))
        session.execute(insert(Quarantined), rows_q)
    return out


def _apply_effects(
    session: Session, rows: Rows, members: MemberRules | None, now: datetime
) -> None:
    """The member and points moves of ``rows``' events, in event order (then the tiers of the
    members they moved)."""
    if rows.effects:
        assert members is not None  # refused when projected
        apply_member_effects(session, rows.effects, members, now=now)
        session.flush()
    if rows.coupons:
        apply_coupon_effects(session, rows.coupons, now=now)


def _insert_or_skip(session: Session, model: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table_of(model)).on_conflict_do_nothing()
    return sqlite.insert(table_of(model)).on_conflict_do_nothing()


def _record_events(
    session: Session,
    store_id: str,
    events: Sequence[WireEvent],
    poisoned: dict[int, str],
    now: datetime,
) -> None:
    """Record the batch's events, applied or quarantined. The unique index on (store, event
    id) is the check that the store never sends an event again under a new seq: a row it
    refuses is left out of what the insert returns, and that event is a divergence."""
    rows = [
        {
            "store_id": store_id,
            "seq": e.seq,
            "event_id": e.id,
            "type": e.type[:64],
            "status": "quarantined" if e.seq in poisoned else "applied",
            "received_at": now,
        }
        for e in events
    ]
    statement = _insert_or_skip(session, AppliedEvent).returning(AppliedEvent.seq)
    recorded = set(session.execute(statement, rows).scalars())
    refused = next((e for e in events if e.seq not in recorded), None)
    if refused is not None:
        raise _Diverged(refused.seq, None, refused.id)


def _record_divergence(
    db: Database, store_id: str, diverged: _Diverged, now: datetime
) -> tuple[Divergence, int]:
    with db.write() as uow:
        session = uow.session
        state = _lock_state(session, store_id)
        row = Divergence(
            store_id=store_id,
            seq=diverged.seq,
            applied_event_id=diverged.applied_event_id,
            offered_event_id=diverged.offered_event_id,
            detected_at=now,
        )
        session.add(row)
        if state.diverged_at is None:
            state.diverged_at = now
        session.flush()
        uow.commit()
        return row, state.high_water_seq


# --- reading ------------------------------------------------------------------------------------


def _sync_state(session: Session, store_id: str) -> dict[str, Any]:
    """Where a store's stream stands, for HQ."""
    state = session.get(StoreSyncState, store_id)
    if state is None:
        raise NotFound(f"no enrolled store {store_id!r}", code="unknown_store")
    return _state_dict(state)


def _state_dict(state: StoreSyncState) -> dict[str, Any]:
    return {
        "store_id": state.store_id,
        "high_water_seq": state.high_water_seq,
        "events_applied": state.events_applied,
        "quarantined": state.quarantined,
        "last_seen_at": _iso(state.last_seen_at),
        "last_push_at": _iso(state.last_push_at),
        "clock_skew_s": state.clock_skew_s,
        "protocol_version": state.protocol_version,
        "diverged": state.diverged_at is not None,
        "diverged_at": _iso(state.diverged_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _quarantine_list(
    session: Session, *, store_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Quarantined events, newest first, with their reasons and the events as they came."""
    query = select(Quarantined).order_by(Quarantined.id.desc()).limit(limit)
    if store_id is not None:
        query = query.where(Quarantined.store_id == store_id)
    return [
        {
            "store_id": q.store_id,
            "seq": q.seq,
            "event_id": q.event_id,
            "type": q.type,
            "reason": q.reason,
            "created_at": q.created_at.isoformat(),
            "event": json.loads(q.event),
        }
        for q in session.execute(query).scalars()
    ]


def quarantine_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Quarantined)).scalar_one())


def stores_with_sync(db: Database) -> list[dict[str, Any]]:
    """Every store with its enrollment and sync position and state (what
    ``GET /stores/{id}/sync-state`` says of it; None until its first signed call), for HQ: one
    read for the whole chain."""
    with db.read() as session:
        states = {s.store_id: s for s in session.execute(select(StoreSyncState)).scalars()}
        out = []
        for store in store_rows(session):
            state = states.get(store["id"])
            out.append(
                {
                    **store,
                    "high_water_seq": state.high_water_seq if state else 0,
                    "last_seen_at": _iso(state.last_seen_at) if state else None,
                    "sync": _state_dict(state) if state else None,
                }
            )
        return out


def sync_state(db: Database, store_id: str) -> dict[str, Any]:
    """A store's sync state as HQ reads it."""
    with db.read() as session:
        return _sync_state(session, store_id)


def quarantine_list(
    db: Database, *, store_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Quarantined events, newest first (of one store, or of all)."""
    with db.read() as session:
        return _quarantine_list(session, store_id=store_id, limit=limit)
