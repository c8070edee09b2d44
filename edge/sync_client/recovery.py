"""A store whose database went back in time moves onto a new stream, once HQ approves.

Restored from yesterday's backup (or replaced by new hardware), a store holds fewer events than
the cloud has from it, and numbers its new sales with seqs the cloud already gave to others.
The first push finds out (the cloud refuses a seq it holds with another event, or holds more
than the store's outbox has ever numbered) and the store stops pushing (``sequence_diverged``):
nothing is merged silently.

``aisle edge recover``:

1. finds how far the store and the cloud agree: it compares its outbox, seq by seq from what
   it last had acknowledged, with the cloud's record of its events (their ids);
2. asks the cloud to recover from there; the cloud records the request with what it holds that
   the store no longer has (sales made after the backup, say), which HQ sees;
3. once HQ approves, the store renumbers its events after the agreed seq to follow the cloud's
   last one (``base_seq``), in one local transaction, and pushes them as new events; its next
   receipt numbers follow the last one the cloud saw. The background sync does this step by
   itself when it finds the approval, so the store recovers without anyone at it.

What the cloud holds past the agreed seq is reported on the sync status, never lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from edge.db import Database, to_sql_time
from edge.sync_client.models import SyncRecovery
from edge.sync_client.state import sync_state
from edge.sync_client.transport import CloudClient
from sync.protocol import (
    ERR_DIVERGED,
    MAX_HELD_EVENTS_PAGE,
    RECOVERY_APPROVED,
    Recovery,
    RecoveryRequest,
)

REQUESTED = "requested"
APPLIED = "applied"


class NothingToRecover(Exception):
    """The store holds every event the cloud has from it, the same: pushing works as it is."""


@dataclass(frozen=True, slots=True)
class Agreement:
    agreed_seq: int  # the store and the cloud hold the same events up to here
    outbox_last_seq: int  # the store's last seq
    cloud_high_water_seq: int  # the cloud's last seq of this store

    @property
    def needed(self) -> bool:
        return self.agreed_seq < self.cloud_high_water_seq


def compare(db: Database, client: CloudClient, *, now: datetime) -> Agreement:
    """How far the store's outbox and the cloud's record of its events agree."""
    with db.raw_read() as tx:
        acked = int(tx.one("SELECT COALESCE(MAX(acked_seq), 0) FROM sync_state")[0])
        last = int(tx.one("SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'outbox'")[0])
    agreed = min(acked, last)
    high = 0
    while True:
        page = client.held_events(after=agreed, limit=MAX_HELD_EVENTS_PAGE, now=now)
        high = page.high_water_seq
        if not page.events:
            break
        upto = page.events[-1][0]
        with db.raw_read() as tx:
            ours = dict(
                tx.all("SELECT seq, id FROM outbox WHERE seq > ? AND seq <= ?", (agreed, upto))
            )
        for seq, event_id in page.events:
            if seq != agreed + 1 or ours.get(seq) != event_id:
                return Agreement(agreed, last, high)
            agreed = seq
        if not page.has_more:
            break
    return Agreement(agreed, last, high)


def request(db: Database, client: CloudClient, *, now: datetime) -> Recovery:
    """Ask the cloud to move this store onto a new stream; raises :class:`NothingToRecover`."""
    agreement = compare(db, client, now=now)
    if not agreement.needed:
        with db.write() as uow:
            state = sync_state(uow.session)
            if state.halted_code == ERR_DIVERGED:
                state.halted_code = None  # a stale halt: pushing works
            uow.commit()
        raise NothingToRecover(
            f"the store holds every event the cloud has from it (up to seq "
            f"{agreement.cloud_high_water_seq}); nothing to recover"
        )
    recovery = client.request_recovery(
        RecoveryRequest(agreement.agreed_seq, agreement.outbox_last_seq), now=now
    )
    with db.write() as uow:
        row = uow.session.get(SyncRecovery, recovery.id)
        if row is None:
            row = SyncRecovery(id=recovery.id, renumbered=0, applied_at=None, base_seq=None)
            uow.session.add(row)
        row.status = REQUESTED
        row.stream = recovery.stream
        row.agreed_seq = recovery.agreed_seq
        row.report = json.dumps(recovery.to_dict())
        row.requested_at = now
        state = sync_state(uow.session)
        state.halted_code = ERR_DIVERGED  # no push until the recovery is applied
        uow.commit()
    return recovery


def _pending(db: Database) -> SyncRecovery | None:
    with db.read() as session:
        newest_first = SyncRecovery.requested_at.desc()
        asked = select(SyncRecovery).where(SyncRecovery.status == REQUESTED)
        return session.scalars(asked.order_by(newest_first).limit(1)).first()


def _number_of(sale_number: str | None, store_id: str) -> int | None:
    if sale_number is None:
        return None
    match = re.fullmatch(rf"{re.escape(store_id)}-(\d+)", sale_number)
    return int(match.group(1)) if match else None


def apply(db: Database, recovery: Recovery, *, store_id: str, now: datetime) -> int:
    """Move the store onto the approved stream; returns how many events were renumbered.

    One write transaction: the events after the agreed seq take numbers after ``base_seq``
    (through negative numbers, so no two rows ever share one midway), the ones up to it are
    marked held by the cloud, the outbox counter and the acknowledged mark move with them, the
    halt is lifted, and the sale counter moves past the last receipt number the cloud saw.
    """
    if recovery.status != RECOVERY_APPROVED or recovery.base_seq is None:
        raise ValueError("only an approved recovery can be applied")
    agreed, base = recovery.agreed_seq, recovery.base_seq
    delta = base - agreed
    stamp = to_sql_time(now)
    with db.raw_write() as tx:
        row = tx.one("SELECT status, agreed_seq FROM sync_recoveries WHERE id = ?", (recovery.id,))
        if row is not None and row["status"] == APPLIED:
            tx.commit()
            return 0
        if row is not None and int(row["agreed_seq"]) != agreed:
            raise ValueError("the approved recovery is not the one this store asked for")
        if delta:
            for table in ("outbox", "sync_quarantine"):
                tx.run(f"UPDATE {table} SET seq = -(seq + ?) WHERE seq > ?", (delta, agreed))
                tx.run(f"UPDATE {table} SET seq = -seq WHERE seq < 0")
        tx.run("UPDATE outbox SET pushed_at = NULL WHERE seq > ?", (base,))
        tx.run(
            "UPDATE outbox SET pushed_at = ? WHERE seq <= ? AND pushed_at IS NULL", (stamp, agreed)
        )
        renumbered = int(tx.one("SELECT COUNT(*) FROM outbox WHERE seq > ?", (base,))[0])
        tx.run(
            "UPDATE counters SET value = MAX(value, ?) + ? WHERE name = 'outbox'", (agreed, delta)
        )
        tx.run(
            "INSERT INTO counters (name, value) SELECT 'outbox', ? "
            "WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'outbox')",
            (base,),
        )
        highest = _number_of(recovery.highest_sale_number, store_id)
        if highest is not None:
            tx.run("UPDATE counters SET value = MAX(value, ?) WHERE name = 'sale'", (highest,))
            tx.run(
                "INSERT INTO counters (name, value) SELECT 'sale', ? "
                "WHERE NOT EXISTS (SELECT 1 FROM counters WHERE name = 'sale')",
                (highest,),
            )
        tx.run(
            "UPDATE sync_state SET acked_seq = ?, halted_code = NULL, last_error = NULL, "
            "last_error_code = NULL, consecutive_failures = 0, next_attempt_at = NULL, "
            "next_attempt_mono = NULL",
            (base,),
        )
        report = json.dumps(recovery.to_dict())
        if row is None:
            tx.run(
                "INSERT INTO sync_recoveries (id, status, stream, agreed_seq, base_seq, "
                "renumbered, report, requested_at, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recovery.id,
                    APPLIED,
                    recovery.stream,
                    agreed,
                    base,
                    renumbered,
                    report,
                    stamp,
                    stamp,
                ),
            )
        else:
            tx.run(
                "UPDATE sync_recoveries SET status = ?, base_seq = ?, renumbered = ?, report = ?, "
                "applied_at = ? WHERE id = ?",
                (APPLIED, base, renumbered, report, stamp, recovery.id),
            )
        tx.commit()
    return renumbered


def resume_if_approved(
    db: Database, client: CloudClient, *, store_id: str, now: datetime
) -> str | None:
    """For a store halted by a divergence: apply its recovery if HQ approved it. Returns why
    it cannot push yet, or None once it can."""
    pending = _pending(db)
    if pending is None:
        return (
            "halted: the cloud holds other events under this store's numbers (its database "
            "looks restored or replaced); run `aisle edge recover`"
        )
    recovery = client.recovery(now=now)
    if recovery is None or recovery.id != pending.id:
        return "the cloud has no record of this store's recovery; run `aisle edge recover` again"
    if recovery.status != RECOVERY_APPROVED:
        return f"waiting for HQ to approve the recovery (aisle cloud approve-recovery {store_id})"
    apply(db, recovery, store_id=store_id, now=now)
    return None
