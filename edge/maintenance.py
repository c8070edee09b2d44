"""Keeping a store server healthy for years: the outbox pruned, the WAL checkpointed.

* Events the cloud acknowledged stay in the outbox ``maintenance.outbox_keep_days`` (for a person
  looking into something, and for a cloud restored from a backup to be sent again), then they
  are deleted, a few thousand at a time under the write lock, so the outbox does not grow with
  every sale the store ever made. Nothing unacknowledged is ever deleted.
* SQLite checkpoints its WAL as it goes, but only when no reader holds an old snapshot, and it
  never shrinks the file: a long-lived store can end up with a WAL of gigabytes. The server
  checkpoints now and then (``PASSIVE``: it never blocks a device), and the connections cap
  what is kept of the WAL file after a checkpoint (``journal_size_limit``).
* The door's QR makes a device for every shopper who scans it, whose token lasts a month. A
  shopper's phone whose token expired ``maintenance.phone_keep_days`` ago and that nothing in the
  store names (no cart, sale, member sign-up, payment, anything with a device column) is
  deleted, with its idempotency records; a phone that did anything stays, for the record.

One server process does this at a time (``maintenance.lock``); the others skip the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge.db import Base, Database, to_sql_time

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one maintenance pass did: acknowledged events pruned, WAL pages checkpointed."""

    pruned: int
    checkpointed_pages: int
    wal_pages_left: int
    phones_deleted: int = 0

    def __str__(self) -> str:
        return (
            f"pruned {self.pruned} acknowledged events and {self.phones_deleted} unused "
            f"expired phones; checkpointed {self.checkpointed_pages} WAL pages "
            f"({self.wal_pages_left} left)"
        )


#: Acknowledged events deleted per transaction, so the writer lock is never held long.
PRUNE_CHUNK = 5_000


def prune_outbox(db: Database, *, now: datetime, keep_days: float) -> int:
    """Delete acknowledged events older than ``keep_days``; returns how many went."""
    cutoff = to_sql_time(now - timedelta(days=keep_days))
    pruned = 0
    while True:
        with db.raw_write() as tx:
            acked = tx.one("SELECT COALESCE(MAX(acked_seq), 0) FROM sync_state")[0]
            tx.run(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? "
                "AND pushed_at IS NOT NULL AND pushed_at < ? ORDER BY seq LIMIT ?)",
                (acked, cutoff, PRUNE_CHUNK),
            )
            deleted = tx.cur.rowcount
            tx.commit()
        pruned += deleted
        if deleted < PRUNE_CHUNK:
            return pruned


#: Tables whose rows go with a deleted phone (its own retry records), not keeping it.
_GOES_WITH_THE_DEVICE = frozenset({"devices", "idempotent_requests"})
#: How long after the keep time a phone is still looked at: each is looked at for two days of
#: runs, so one that something names is not read again at every run for ever.
PHONE_WINDOW = timedelta(days=2)
#: Candidates read against the other tables at a time (one pass over each table per chunk).
PHONE_CHUNK = 500


def _device_columns() -> list[tuple[str, str]]:
    """Every (table, column) that may name a device, but a cart's: a foreign key to the devices,
    or a ``device_id`` (read from the metadata, so a table added later is counted too)."""
    import edge.models  # noqa: F401  (every table in the metadata)

    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        if table.name not in _GOES_WITH_THE_DEVICE
        for column in table.columns
        if (
            column.name == "device_id"
            or any(fk.column.table.name == "devices" for fk in column.foreign_keys)
        )
        and (table.name, column.name) != ("carts", "device_id")
    ]


def prune_phones(db: Database, *, now: datetime, keep_days: float) -> int:
    """Delete shoppers' phones expired ``keep_days`` ago that nothing names; how many went.

    A phone that shopped has a cart (indexed): those are left out first, cheaply. The few left
    are read against every other table that may name a device, one pass each; nothing is read
    when no phone is due, which is most runs."""
    cutoff = now - timedelta(days=keep_days)
    with db.raw_read() as tx:
        due = [
            row[0]
            for row in tx.all(
                "SELECT id FROM devices WHERE role = 'phone' AND expires_at < ? "
                "AND expires_at >= ? AND NOT EXISTS "
                "(SELECT 1 FROM carts WHERE carts.device_id = devices.id)",
                (to_sql_time(cutoff), to_sql_time(cutoff - PHONE_WINDOW)),
            )
        ]
        unused: list[str] = []
        for start in range(0, len(due), PHONE_CHUNK):
            chunk = due[start : start + PHONE_CHUNK]
            marks = ", ".join("?" * len(chunk))
            named: set[str] = set()
            for table, column in _device_columns():
                named.update(
                    row[0]
                    for row in tx.all(
                        f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({marks})", chunk
                    )
                )
            unused.extend(d for d in chunk if d not in named)
    # An expired token can do nothing: nothing comes to name these phones before the delete.
    for start in range(0, len(unused), PRUNE_CHUNK):
        chunk = unused[start : start + PRUNE_CHUNK]
        marks = ", ".join("?" * len(chunk))
        with db.raw_write() as tx:
            tx.run(f"DELETE FROM idempotent_requests WHERE device_id IN ({marks})", chunk)
            tx.run(f"DELETE FROM devices WHERE id IN ({marks})", chunk)
            tx.commit()
    return len(unused)


def checkpoint(db: Database) -> tuple[int, int]:
    """Checkpoint what can be without waiting for anyone; (pages copied, WAL pages left)."""
    # On a bare connection outside any transaction: a checkpoint inside one cannot finish.
    proxy = db.writer.raw_connection()
    try:
        cursor = proxy.cursor()
        _busy, wal_pages, moved = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        cursor.close()
    finally:
        proxy.close()
    return int(moved), max(0, int(wal_pages) - int(moved))


def run_maintenance(
    db: Database, *, now: datetime, keep_days: float, phone_keep_days: float = 30.0
) -> MaintenanceReport:
    """Prune and checkpoint once."""
    pruned = prune_outbox(db, now=now, keep_days=keep_days)
    phones = prune_phones(db, now=now, keep_days=phone_keep_days)
    moved, left = checkpoint(db)
    report = MaintenanceReport(pruned, moved, left, phones)
    if pruned or phones:
        log.info("maintenance: %s", report)
    return report


def storage(db: Database) -> dict[str, int]:
    """What the store keeps on disk: the outbox's rows and the database and WAL files' bytes."""
    with db.raw_read() as tx:
        rows = tx.one("SELECT COUNT(*) FROM outbox")[0]
    wal = Path(str(db.path) + "-wal")
    return {
        "outbox_rows": int(rows),
        "database_bytes": db.path.stat().st_size if db.path.exists() else 0,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }
