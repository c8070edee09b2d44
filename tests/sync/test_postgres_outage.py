"""PostgreSQL stopped abruptly (``pg_ctl stop -m immediate``: no checkpoint, as if the machine
died) while a store drains its backlog, then started again: the cloud answers 503 meanwhile, the
store backs off, and once the database is back every event lands exactly once.

The cluster that dies is the test's own (``tests/pg_cluster.py``: ``initdb`` into a temporary
folder, its own port); the machine's PostgreSQL is never touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from edge.sync_client import service
from tests.pg_cluster import ThrowawayCluster, throwaway_cluster
from tests.sync.harness import CloudProcess, assert_exactly_once, enrolled, sell
from tests.sync.harness import runner as make_runner


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster() as own:
        yield own


@pytest.fixture(scope="module")
def cloud(cluster: ThrowawayCluster, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cloud-pg-outage")
    with CloudProcess(root / "cloud", cluster.url).init().start() as process:
        yield process


def test_postgres_dies_mid_drain_and_nothing_is_lost_or_doubled(cluster, cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 5, "sync.read_timeout_s": 5.0})
    sell(store, 200)
    sync = make_runner(store)
    outcomes: list[str] = []
    stop_drains = threading.Event()

    def drain_repeatedly() -> None:
        while not stop_drains.is_set():
            outcomes.append(sync.run(push=True, force=True))
            time.sleep(0.05)

    drainer = threading.Thread(target=drain_repeatedly)
    try:
        drainer.start()
        # Stop the database in the middle of the drain: some batches in, some still to go.
        deadline = time.monotonic() + 30
        while service.status(store.db, datetime.now(UTC))["acked_seq"] < 20:
            assert time.monotonic() < deadline, "the drain never started"
            time.sleep(0.01)
        cluster.stop("immediate")
        at_stop = service.status(store.db, datetime.now(UTC))
        assert 0 < at_stop["acked_seq"] < 200, at_stop
        assert at_stop["outbox_pending"] > 0
        time.sleep(2.0)  # the store keeps trying against a cloud without its database
        sell(store, 5)
    finally:
        cluster.start()
    deadline = time.monotonic() + 60
    while service.status(store.db, datetime.now(UTC))["outbox_pending"] and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    stop_drains.set()
    drainer.join(timeout=60)
    failures = [o for o in outcomes if o.startswith("failed")]
    assert failures, "the outage was never seen: the test did not test anything"
    assert any("database_unavailable" in f or "cloud_unreachable" in f for f in failures)
    assert service.status(store.db, datetime.now(UTC))["outbox_pending"] == 0
    assert_exactly_once(cloud, store)
