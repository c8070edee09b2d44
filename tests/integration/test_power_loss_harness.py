"""The power-loss harness (tests/powerloss.py) loses exactly what was not fsynced, where SIGKILL
loses nothing; and on the store's own database, an answered sale survives a power cut while the
scans after it may not (they commit without an fsync of their own, by design)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from sqlalchemy import func, select

from edge.app import build_context
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
