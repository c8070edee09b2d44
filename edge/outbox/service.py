"""Writing events for the cloud and reading the queue's state.

Events are written by the use case that makes the change, inside its transaction, so a change
and its event commit or vanish together. Sequence numbers come from a counter row bumped in that
same transaction; since every write transaction holds SQLite's write lock from its first
statement (``BEGIN IMMEDIATE``), numbers are handed out one writer at a time and a rolled-back
transaction takes its number with it: the sequence has no gaps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from edge.outbox.models import OutboxEvent
from sync.ids import new_id

_BUMP = text(
    "INSERT INTO counters (name, value) VALUES (:name, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)


def next_value(session: Session, name: str) -> int:
    """The next value of counter ``name`` (1, 2, 3, ...), inside the caller's transaction."""
    return int(session.execute(_BUMP, {"name": name}).scalar_one())


def canonical_json(payload: Any) -> str:
    """JSON with sorted keys and no spaces: the same payload always gives the same bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_event(
    session: Session,
    *,
    type: str,
    aggregate_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> OutboxEvent:
    """Append an event to the outbox in the caller's transaction and return it."""
    seq = next_value(session, "outbox")
    event = OutboxEvent(
        seq=seq,
        id=new_id(),
        type=type,
        aggregate_id=aggregate_id,
        payload=canonical_json(payload),
        created_at=now,
        pushed_at=None,
    )
    session.add(event)
    return event


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
    oldest_at = None
    if oldest is not None:
        oldest_at = OutboxEvent.created_at.type.process_result_value(oldest, None)
    return OutboxStatus(pending=int(pending), oldest_pending_at=oldest_at, last_seq=int(last or 0))
