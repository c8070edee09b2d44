"""The power-loss harness (tests/powerloss.py) loses exactly what was not fsynced, where SIGKILL
loses nothing; and on the store's own database, an answered sale survives a power cut while the
scans after it may not (they commit without an fsync of their own, by design)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from sqlalchemy import func, select, text

from edge.app import build_context
from edge.backup import restore_backup, take_backup
from edge.checkout.models import CartLine, Sale
from tests.builders import make_store
from tests.integration.test_payment_intents import kiosk, open_cart, pay_card
from tests.powerloss import watch


def _table(path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return db


def test_a_power_cut_keeps_what_was_synced_and_loses_the_rest(tmp_path):
    path = tmp_path / "t.sqlite3"
    _table(path).close()
    disk = watch(path)
    db = _table(path)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("INSERT INTO t VALUES (1)")  # the WAL is synced at this commit
    db.execute("PRAGMA synchronous=OFF")
    db.execute("INSERT INTO t VALUES (2)")  # never synced
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("INSERT INTO t VALUES (3)")  # in WAL mode, synced only at a checkpoint
    assert [r[0] for r in db.execute("SELECT x FROM t")] == [1, 2, 3]
    disk.cut()
    db.close()  # closing checkpoints and syncs, but the power is already off
    disk.restore()
    assert [r[0] for r in sqlite3.connect(path).execute("SELECT x FROM t")] == [1]


def test_sigkill_is_not_a_power_cut_it_loses_nothing_committed(tmp_path):
    path = tmp_path / "t.sqlite3"
    _table(path).close()
    script = (
        "import os, signal, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous=OFF')\n"
        "db.execute('INSERT INTO t VALUES (7)')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert died.returncode == -9
    assert [r[0] for r in sqlite3.connect(path).execute("SELECT x FROM t")] == [7]


def test_an_answered_sale_survives_a_power_cut_and_later_scans_may_not(tmp_path):
    store = make_store(tmp_path / "store")
    store.db.dispose()
    disk = watch(store.settings.database_path)
    ctx = build_context(store.settings, clock=store.clock, payments=store.payments)
    store.ctx = ctx
    paid = pay_card(store, open_cart(store), "k-1").sale
    open_cart(store)  # scanned after the sale: committed, not synced
    with store.db.read() as s:
        assert s.scalar(select(func.count()).select_from(CartLine)) == 2
    disk.cut()
    store.db.dispose()
    disk.restore()
    store.ctx = build_context(store.settings, clock=store.clock, payments=store.payments)
    try:
        with store.db.read() as s:
            assert [sale.id for sale in s.scalars(select(Sale))] == [paid["id"]]
            assert s.scalar(select(func.count()).select_from(CartLine)) == 1
        assert kiosk(store)  # the store trades on
        pay_card(store, open_cart(store), "k-2")
    finally:
        store.db.dispose()


def _rows(path) -> list[int]:
    return [r[0] for r in sqlite3.connect(path).execute("SELECT x FROM t ORDER BY x")]


def test_an_unlink_not_yet_on_the_disk_comes_back_after_a_power_cut(tmp_path):
    """A file unlinked without syncing its folder may come back after a power cut, as on a real
    disk: in rollback-journal mode ``synchronous=FULL`` may lose the last commit (its journal
    comes back hot and rolls it back), ``EXTRA`` may not."""
    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("CREATE TABLE t (x INTEGER)")
    db.close()
    disk = watch(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("PRAGMA synchronous=EXTRA")  # the folder is synced once the journal is gone
    db.execute("INSERT INTO t VALUES (2)")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("INSERT INTO t VALUES (3)")  # its journal's unlink never reached the disk
    disk.cut()
    db.close()
    disk.restore()
    assert _rows(path) == [1, 2]


def test_an_unlink_is_on_the_disk_once_a_later_sync_is(tmp_path):
    """A journaling file system writes its metadata in order: once a later fsync is done, so is
    the unlink before it. Here the journal of the switch to WAL mode is unlinked, the WAL and the
    database are synced at the checkpoint that closes the connection, and a later commit syncs
    the WAL again; the old journal must not come back hot after the power cut (rolling the
    database back to its size before the checkpoint would leave it malformed)."""
    path = tmp_path / "t.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("CREATE TABLE t (x INTEGER, pad TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(n, "x" * 300) for n in range(300)])
    db.close()
    disk = watch(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")  # through a journal, then unlinked
    db.execute("PRAGMA synchronous=FULL")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(n, "y" * 300) for n in range(300, 600)])
    db.close()  # the checkpoint syncs the WAL and the database, which has grown
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("INSERT INTO t VALUES (600, '')")
    disk.cut()
    db.close()
    disk.restore()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _rows(path) == list(range(601))


def test_a_restored_store_keeps_its_answered_sales_through_a_power_cut(tmp_path):
    """Restored from a backup, the store trades, stops cleanly, starts, sells once more, and the
    power goes: every sale it answered for is there and the database is whole."""
    store = make_store(tmp_path / "store")
    pay_card(store, open_cart(store), "k-0")
    take_backup(store.settings, tmp_path / "backup", now=store.clock.now())
    store.db.dispose()
    restore_backup(store.settings, tmp_path / "backup", now=store.clock.now())
    disk = watch(store.settings.database_path)

    def start():
        store.ctx = build_context(store.settings, clock=store.clock, payments=store.payments)

    start()
    paid = [pay_card(store, open_cart(store), f"k-{n}").sale["id"] for n in range(1, 7)]
    store.db.dispose()  # a clean stop: the checkpoint grows the database
    start()
    paid.append(pay_card(store, open_cart(store), "k-7").sale["id"])
    disk.cut()
    store.db.dispose()
    disk.restore()
    start()
    try:
        with store.db.read() as s:
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            held = set(s.scalars(select(Sale.id)))
        assert set(paid) <= held and len(held) == 8
    finally:
        store.db.dispose()
