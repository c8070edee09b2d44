"""A store and a real cloud process over a real socket: enrollment, push, pull, outages,
poison events, restored backups, forged answers, versions. Each test checks safety (nothing lost,
nothing applied twice) and, where a fault heals, liveness (the backlog reaches zero)."""

from __future__ import annotations

import shutil
import sqlite3
import stat

import pytest
from sqlalchemy import select

from edge.catalog.models import Product
from edge.catalog.service import lookup_scan
from edge.sync_client import service
from edge.sync_client.models import CloudLink, FeedCursor
from edge.sync_client.scheduler import sync_lock
from edge.sync_client.transport import CloudClient, CloudRefused
from shared.catalog_csv import CATALOG_COLUMNS
from sync import keys
from sync.protocol import PROTOCOL_VERSION
from tests.builders import ean13
from tests.sync.harness import (
    assert_exactly_once,
    edge_sales,
    enrolled,
    new_store,
    now,
    outbox_count,
    runner,
    sell,
)


def test_enrollment_pins_the_cloud_key_and_a_code_works_once(cloud, tmp, store_id):
    store = new_store(tmp, store_id)
    code = cloud.add_store(store_id)
    done = service.enroll(store.settings, store.db, cloud_url=cloud.url, code=code, now=now())
    assert done.store_id == store_id
    key_file = store.settings.sync_key_path
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    link = service.link_of(store.db)
    assert link is not None and link.cloud_public_key == done.cloud_public_key
    # The same code again, from a second server claiming the same store: refused.
    twin = new_store(tmp / "twin", store_id)
    with pytest.raises(CloudRefused) as refused:
        service.enroll(twin.settings, twin.db, cloud_url=cloud.url, code=code, now=now())
    assert refused.value.code == "enrollment_code_used"
    assert service.link_of(twin.db) is None


def test_a_code_for_another_store_does_not_link_this_one(cloud, tmp, store_id):
    store = new_store(tmp, store_id)
    other_code = cloud.add_store(store_id + "X")
    with pytest.raises(CloudRefused) as refused:
        service.enroll(store.settings, store.db, cloud_url=cloud.url, code=other_code, now=now())
    assert refused.value.code == "store_mismatch"
    assert service.link_of(store.db) is None


def test_sales_reach_the_cloud_exactly_once_and_totals_match(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 4})
    sell(store, 11)
    sync = runner(store)
    outcome = sync.run(push=True)
    assert "pushed 11 events" in outcome, outcome
    assert_exactly_once(cloud, store)
    status = service.status(store.db, now())
    assert status["online"] is True
    assert status["outbox_pending"] == 0 and status["acked_seq"] == 11
    # Nothing new: pushing again sends nothing and the cloud applies nothing more.
    assert "pushed 0 events" in sync.run(push=True)
    assert cloud.sync_state(store_id)["events_applied"] == 11


def test_the_store_sells_through_a_cloud_outage_and_catches_up(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id, **{"sync.backoff_initial_s": 30})
    sell(store, 3)
    sync = runner(store)
    sync.run(push=True)
    cloud.stop()
    try:
        sell(store, 4)  # selling never waits for the cloud
        outcome = sync.run(push=True)
        assert outcome.startswith("failed (cloud_unreachable)"), outcome
        status = service.status(store.db, now())
        assert status["online"] is False
        assert status["outbox_pending"] == 4
        assert status["last_error"]["code"] == "cloud_unreachable"
        assert status["next_attempt_at"] is not None
        assert sync.run(push=True) == "backing off"
    finally:
        cloud.start()
    # Liveness: once the cloud is back the backlog drains to zero, each sale once.
    assert "pushed 4 events" in sync.run(push=True, force=True)
    assert_exactly_once(cloud, store)
    assert service.status(store.db, now())["online"] is True


