"""The store server's own background sync, in real server processes: it pushes soon after a
sale without being asked, a sale never waits for the network, and a store killed right after a
sale's commit loses nothing and sends it once."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import requests

from edge.sync_client.models import CloudLink
from tests.sync.harness import EdgeProcess, assert_exactly_once, enrolled, wait_for


@pytest.mark.store_faults
def test_the_server_pushes_soon_after_a_sale_by_itself(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    # The interval is long: only the kick after each sale can bring the sales over in time.
    edge = EdgeProcess(
        store, {"AISLE_SYNC__PUSH_INTERVAL_S": "600", "AISLE_SYNC__PUSH_DEBOUNCE_S": "0.2"}
    ).start()
    try:
        wait_for(  # the first scheduled runs (push, then pull) at start are over
            lambda: edge.call("GET", "/api/v1/sync/status").json()["last_pull_at"] is not None,
            timeout=20,
            what="the server's first pull",
        )
        for _ in range(3):
            assert edge.pay(edge.open_cart(), uuid.uuid4().hex).status_code == 201
        wait_for(lambda: len(cloud.sales_of(store_id)) == 3, timeout=20, what="sales at the cloud")
        status = edge.call("GET", "/api/v1/sync/status").json()
        assert status["online"] is True and status["outbox_pending"] == 0
    finally:
        edge.stop()
    assert_exactly_once(cloud, store)


@pytest.mark.store_faults
def test_a_push_asked_for_while_another_process_syncs_is_not_dropped(cloud, tmp, store_id):
    from edge.sync_client.scheduler import sync_lock

    store = enrolled(cloud, tmp, store_id)
    edge = EdgeProcess(
        store, {"AISLE_SYNC__PUSH_INTERVAL_S": "600", "AISLE_SYNC__PUSH_DEBOUNCE_S": "0.2"}
    ).start()
    try:
        wait_for(
            lambda: edge.call("GET", "/api/v1/sync/status").json()["last_pull_at"] is not None,
            timeout=20,
            what="the server's first pull",
        )
        # The sale's push finds the lock taken (as by a long pull in the other worker): it
        # must come back for it soon, not at the next interval ten minutes away.
        with sync_lock(store.settings.sync_lock_path, wait=True) as held:
            assert held  # taken as soon as the server's own run (if any) let go
            assert edge.pay(edge.open_cart(), uuid.uuid4().hex).status_code == 201
            time.sleep(1.0)
            assert cloud.sales_of(store_id) == []
        wait_for(lambda: len(cloud.sales_of(store_id)) == 1, timeout=15, what="the sale")
    finally:
        edge.stop()
    assert_exactly_once(cloud, store)


@pytest.fixture
def black_hole():
    """A cloud address that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    server.close()


@pytest.mark.store_faults
def test_a_sale_never_waits_for_a_cloud_that_does_not_answer(cloud, tmp, store_id, black_hole):
    store = enrolled(cloud, tmp, store_id)
    with store.db.write() as uow:
        uow.session.get(CloudLink, 1).cloud_url = black_hole
        uow.commit()
    edge = EdgeProcess(
        store, {"AISLE_SYNC__PUSH_DEBOUNCE_S": "0", "AISLE_SYNC__READ_TIMEOUT_S": "10"}
    ).start()
    try:
        for _ in range(3):
            # A push hangs on the cloud for up to 10 s; the sale answers at store speed.
            answer = edge.pay(edge.open_cart(), uuid.uuid4().hex, timeout=5)
            assert answer.status_code == 201
        status = edge.call("GET", "/api/v1/sync/status").json()
        assert status["outbox_pending"] == 3
    finally:
        edge.stop()


@pytest.mark.store_faults
def test_the_store_killed_right_after_a_sale_commit_loses_nothing(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    flag = tmp / "die-after-commit"
    flag.touch()
    edge = EdgeProcess(
        store,
        {"AISLE_FAULT_POINT": "edge.sale.after_commit", "AISLE_FAULT_FILE": str(flag)},
    ).start()
    try:
        cart, key = edge.open_cart(), uuid.uuid4().hex
        with pytest.raises(requests.ConnectionError):
            edge.pay(cart, key)  # the worker died after the commit, before answering
        assert not flag.exists()
        # The kiosk retries with its key, as the device client does (a connection made in the
        # few milliseconds while the server replaces the dead worker may be reset too): the
        # sale is there, once, and the same.
        retry = edge.pay_retrying(cart, key)
        assert retry.status_code in (200, 201), retry.text
        sale_id = retry.json()["sale"]["id"]
        wait_for(
            lambda: [s["id"] for s in cloud.sales_of(store_id)] == [sale_id],
            timeout=30,
            what="the sale at the cloud",
        )
    finally:
        edge.stop()
    assert_exactly_once(cloud, store)
