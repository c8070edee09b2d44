"""A store restored from yesterday's backup, and one whose server was replaced, find their way
back: real store and cloud processes, the commands a person would run.

The store stops pushing when it finds the cloud holds other events under its numbers; `aisle
edge recover` asks to move onto a new stream; HQ approves at the cloud; the running server
renumbers the store's own events after the cloud's and pushes them. In the end the cloud holds
every sale exactly once: the ones made after the backup that had reached it (kept, and reported
on both sides) and the ones the restored store made."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from edge.sync_client import service
from tests.sync.harness import EdgeProcess, enrolled, new_store, run_cli, wait_for, write_config

FAST_SYNC = {
    "AISLE_SYNC__PUSH_DEBOUNCE_S": "0",
    "AISLE_SYNC__PUSH_INTERVAL_S": "0.3",
    "AISLE_SYNC__BACKOFF_MAX_S": "0.5",
}


def sell(edge: EdgeProcess, count: int) -> list[dict]:
    sales = []
    for _ in range(count):
        answer = edge.pay(edge.open_cart(items=2), uuid.uuid4().hex, method="card")
        assert answer.status_code == 201, answer.text
        sales.append(answer.json()["sale"])
    return sales


def status(edge: EdgeProcess) -> dict:
    return dict(edge.call("GET", "/api/v1/sync/status").json())


def drained(edge: EdgeProcess) -> None:
    def done() -> bool:
        s = status(edge)
        return s["outbox_pending"] == 0 and s["halted"] is None

    wait_for(done, timeout=60, what="the store's outbox drained")


def test_a_store_restored_from_a_backup_recovers_onto_a_new_stream(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    store.db.dispose()
    config = write_config(store)
    edge = EdgeProcess(store, FAST_SYNC).start()
    try:
        before = sell(edge, 4)
        drained(edge)
        # Last night's backup, taken while the store trades.
        taken = run_cli("edge", "backup", str(tmp / "nightly"), "--config", config)
        assert "4 sales" in taken.stdout, taken.stdout
        after_backup = sell(edge, 3)  # they reach the cloud, then the disk dies
        drained(edge)
    finally:
        edge.stop()

    restored = run_cli("edge", "restore", str(tmp / "nightly"), "--config", config)
    assert "the database it replaced is in" in restored.stdout
    edge = EdgeProcess(store, FAST_SYNC).start()
    try:
        made_while_restored = sell(edge, 2)  # numbered 5 and 6 again: the cloud has other 5, 6
        wait_for(
            lambda: status(edge)["halted"] == "sequence_diverged",
            timeout=30,
            what="the store stops pushing",
        )
        halted = status(edge)
        assert "aisle edge recover" in halted["last_error"]["message"], halted
        held = [s["id"] for s in cloud.sales_of(store_id)]
        assert sorted(held) == sorted(s["id"] for s in before + after_backup)

        asked = run_cli("edge", "recover", "--config", config)
        assert "3 of them sales" in asked.stdout, asked.stdout
        assert "waiting for HQ to approve" in asked.stdout, asked.stdout
        listed = cloud.cli("recoveries", "--pending").stdout
        assert f"store {store_id}: recovery to stream 2, pending" in listed, listed
        assert after_backup[0]["number"] in listed
        # Nothing moves until HQ says so.
        assert status(edge)["halted"] == "sequence_diverged"

        approved = cloud.cli("approve-recovery", store_id, "--by", "HQ operations").stdout
        assert "continue after seq 7" in approved, approved
        drained(edge)  # the server applies the approval by itself and pushes
        after = sell(edge, 1)
        drained(edge)
        recovery = status(edge)["recovery"]
    finally:
        edge.stop()

    assert recovery["status"] == "applied" and recovery["stream"] == 2
    assert recovery["agreed_seq"] == 4 and recovery["base_seq"] == 7
    assert recovery["cloud_only_sales_count"] == 3
    assert sorted(s["id"] for s in recovery["cloud_only_sales"]) == sorted(
        s["id"] for s in after_backup
    )
    at_cloud = cloud.sales_of(store_id)
    ids = Counter(s["id"] for s in at_cloud)
    assert all(n == 1 for n in ids.values()), "a sale arrived twice"
    assert set(ids) == {s["id"] for s in before + after_backup + made_while_restored + after}
    # Receipts after the recovery continue after the last number the cloud saw.
    assert after[0]["number"] == f"{store_id}-000008"
    state = cloud.sync_state(store_id)
    assert state["high_water_seq"] == 7 + 3  # two renumbered events and one new


def test_a_replaced_server_without_its_key_enrolls_again_and_recovers(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    store.db.dispose()
    edge = EdgeProcess(store, FAST_SYNC).start()
    try:
        old = sell(edge, 3)
        drained(edge)
    finally:
        edge.stop()

    # New hardware: an empty store with the same id and a new key, enrolled with a code HQ
    # issues for an enrolled store.
    box = new_store(tmp / "new-box", store_id)
    code = cloud.cli("reissue-code", store_id).stdout.split()[-1]
    service.enroll(box.settings, box.db, cloud_url=cloud.url, code=code, now=datetime.now(UTC))
    box.db.dispose()
    config = write_config(box)
    edge = EdgeProcess(box, FAST_SYNC).start()
    try:
        new = sell(edge, 2)
        wait_for(
            lambda: status(edge)["halted"] == "sequence_diverged",
            timeout=30,
            what="the new server stops pushing",
        )
        run_cli("edge", "recover", "--config", config)
        cloud.cli("approve-recovery", store_id, "--by", "HQ operations")
        drained(edge)
        recovery = status(edge)["recovery"]
    finally:
        edge.stop()
    assert recovery["agreed_seq"] == 0 and recovery["base_seq"] == 3
    assert recovery["cloud_only_sales_count"] == 3
    ids = Counter(s["id"] for s in cloud.sales_of(store_id))
    assert all(n == 1 for n in ids.values())
    assert set(ids) == {s["id"] for s in old + new}
