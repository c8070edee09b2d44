"""The cloud's database restored from a dump into a new PostgreSQL cluster, under a trading
store: real processes, real ``pg_dump`` and ``pg_restore``.

The dump is older than what the store had pushed and pulled. After the restore the store's next
push is told where the cloud stands and sends again what the dump lost, each sale once; its
feeds, whose cursors point past the dump and into another cluster's transaction ids, get a
snapshot and then go on; and the sync status says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.sync_client import service
from sync.protocol import SNAPSHOT_NEW_EPOCH
from tests.pg_cluster import (
    ThrowawayCluster,
    advance_xids_to,
    create_database,
    dump,
    next_xid,
    restore,
    throwaway_cluster,
)
from tests.sync.harness import (
    CloudProcess,
    assert_exactly_once,
    chain_catalog,
    cloud_database,
    enrolled,
    runner,
    sell,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster("pg_dump", "pg_restore") as own:
        yield own


def _prices(store) -> dict[str, int]:
    with store.db.raw_read() as tx:
        return dict(tx.all("SELECT sku, unit_price FROM products"))


def test_a_cloud_restored_from_a_dump_into_a_new_cluster_loses_no_sale_and_no_change(
    cluster: ThrowawayCluster, tmp_path: Path
):
    with cloud_database("postgresql", tmp_path) as source:
        advance_xids_to(source, 20_000)  # a cloud that has lived: its counter is far along
        cloud = CloudProcess(tmp_path / "cloud", source).init().start()
        try:
            cloud.cli("import-catalog", str(chain_catalog(tmp_path, 6)))
            store = enrolled(cloud, tmp_path, "R001")
            sync = runner(store)
            sync.run(pull=True, push=True, force=True)
            before = sell(store, 5)
            sync.run(push=True, force=True)
            dump(source, tmp_path / "cloud.dump")
            # After the dump: more sales reach the cloud, and a price change reaches the store.
            after_dump = sell(store, 3)
            sync.run(push=True, force=True)
            cloud.cli("set-price", "R001", "CH-00002", "4321")
            sync.run(pull=True, force=True)
            assert _prices(store)["CH-00002"] == 4321
            assert len(cloud.sales_of("R001")) == 8
        finally:
            cloud.stop()

        # The cloud's server is lost; its dump goes into a new cluster.
        target = create_database(cluster.url, "aisle")
        restore(tmp_path / "cloud.dump", target)
        assert next_xid(target) < next_xid(source), "the new cluster's counter is behind"

        restored = CloudProcess(tmp_path / "cloud", target, port=cloud.port).start()
        try:
            assert "feeds: epoch 2 started" in (tmp_path / "cloud" / "serve.log").read_text()
            assert len(restored.sales_of("R001")) == 5  # what the dump held
            later = sell(store, 1)
            for _ in range(5):
                sync.run(push=True, force=True)
            restored.cli("set-price", "R001", "CH-00003", "1234")
            sync.run(pull=True, force=True)
            status = service.status(store.db, datetime.now(UTC))
            assert status["halted"] is None, status
            assert status["outbox_pending"] == 0
            # The store's prices are the restored cloud's: the change the dump lost is undone,
            # the new one is there.
            prices = _prices(store)
            assert prices["CH-00003"] == 1234
            assert prices["CH-00002"] != 4321
            feeds = status["feeds"]
            assert feeds["prices"]["last_snapshot_reason"] == SNAPSHOT_NEW_EPOCH, feeds
            assert_exactly_once(restored, store)
            held = {s["id"] for s in restored.sales_of("R001")}
            assert held == set(before) | set(after_dump) | set(later)
        finally:
            restored.stop()
