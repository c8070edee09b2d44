"""The store server SIGKILLed between the acquirer's authorisation and the sale's commit (a real
server process, the simulated acquirer's books in their own file): the retry is charged once,
and a checkout nobody retries is released by the server's own maintenance job."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import requests

from tests.sync.harness import EdgeProcess, new_store, wait_for


def live_authorizations(store) -> dict[str, int]:
    """What the acquirer holds, read from its books (the server process wrote them)."""
    path = store.settings.data_dir / "acquirer-simulator.sqlite3"
    with sqlite3.connect(path) as books:
        rows = books.execute(
            "SELECT reference, amount FROM authorizations WHERE voided = 0"
        ).fetchall()
    return dict(rows)


def dying_edge(tmp, store_id, **env: str) -> EdgeProcess:
    store = new_store(tmp, store_id, **{"sync.enabled": False})
    flag = tmp / "die-after-authorize"
    flag.touch()
    return EdgeProcess(
        store,
        {
            "AISLE_FAULT_POINT": "edge.checkout.after_authorize",
            "AISLE_FAULT_FILE": str(flag),
            **env,
        },
    )


def test_a_checkout_retried_after_the_crash_is_charged_once(tmp_path):
    edge = dying_edge(tmp_path, "S101").start()
    try:
        cart, key = edge.open_cart(), uuid.uuid4().hex
        with pytest.raises(requests.ConnectionError):
            edge.pay(cart, key, method="card")  # authorised, then the worker died
        assert not (tmp_path / "die-after-authorize").exists()
        held = live_authorizations(edge.store)
        assert list(held.values()) == [cart["totals"]["total"]]
        retry = edge.pay_retrying(cart, key, method="card")
        assert retry.status_code == 201, retry.text
        payment = retry.json()["sale"]["payments"][0]
        # The acquirer was asked again under the same reference and gave the same authorisation.
        assert live_authorizations(edge.store) == held
        assert payment["reference"] in held
    finally:
        edge.stop()
    # The worker started in place of the dead one was stopped by the signal, not killed after
    # the server's grace period (a stop signal during a worker's start used to be lost).
    log = (edge.store.settings.data_dir / "serve.log").read_text()
    assert "refused to gracefully stop" not in log, log


def test_a_checkout_nobody_retries_is_released_by_the_server(tmp_path):
    edge = dying_edge(
        tmp_path,
        "S102",
        AISLE_MAINTENANCE__INTERVAL_S="5",
        AISLE_MAINTENANCE__ABANDONED_PAYMENT_GRACE_S="1",
        AISLE_PAYMENTS__TIMEOUT_S="0.5",
        AISLE_SERVER__WRITE_LOCK_TIMEOUT_S="0.5",
    ).start()
    try:
        cart = edge.open_cart()
        with pytest.raises(requests.ConnectionError):
            edge.pay(cart, uuid.uuid4().hex, method="card")
        assert len(live_authorizations(edge.store)) == 1
        # The shopper walked away: the maintenance job finds the intent abandoned and voids it.
        wait_for(
            lambda: live_authorizations(edge.store) == {},
            timeout=30,
            what="the abandoned authorisation voided",
        )
        still = edge.call("GET", f"/api/v1/carts/{cart['id']}")
        assert still.status_code == 200 and still.json()["status"] == "open"
    finally:
        edge.stop()