def test_pulled_catalog_and_store_prices_land_with_their_cursor(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    code = ean13(f"6931{store_id[1:]:0>4}0007")
    csv = tmp / "chain.csv"
    csv.write_text(
        ",".join(CATALOG_COLUMNS) + "\n"
        f"CHAIN-{store_id},Green tea 500ml,{code},450,13,drinks,each,false,\n"
    )
    cloud.cli("import-catalog", str(csv))
    cloud.cli("set-price", store_id, f"CHAIN-{store_id}", "399")
    sync = runner(store)
    assert "failed" not in sync.run(push=False, pull=True)
    with store.db.raw_read() as tx:
        item = lookup_scan(tx, code, store.ctx.scan_rules)
    assert (item.sku, item.unit_price) == (f"CHAIN-{store_id}", 399)
    with store.db.read() as session:
        cursors = {c.feed: c.cursor for c in session.execute(select(FeedCursor)).scalars()}
    assert set(cursors) == {
        "catalog",
        "prices",
        "store_settings",
        "member_merges",
        "earn_rules",
        "promotions",
        "coupon_campaigns",
        "coupon_quotas",
    }
    # The chain changes the store's price: the next pull brings only that.
    cloud.cli("set-price", store_id, f"CHAIN-{store_id}", "379")
    sync.run(push=False, pull=True)
    with store.db.read() as session:
        assert session.get(Product, f"CHAIN-{store_id}").unit_price == 379
        moved = {c.feed: c.cursor for c in session.execute(select(FeedCursor)).scalars()}
    assert moved["prices"] != cursors["prices"]


def test_an_answer_not_signed_by_the_pinned_key_is_refused_and_nothing_applied(
    cloud, tmp, store_id
):
    store = enrolled(cloud, tmp, store_id)
    impostor = keys.public_key_b64(keys.generate_private_key())
    with store.db.write() as uow:
        uow.session.get(CloudLink, 1).cloud_public_key = impostor
        uow.commit()
    with store.db.read() as session:
        products_before = len(session.execute(select(Product)).all())
    sell(store, 2)
    sync = runner(store)
    assert sync.run(push=True, pull=True).startswith("failed (unsigned_answer)")
    with store.db.read() as session:
        assert len(session.execute(select(Product)).all()) == products_before
        assert session.execute(select(FeedCursor)).first() is None
    status = service.status(store.db, now())
    assert status["outbox_pending"] == 2  # not marked sent on an answer it cannot trust
    assert status["last_error"]["code"] == "unsigned_answer"


def test_a_poison_event_is_quarantined_on_both_sides_and_the_rest_flows(cloud, tmp, store_id):
    from edge.outbox.service import append_event

    store = enrolled(cloud, tmp, store_id)
    sell(store, 1)
    with store.db.write() as uow:
        append_event(
            uow.session,
            type="sale.completed",
            aggregate_id="broken",
            payload={"store_id": store_id, "sale": {"id": "broken"}},
            now=store.clock.now(),
        )
        uow.commit()
    sell(store, 2)
    sync = runner(store)
    sync.run(push=True)
    status = service.status(store.db, now())
    assert status["outbox_pending"] == 0
    assert [q["seq"] for q in status["quarantined"]] == [2]
    assert status["quarantined"][0]["reason"]
    listed = cloud.cli("quarantine", "list").stdout
    assert store_id in listed
    at_cloud = {s["id"] for s in cloud.sales_of(store_id)}
    assert at_cloud == set(edge_sales(store))  # the three real sales, nothing else
    state = cloud.sync_state(store_id)
    assert (state["high_water_seq"], state["quarantined"]) == (4, 1)


def test_a_store_restored_from_an_old_backup_is_stopped_not_merged(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    sell(store, 3)
    backup = tmp / "backup.sqlite3"
    live, copy = sqlite3.connect(store.settings.database_path), sqlite3.connect(backup)
    live.backup(copy)
    live.close()
    copy.close()
    sell(store, 2)
    runner(store).run(push=True)
    assert cloud.sync_state(store_id)["high_water_seq"] == 5
    # The disk dies; the store comes back from last night's backup and sells again.
    store.db.dispose()
    db_path = store.settings.database_path
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(backup, db_path)
    restored = new_store_context(store)
    sell(restored, 1)  # seq 4 again, a different event
    outcome = runner(restored).run(push=True)
    assert "sequence_diverged" in outcome, outcome
    status = service.status(restored.db, now())
    assert status["halted"] == "sequence_diverged"
    assert status["outbox_pending"] >= 1
    state = cloud.sync_state(store_id)
    assert state["diverged"] is True and state["high_water_seq"] == 5
    assert len(cloud.sales_of(store_id)) == 5  # the cloud kept what it had, merged nothing


def new_store_context(store):
    from edge.app import build_context
    from tests.builders import Store

    ctx = build_context(store.settings, clock=store.clock, payments=store.payments)
    return Store(store.settings, ctx, store.clock, store.tokens, store.devices, store.payments)


def test_only_one_process_pushes_at_a_time(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    sell(store, 2)
    with sync_lock(store.settings.sync_lock_path) as held:
        assert held
        assert runner(store).run(push=True) == "another process is syncing"
        assert outbox_count(store) == 2
        assert service.status(store.db, now())["outbox_pending"] == 2
    assert "pushed 2 events" in runner(store).run(push=True)


def test_an_edge_the_cloud_no_longer_speaks_to_shows_why(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    sell(store, 1)

    def future_client(settings, link):
        return CloudClient(
            link.cloud_url,
            store_id=link.store_id,
            store_key=keys.load_private_key(settings.sync_key_path),
            cloud_key=keys.load_public_key_b64(link.cloud_public_key),
            protocol=PROTOCOL_VERSION + 2,
        )

    outcome = runner(store, client_factory=future_client).run(push=True)
    assert "unsupported_protocol_version" in outcome
    status = service.status(store.db, now())
    assert status["halted"] == "unsupported_protocol_version"
    # The status names the versions this cloud accepts, so a person knows what to upgrade to.
    assert status["last_error"]["code"] == "unsupported_protocol_version"
    assert str(PROTOCOL_VERSION + 2) in status["last_error"]["message"]
    assert "accept" in status["last_error"]["message"]
    assert status["outbox_pending"] == 1
