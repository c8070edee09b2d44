"""A store server that runs for years: acknowledged events are pruned after the keep time (and
nothing unacknowledged ever is), the WAL is checkpointed and cut back, the status shows sizes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from edge.db import to_sql_time
from edge.maintenance import checkpoint, prune_outbox, run_maintenance, storage
from edge.outbox.service import append_event
from tests.builders import T0, make_store

NEW_STATE = "INSERT OR IGNORE INTO sync_state (id, acked_seq, consecutive_failures) "
NEW_STATE += "VALUES (1, 0, 0)"


def _events(store, count: int, at) -> None:
    with store.db.write() as uow:
        for i in range(count):
            append_event(uow.session, type="stock.moved", aggregate_id=f"A{i}", payload={}, now=at)
        uow.commit()


def _ack(store, up_to: int, at) -> None:
    with store.db.raw_write() as tx:
        tx.run(NEW_STATE)
        tx.run("UPDATE sync_state SET acked_seq = ?", (up_to,))
        tx.run("UPDATE outbox SET pushed_at = ? WHERE seq <= ?", (to_sql_time(at), up_to))
        tx.commit()


def test_only_old_acknowledged_events_are_pruned(tmp_path: Path):
    store = make_store(tmp_path / "s")
    _events(store, 12_000, T0)
    _ack(store, 11_000, T0)
    later = T0 + timedelta(days=31)
    assert prune_outbox(store.db, now=later, keep_days=30) == 11_000
    assert storage(store.db)["outbox_rows"] == 1_000
    with store.db.raw_read() as tx:
        assert tx.one("SELECT MIN(seq), MAX(seq) FROM outbox")[:] == (11_001, 12_000)
    # Kept while younger than the keep time, whatever was acknowledged.
    _events(store, 10, later)
    _ack(store, 12_010, later)
    assert prune_outbox(store.db, now=later + timedelta(days=1), keep_days=30) == 0
    store.db.dispose()


def test_the_wal_is_checkpointed_and_cut_back(tmp_path: Path):
    store = make_store(tmp_path / "s")
    _events(store, 5_000, T0)
    moved, left = checkpoint(store.db)
    assert moved > 0 and left == 0
    report = run_maintenance(store.db, now=T0, keep_days=30)
    assert report.wal_pages_left == 0
    wal = store.settings.database_path.with_name("edge.sqlite3-wal")
    _events(store, 10, T0)  # the next write starts the WAL again from the top
    assert wal.stat().st_size <= 64 * 1024 * 1024
    assert storage(store.db)["wal_bytes"] == wal.stat().st_size
    store.db.dispose()
