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


def test_unused_phones_expired_a_month_ago_are_deleted_and_the_rest_kept(tmp_path: Path):
    """The door's QR makes a device for every shopper who scans it: those that never did
    anything go a month after their token expired; a phone that did anything stays."""
    from edge.members.service import sign_up
    from sync.keys import generate_private_key, public_key_b64
    from tests.builders import make_app_for

    store = make_store(tmp_path / "s")
    client = make_app_for(store).test_client()
    manager = {"Authorization": f"Bearer {store.tokens['manager']}"}
    token = client.post("/api/v1/store-qr", headers=manager).get_json()["url"].split("#join=")[1]
    joined = [client.post("/api/v1/pairing", json={"join": token}).get_json() for _ in range(5)]
    shopper, signer, retried, idle, _ = (p["device_id"] for p in joined)
    own = {"Authorization": f"Bearer {joined[0]['token']}"}
    assert (
        client.post("/api/v1/carts", json={"channel": "scan_to_buy"}, headers=own).status_code
        == 201
    )
    sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone="13655550031",
        name=None,
        device_id=signer,
        recruited_by=None,
        region="CN",
        now=T0,
    )
    with store.db.raw_write() as tx:  # a retry record alone does not keep a phone
        tx.run(
            "INSERT INTO idempotent_requests (device_id, key, route, fingerprint, status, "
            "created_at) VALUES (?, 'k', 'r', 'f', 201, ?)",
            (retried, to_sql_time(T0)),
        )
        tx.commit()
    with store.db.raw_read() as tx:
        before = {row[0] for row in tx.all("SELECT id FROM devices")}
    expired = T0 + timedelta(days=30)  # the join token's month
    assert (
        run_maintenance(store.db, now=expired + timedelta(days=29), keep_days=30).phones_deleted
        == 0
    )
    report = run_maintenance(store.db, now=expired + timedelta(days=31), keep_days=30)
    with store.db.raw_read() as tx:
        after = {row[0] for row in tx.all("SELECT id FROM devices")}
        left = tx.one("SELECT count(*) FROM idempotent_requests WHERE device_id = ?", (retried,))
    gone = {retried, idle, joined[4]["device_id"]}
    assert report.phones_deleted == 3 and before - after == gone
    assert {shopper, signer} <= after and left[0] == 0
    # The store's own devices and the test's paired phone (no expiry) are all still there.
    assert set(store.devices.values()) <= after
    store.db.dispose()
