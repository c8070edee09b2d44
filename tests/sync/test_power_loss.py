"""Power cuts under a trading store: a real server process whose database keeps only what it
fsynced (tests/powerloss.py), devices selling over HTTP, the background sync draining to a real
cloud; the power goes at random moments, the store comes back, and in the end every sale a
device was answered 2xx for is at the cloud exactly once and the store syncs on.

``AISLE_TEST_POWER_CUTS`` sets how many cuts (``make soak`` runs many more)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import uuid

import pytest
import requests

from tests.powerloss import image_dir, restore_images, server_env
from tests.sync.harness import EdgeProcess, assert_exactly_once, enrolled, wait_for

CUTS = int(os.environ.get("AISLE_TEST_POWER_CUTS", "3"))


def device(edge: EdgeProcess, stop: threading.Event, answered: list[str], seed: int) -> None:
    """A kiosk selling until the power goes: cash or card, keeping every sale it was answered
    for (a retry after an error keeps its key, as the device client does)."""
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            cart = edge.open_cart(items=rng.randint(1, 3))
            key = uuid.uuid4().hex
            answer = edge.pay(cart, key, method=rng.choice(["cash", "card"]), timeout=5)
        except (requests.RequestException, ValueError):
            time.sleep(0.02)
            continue
        if answer.status_code in (200, 201):
            answered.append(answer.json()["sale"]["id"])


def power_cut(edge: EdgeProcess) -> None:
    """Every process of the server stops at once; then the disk holds only what was synced."""
    assert edge.proc is not None
    group = edge.proc.pid
    os.killpg(group, signal.SIGKILL)
    edge.proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the workers too, before the files are touched
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    restore_images(edge.store.settings.database_path)


@pytest.mark.store_faults
def test_power_cuts_under_a_trading_store_lose_no_answered_sale(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 5})
    store.db.dispose()
    database = store.settings.database_path
    rng = random.Random(20261127)
    answered: list[str] = []
    env = {
        "AISLE_SYNC__PUSH_DEBOUNCE_S": "0",
        "AISLE_SYNC__PUSH_INTERVAL_S": "0.2",
        "AISLE_SYNC__BATCH_PAUSE_S": "0",
    }
    wal_image = image_dir(database) / f"{database.name}-wal"
    for cut in range(CUTS):
        edge = EdgeProcess(store, {**env, **server_env(database)}).start()
        started = time.time()
        stop = threading.Event()
        kiosks = [
            threading.Thread(target=device, args=(edge, stop, answered, cut * 10 + n))
            for n in range(3)
        ]
        for kiosk in kiosks:
            kiosk.start()
        time.sleep(rng.uniform(0.3, 1.5))  # selling and draining, then the power goes
        power_cut(edge)
        # The server's SQLite really ran on the imaging VFS: its commits' syncs were seen.
        assert wal_image.stat().st_mtime >= started, "no sync reached the durable image"
        stop.set()
        for kiosk in kiosks:
            kiosk.join(timeout=30)
    assert answered, "no sale was answered before the cuts"
    # Power back for good: the store drains what it holds.
    edge = EdgeProcess(store, env).start()
    try:

        def drained() -> bool:
            status = edge.call("GET", "/api/v1/sync/status").json()
            assert status["halted"] is None, status  # nothing here has to halt a store
            return bool(status["outbox_pending"] == 0)

        wait_for(drained, timeout=60, what="the outbox drained")
    finally:
        with contextlib.suppress(Exception):
            edge.stop()
    at_cloud = [s["id"] for s in cloud.sales_of(store_id)]
    assert len(at_cloud) == len(set(at_cloud)), "a sale arrived twice"
    missing = set(answered) - set(at_cloud)
    assert not missing, f"{len(missing)} answered sales never reached the cloud"
    assert_exactly_once(cloud, store)
