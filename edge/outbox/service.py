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

from edge.counters import next_value
from edge.db import Tx, execute, from_sql_time, to_sql_time
from edge.outbox.models import OutboxEvent
from shared.ids import new_id
from sync.contract import Event
from sync.protocol import canonical_json

_INSERT_EVENT = (
    "INSERT INTO outbox (seq, id, type, aggregate_id, payload, created_at, pushed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, NULL)"
)


def record_event(tx: Tx, event: Event, *, now: datetime) -> int:
    """Append ``event`` to the outbox in the caller's transaction; returns its sequence number."""
    return append_event(
        tx, type=event.TYPE, aggregate_id=event.aggregate_id, payload=event.to_dict(), now=now
    )


def append_event(
    tx: Tx,
    *,
    type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """Append a payload as it is: :func:`record_event` for the events of ``sync.contract``;
    this for a payload that is not one of them (a test's poison event)."""
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
