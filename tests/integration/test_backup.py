"""``aisle edge backup`` while the store trades, and ``aisle edge restore``: the copy is one
consistent instant of the store, says what it holds, and goes back only onto its own store,
with the server stopped, moving what it replaces aside."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid

import pytest
from click.testing import CliRunner

from aisle.cli import main
from edge.backup import BackupError, read_manifest, restore_backup, server_lock, take_backup
from edge.checkout.models import Sale
from tests.builders import make_settings, make_store
from tests.integration.test_payment_intents import open_cart, pay_card


def sold(store, count: int) -> list[str]:
    return [pay_card(store, open_cart(store), uuid.uuid4().hex).sale["id"] for _ in range(count)]


def rows(path, sql: str):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_backup_taken_while_the_store_sells_is_one_consistent_instant(store, tmp_path):
    sold(store, 3)
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_selling() -> None:
        n = 100
        while not stop.is_set():
            try:
                pay_card(store, open_cart(store), f"busy-{n}")
            except BaseException as exc:
                errors.append(exc)
                return
            n += 1

    seller = threading.Thread(target=keep_selling)
    seller.start()
    try:
        manifest = take_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    finally:
        stop.set()
        seller.join(timeout=30)
    assert not errors, errors
    copy = tmp_path / "b1" / "edge.sqlite3"
    # Every sale in the copy came with its outbox event and its stock movements: no torn write.
    sales = rows(copy, "SELECT id FROM sales")
    events = rows(copy, "SELECT aggregate_id FROM outbox WHERE type = 'sale.completed'")
    assert sorted(sales) == sorted(events)
    moved = rows(copy, "SELECT COUNT(DISTINCT ref_id) FROM stock_movements WHERE kind = 'sale'")[0][
        0
    ]
    assert moved == len(sales)
    assert manifest.sales == len(sales) >= 3
    assert manifest.outbox_last_seq == len(events)
    assert manifest.pending_events == manifest.outbox_last_seq  # never pushed
    assert read_manifest(tmp_path / "b1") == manifest
    assert sorted(manifest.files) == ["edge.sqlite3", "store_key.pem"]
    assert (tmp_path / "b1").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "b1").iterdir()} == {0o600}


def test_restore_puts_the_copy_back_and_moves_the_replaced_database_aside(store, tmp_path):
    kept = sold(store, 2)
    take_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    later = sold(store, 2)
    store.db.dispose()
    report = restore_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    assert report.moved_aside is not None
    # The copy (one self-contained file) goes back in WAL mode, as the store runs it: the
    # server never switches modes through a journal at its first start after a restore.
    database = store.settings.database_path
    assert database.read_bytes()[18:20] == b"\x02\x02"
    assert not database.with_name(database.name + "-journal").exists()
    assert not list(database.parent.glob("*.restoring*"))
    aside = report.moved_aside / "edge.sqlite3"
    assert {r[0] for r in rows(aside, "SELECT id FROM sales")} == set(kept + later)
    with store.db.read() as s:
        assert sorted(s.scalars(Sale.__table__.select().with_only_columns(Sale.id))) == sorted(kept)
    assert report.keys_kept == ["store_key.pem"] and report.keys_restored == []

    # Restored again within the same second (the wrong backup, then the right one): both
    # replaced databases are kept, neither overwritten.
    again = restore_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    assert again.moved_aside is not None and again.moved_aside != report.moved_aside
    assert aside.exists() and (again.moved_aside / "edge.sqlite3").exists()


def test_restore_refuses_a_running_server_another_store_and_a_damaged_copy(store, tmp_path):
    sold(store, 1)
    take_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    with (
        server_lock(store.settings, purpose="serving"),
        pytest.raises(BackupError, match="stop it before restoring"),
    ):
        restore_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    other = make_settings(tmp_path / "other", **{"store.id": "S999"})
    with pytest.raises(BackupError, match="backup of store S001, not of S999"):
        restore_backup(other, tmp_path / "b1", now=store.clock.now())
    with (tmp_path / "b1" / "edge.sqlite3").open("r+b") as f:
        f.seek(5000)
        f.write(b"\xff" * 64)
    with pytest.raises(BackupError, match="not the copy its manifest describes"):
        restore_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    with store.db.read() as s:  # nothing was touched
        assert len(s.scalars(Sale.__table__.select().with_only_columns(Sale.id)).all()) == 1


def test_new_hardware_gets_the_keys_from_the_backup(store, tmp_path):
    sold(store, 1)
    take_backup(store.settings, tmp_path / "b1", now=store.clock.now())
    fresh = make_store(tmp_path / "new-box")
    fresh.db.dispose()
    fresh.settings.store_key_path.unlink()
    report = restore_backup(fresh.settings, tmp_path / "b1", now=store.clock.now())
    assert report.keys_restored == ["store_key.pem"]
    assert fresh.settings.store_key_path.read_bytes() == store.settings.store_key_path.read_bytes()


def test_the_commands_say_what_the_backup_holds(store, tmp_path):
    sold(store, 2)
    config = tmp_path / "edge.toml"
    config.write_text(
        f'data_dir = "{store.settings.data_dir}"\n[store]\nid = "S001"\nname = "t"\n',
        encoding="utf-8",
    )
    taken = CliRunner().invoke(
        main, ["edge", "backup", str(tmp_path / "b"), "--config", str(config)]
    )
    assert taken.exit_code == 0, taken.output
    assert "2 sales (last sale S001-000002" in taken.output
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["sales"] == 2
    again = CliRunner().invoke(
        main, ["edge", "backup", str(tmp_path / "b"), "--config", str(config)]
    )
    assert again.exit_code == 1 and "not empty" in again.output
    store.db.dispose()
    back = CliRunner().invoke(
        main, ["edge", "restore", str(tmp_path / "b"), "--config", str(config)]
    )
    assert back.exit_code == 0, back.output
    assert "moves the store onto a new stream" in back.output
