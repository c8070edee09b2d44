"""The store's sync health: one row shared by every process, backoff, and the status view."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.db import Database
from edge.maintenance import storage
from edge.outbox.service import outbox_status
from edge.sync_client.models import (
    CloudLink,
    FeedCursor,
    QuarantinedEvent,
    SyncRecovery,
    SyncState,
)
from edge.sync_client.transport import CloudLinkError, CloudRefused
from sync.protocol import ERR_DIVERGED

#: The longest a cloud's ``Retry-After`` is obeyed: a cloud asking for a day is answered in ten
#: minutes (a store must not go quiet for a day on one answer).
MAX_RETRY_AFTER_S = 600.0

#: Refusals that stop pushing until a person acts (re-enrol, upgrade, investigate a restore).
HALTING_CODES = frozenset(
    {ERR_DIVERGED, "store_revoked", "unsupported_protocol_version", "unknown_store"}
)


def sync_state(session: Session) -> SyncState:
    """The one sync-state row, created on first use."""
    state = session.get(SyncState, 1)
    if state is None:
        state = SyncState(id=1, acked_seq=0, consecutive_failures=0)
        session.add(state)
        session.flush()
    return state


def halted(db: Database) -> str | None:
    """Why pushing is stopped until a person acts, if it is."""
    with db.read() as session:
        state = session.get(SyncState, 1)
        return state.halted_code if state else None


# --- health ---------------------------------------------------------------------------------


def mark_healthy(state: SyncState, now: datetime, *, pushed: bool) -> None:
    """A good exchange with the cloud: clear failures, backoff and a halt. A divergence (the
    store's database went back in time) is cleared only by a push the cloud took, which happens
    once the store has recovered onto a new stream; a pull does not clear it."""
    state.last_contact_at = now
    state.consecutive_failures = 0
    state.next_attempt_at = None
    state.next_attempt_mono = None
    if pushed or state.halted_code != ERR_DIVERGED:
        state.halted_code = None


def backoff_s(failures: int, *, initial: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` failures in a row: exponential, capped, "full jitter"
    between half and all of it, so a fleet of stores does not return in lockstep."""
    ceiling = min(cap, initial * (2 ** max(0, failures - 1)))
    return ceiling * (0.5 + rng.random() / 2)


def record_failure(
    db: Database,
    error: CloudLinkError,
    *,
    now: datetime,
    initial_s: float,
    max_s: float,
    rng: random.Random,
) -> float:
    """Note a failed exchange; returns the backoff before the next attempt.

    The wait is exponential with jitter, or what the cloud asked for with ``Retry-After`` when
    that is longer (up to :data:`MAX_RETRY_AFTER_S`). Its deadline is kept on the monotonic
    clock: a wall clock that jumps (NTP correcting a store that ran days ahead) neither
    shortens nor stretches it.
    """
    with db.write() as uow:
        state = sync_state(uow.session)
        state.consecutive_failures += 1
        wait = backoff_s(state.consecutive_failures, initial=initial_s, cap=max_s, rng=rng)
        if error.retry_after_s is not None:
            wait = max(wait, min(error.retry_after_s, MAX_RETRY_AFTER_S))
        state.next_attempt_at = now + timedelta(seconds=wait)
        state.next_attempt_mono = time.monotonic() + wait
        state.last_error = error.message
        state.last_error_code = error.code
        state.last_error_at = now
        if isinstance(error, CloudRefused) and error.code in HALTING_CODES:
            state.halted_code = error.code
        uow.commit()
    return wait


def may_attempt(db: Database, now: datetime, *, max_s: float = MAX_RETRY_AFTER_S) -> bool:
    """Whether the backoff allows talking to the cloud now.

    ``now`` is the store's wall clock, kept for callers; the deadline obeyed is the monotonic
    one. A deadline further away than any backoff could set (``max_s``, or a cloud's longest
    ``Retry-After``) comes from another boot of the machine, and is not kept.
    """
    with db.read() as session:
        state = session.get(SyncState, 1)
        if state is None or state.next_attempt_mono is None:
            return True
        remaining = state.next_attempt_mono - time.monotonic()
        return remaining <= 0 or remaining > max(max_s, MAX_RETRY_AFTER_S)


def status(db: Database, now: datetime) -> dict[str, Any]:
    """The sync queue and link health, as ``GET /api/v1/sync/status`` shows them."""
    with db.read() as session:
        outbox = outbox_status(session)
        link = session.get(CloudLink, 1)
        state = session.get(SyncState, 1)
        quarantined = session.execute(
            select(QuarantinedEvent).order_by(QuarantinedEvent.seq.desc()).limit(20)
        ).scalars()
        quarantine = [
            {"seq": q.seq, "event_id": q.event_id, "type": q.type, "reason": q.reason}
            for q in quarantined
        ]
        cursors = {
            c.feed: {
                "changes_applied": c.changes_applied,
                "in_snapshot": c.in_snapshot,
                "last_snapshot_reason": c.last_snapshot_reason,
                "last_snapshot_at": c.last_snapshot_at.isoformat() if c.last_snapshot_at else None,
            }
            for c in session.execute(select(FeedCursor)).scalars()
        }
    age = None
    if outbox.oldest_pending_at is not None:
        age = max(0.0, round((now - outbox.oldest_pending_at).total_seconds(), 3))

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    online = bool(
        state
        and state.consecutive_failures == 0
        and state.last_contact_at is not None
        and state.halted_code is None
    )
    error = None
    if state and state.last_error and (state.consecutive_failures or state.halted_code):
        error = {
            "code": state.last_error_code,
            "message": state.last_error,
            "at": iso(state.last_error_at),
        }
    return {
        "online": online,
        "cloud": link.cloud_url if link else None,
        "enrolled": link is not None,
        "outbox_pending": outbox.pending,
        "outbox_last_seq": outbox.last_seq,
        "acked_seq": state.acked_seq if state else 0,
        "oldest_pending_age_s": age,
        "last_push_at": iso(state.last_push_at) if state else None,
        "last_pull_at": iso(state.last_pull_at) if state else None,
        "last_contact_at": iso(state.last_contact_at) if state else None,
        "last_error": error,
        "halted": state.halted_code if state else None,
        "consecutive_failures": state.consecutive_failures if state else 0,
        "next_attempt_at": iso(state.next_attempt_at) if state else None,
        "clock_skew_s": state.clock_skew_s if state else None,
        "quarantined": quarantine,
        "recovery": latest_recovery(db),
        "feeds": cursors,
        "storage": storage(db),
    }


def latest_recovery(db: Database) -> dict[str, Any] | None:
    """The store's latest recovery, for the sync status."""
    with db.read() as session:
        row = session.execute(
            select(SyncRecovery).order_by(SyncRecovery.requested_at.desc()).limit(1)
        ).scalar_one_or_none()
    if row is None:
        return None
    report = json.loads(row.report)
    return {
        "id": row.id,
        "status": row.status,
        "stream": row.stream,
        "agreed_seq": row.agreed_seq,
        "base_seq": row.base_seq,
        "renumbered": row.renumbered,
        "requested_at": row.requested_at.isoformat(),
        "applied_at": row.applied_at.isoformat() if row.applied_at else None,
        "cloud_only_events": report["cloud_only_events"],
        "cloud_only_sales_count": report["cloud_only_sales_count"],
        "cloud_only_sales_total": report["cloud_only_sales_total"],
        "cloud_only_sales": report["cloud_only_sales"][:20],
    }
