"""Writing events for the cloud and reading the queue's state.

Events are written by the use case that makes the change, inside its transaction, so a change
and its event commit or vanish together. Sequence numbers come from a counter row bumped in that
same transaction; since every write transaction holds the store's write lock and SQLite's from
its first statement (``BEGIN IMMEDIATE``), numbers are handed out one writer at a time and a
rolled-back transaction takes its number with it: the sequence has no gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.db import RawTransaction, from_sql_time, to_sql_time
from edge.outbox.models import OutboxEvent
from sync.ids import new_id
from sync.protocol import canonical_json

_BUMP = (
    "INSERT INTO counters (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)
_INSERT_EVENT = (
    "INSERT INTO outbox (seq, id, type, aggregate_id, payload, created_at, pushed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, NULL)"
)

#: A write transaction of either kind: an ORM unit of work's session or a bare cursor.
Tx = Session | RawTransaction


def execute(tx: Tx, sql: str, params: tuple[Any, ...]) -> Any:
    """Run plain SQL in ``tx``; returns the first row, if the statement returns any."""
    if isinstance(tx, RawTransaction):
        return tx.one(sql, params)
    result = tx.connection().exec_driver_sql(sql, params)
    return result.first() if result.returns_rows else None


def next_value(tx: Tx, name: str) -> int:
    """The next value of counter ``name`` (1, 2, 3, ...), inside the caller's transaction."""
    return int(execute(tx, _BUMP, (name,))[0])


def record_event(
    tx: Tx,
    *,
    type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """Append an event to the outbox in the caller's transaction; returns its sequence number."""
    seq = next_value(tx, "outbox")
    execute(
        tx,
        _INSERT_EVENT,
        (seq, new_id(), type, aggregate_id, canonical_json(payload).decode(), to_sql_time(now)),
    )
    return seq


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    oldest_pending_at: datetime | None
    last_seq: int


def outbox_status(session: Session) -> OutboxStatus:
    """How many events wait for the cloud, and since when."""
    pending, oldest = session.execute(
        select(func.count(), func.min(OutboxEvent.created_at)).where(
            OutboxEvent.pushed_at.is_(None)
        )
    ).one()
    last = session.execute(select(func.max(OutboxEvent.seq))).scalar_one()
    oldest_at = from_sql_time(oldest) if isinstance(oldest, str) else oldest
    if oldest_at is not None and oldest_at.tzinfo is None:
        oldest_at = OutboxEvent.created_at.type.process_result_value(oldest_at, None)
    return OutboxStatus(pending=int(pending), oldest_pending_at=oldest_at, last_seq=int(last or 0))
