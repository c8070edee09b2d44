"""Keeping a store server healthy for years: the outbox pruned, the WAL checkpointed.

* Events the cloud acknowledged stay in the outbox ``maintenance.outbox_keep_days`` (for a person
  looking into something, and for a cloud restored from a backup to be sent again), then they
  are deleted, a few thousand at a time under the write lock, so the outbox does not grow with
  every sale the store ever made. Nothing unacknowledged is ever deleted.
* SQLite checkpoints its WAL as it goes, but only when no reader holds an old snapshot, and it
  never shrinks the file: a long-lived store can end up with a WAL of gigabytes. The server
  checkpoints now and then (``PASSIVE``: it never blocks a device), and the connections cap
  what is kept of the WAL file after a checkpoint (``journal_size_limit``).

One server process does this at a time (``maintenance.lock``); the others skip the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from edge.db import Database, to_sql_time

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one maintenance pass did: acknowledged events pruned, WAL pages checkpointed."""

    pruned: int
    checkpointed_pages: int
    wal_pages_left: int

    def __str__(self) -> str:
        return (
            f"pruned {self.pruned} acknowledged events; checkpointed "
            f"{self.checkpointed_pages} WAL pages ({self.wal_pages_left} left)"
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


def run_maintenance(db: Database, *, now: datetime, keep_days: float) -> MaintenanceReport:
    """Prune and checkpoint once."""
    pruned = prune_outbox(db, now=now, keep_days=keep_days)
    moved, left = checkpoint(db)
    report = MaintenanceReport(pruned, moved, left)
    if pruned:
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
