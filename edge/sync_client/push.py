"""Pushing the outbox: batches oldest first, marked sent only on the cloud's signed word."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import update

from edge.db import Database
from edge.outbox.models import Counter, OutboxEvent
from edge.sync_client.link import Link
from edge.sync_client.models import QuarantinedEvent
from edge.sync_client.state import mark_healthy, sync_state
from edge.sync_client.transport import CloudClient, CloudRefused
from shared.faults import fault_point
from shared.ids import new_id
from sync.contract import EVENT_REFUSED, EventRefused
from sync.protocol import (
    ERR_BAD_BATCH,
    ERR_BATCH_TOO_LARGE,
    ERR_DIVERGED,
    ProtocolError,
    PushResult,
    StoredEvent,
    canonical_json,
    encode_stored_batch,
)

#: Refusals that stop pushing until a person acts (re-enrol, upgrade, investigate a restore).
# --- push -----------------------------------------------------------------------------------


@dataclass
class PushReport:
    batches: int = 0
    sent: int = 0
    acked_seq: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    rewound_to: int | None = None


@dataclass(frozen=True, slots=True)
class _Batch:
    """A push batch ready to send: its body and the sequence numbers it carries."""

    body: bytes
    first_seq: int
    last_seq: int
    count: int
    stand_in: bool = False  # one refused event, sent as EVENT_REFUSED under its seq and id


def _stand_in(link: Link, event: StoredEvent, reason: str, now: datetime) -> _Batch:
    """A batch of one: the event's place in the sequence, carrying why it cannot be sent.

    The cloud quarantines it with that reason and the queue moves on; the event itself stays in
    this store's outbox, and the quarantine shows on both sides.
    """
    stand_in = replace(
        event,
        type=EVENT_REFUSED,
        payload_json=canonical_json(
            EventRefused(
                refused_type=event.type,
                reason=reason[:300],
                payload_bytes=len(event.payload_json.encode()),
            ).to_dict()
        ).decode(),
    )
    body = encode_stored_batch(
        link.store_id,
        [stand_in],
        batch_id=new_id(),
        max_bytes=link.max_batch_bytes,
        edge_clock=now.timestamp(),
    )
    return _Batch(body, event.seq, event.seq, 1, stand_in=True)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        id=row["id"],
        type=row["type"],
        aggregate_id=row["aggregate_id"],
        payload_json=row["payload"],  # stored canonical: sent as it is, not re-encoded
        # Stored as naive UTC "YYYY-MM-DD HH:MM:SS.ffffff"; sent as ISO 8601 with offset.
        created_at=row["created_at"].replace(" ", "T") + "+00:00",
    )


def _prepare(db: Database, link: Link, after_seq: int, limit: int, now: datetime) -> _Batch | None:
    """The oldest events after ``after_seq``, as one batch within the cloud's bounds; an event
    too large to send even alone goes as its stand-in (:func:`_stand_in`)."""
    with db.raw_read() as tx:
        rows = tx.all(
            "SELECT seq, id, type, aggregate_id, payload, created_at FROM outbox "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
    if not rows:
        return None
    events = [_stored(row) for row in rows]
    count = len(events)
    while True:
        try:
            body = encode_stored_batch(
                link.store_id,
                events[:count],
                batch_id=new_id(),
                max_bytes=link.max_batch_bytes,
                edge_clock=now.timestamp(),  # this store's own clock, for the skew report
            )
            return _Batch(body, events[0].seq, events[count - 1].seq, count)
        except ProtocolError as exc:
            if count == 1:
                return _stand_in(link, events[0], exc.message, now)
            count = max(1, count // 2)


def _take_answer(db: Database, batch: _Batch, result: PushResult, now: datetime) -> int:
    """Record what the cloud says it holds, in one transaction; returns its mark.

    Committed without an fsync of its own (``durable=False``): if a power cut loses the mark,
    the store sends those events again and the cloud answers from what it already applied.
    The next sale's commit makes it durable anyway.
    """
    with db.write(durable=False) as uow:
        session = uow.session
        state = sync_state(session)
        if result.acked_seq < state.acked_seq:
            # The cloud holds less than it once acknowledged: it was restored from a backup.
            # Send again from its mark; it applies each event once whatever we resend.
            session.execute(
                update(OutboxEvent).where(OutboxEvent.seq > result.acked_seq).values(pushed_at=None)
            )
            state.last_error = (
                f"the cloud's mark went back from {state.acked_seq} to {result.acked_seq}; "
                "resending from there"
            )
            state.last_error_code = "cloud_behind"
            state.last_error_at = now
        mark = result.acked_seq
        if mark > batch.last_seq and mark > state.acked_seq:
            # The cloud holds more than this batch. If this store holds those events too, it
            # sent them before and lost the acknowledgement (a power cut took the unsynced
            # mark, or the answer never came): the cloud has just checked this batch's events
            # against what it holds, so mark this batch and send the rest again to be checked
            # the same way. If the outbox ends before the cloud's mark, the store's database
            # is older than what it once sent: restored from a backup. Stop and tell.
            # The outbox counter, not the outbox's rows: acknowledged rows may have been pruned.
            counter = session.get(Counter, "outbox")
            last = counter.value if counter is not None else 0
            if mark > last:
                state.halted_code = ERR_DIVERGED
                state.last_error = (
                    f"the cloud holds events up to seq {mark} but this store's outbox ends at "
                    f"{last}: the store's database looks restored from a backup, or replaced; "
                    "run `aisle edge recover`"
                )
                state.last_error_code = ERR_DIVERGED
                state.last_error_at = now
                uow.commit()
                raise CloudRefused(state.last_error, code=ERR_DIVERGED)
            mark = batch.last_seq
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.seq <= mark, OutboxEvent.pushed_at.is_(None))
            .values(pushed_at=now)
        )
        fault_point("edge.push.mid_ack")
        for q in result.quarantined:
            session.merge(
                QuarantinedEvent(
                    seq=q.seq, event_id=q.event_id, type=q.type, reason=q.reason, reported_at=now
                )
            )
        state.acked_seq = mark
        state.last_push_at = now
        state.clock_skew_s = result.clock_skew_s
        mark_healthy(state, now, pushed=True)
        uow.commit()
    return mark


def drain(
    db: Database,
    client: CloudClient,
    link: Link,
    *,
    batch_events: int,
    now_fn: Any,
    max_batches: int = 1_000_000,
    pause_s: float = 0.0,
) -> PushReport:
    """Push batch after batch, oldest first, until the outbox is empty (or ``max_batches``).

    The next batch is read and compressed while the current one is on its way (the cloud's
    answer is most of a batch's time), on the assumption that the cloud takes the current one
    whole; when it does not (a gap, a cloud restored from a backup) the prepared batch is
    dropped and the next starts from the cloud's mark. ``pause_s`` between batches leaves the
    store's CPU to the devices while a long backlog drains. Raises :class:`CloudLinkError` when the
    cloud gives no usable answer or refuses; what was acknowledged until then stays recorded.
    """
    report = PushReport()
    full = max(1, min(batch_events, link.max_batch_events))
    limit = full
    with db.read() as session:
        acked = sync_state(session).acked_seq
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-prepare") as pool:
        upcoming = pool.submit(_prepare, db, link, acked, limit, now_fn())
        while report.batches < max_batches:
            batch = upcoming.result()
            if batch is None:
                break
            upcoming = pool.submit(_prepare, db, link, batch.last_seq, limit, now_fn())
            try:
                result = client.push(batch.body, now=now_fn())
            except CloudRefused as exc:
                if exc.code not in WHOLE_BATCH_REFUSALS or batch.stand_in:
                    raise
                # Refused whole (too large, unreadable): never send it unchanged again. Halve
                # it until the culprit is alone, then send that one's stand-in.
                upcoming.result()
                if batch.count > 1:
                    limit = max(1, batch.count // 2)
                    upcoming = pool.submit(_prepare, db, link, batch.first_seq - 1, limit, now_fn())
                else:
                    upcoming = pool.submit(_refused_alone, db, link, batch.first_seq, exc, now_fn())
                continue
            fault_point("edge.push.after_answer")
            acked = _take_answer(db, batch, result, now_fn())
            report.batches += 1
            report.sent += batch.count
            report.quarantined.extend(q.to_dict() for q in result.quarantined)
            if pause_s:
                time.sleep(pause_s)  # selling comes first: leave the store's CPU some room
            if acked != batch.last_seq or limit != full:
                upcoming.result()  # prepared from the wrong place: start again from the mark
                if acked != batch.last_seq:
                    report.rewound_to = acked
                limit = full
                upcoming = pool.submit(_prepare, db, link, acked, limit, now_fn())
    report.acked_seq = acked
    return report


#: Answers that refuse a batch as a whole, for something in it rather than for the store.
WHOLE_BATCH_REFUSALS = frozenset({ERR_BAD_BATCH, ERR_BATCH_TOO_LARGE})


def _refused_alone(
    db: Database, link: Link, seq: int, refusal: CloudRefused, now: datetime
) -> _Batch | None:
    """The stand-in of the event at ``seq``, which the cloud refused even on its own."""
    with db.raw_read() as tx:
        row = tx.one(
            "SELECT seq, id, type, aggregate_id, payload, created_at FROM outbox WHERE seq = ?",
            (seq,),
        )
    if row is None:
        return None
    reason = f"the cloud refused it: {refusal.code}: {refusal.message}"
    return _stand_in(link, _stored(row), reason, now)
