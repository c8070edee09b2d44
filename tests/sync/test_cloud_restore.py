"""The cloud's database restored from a dump into a new PostgreSQL cluster, under a trading
store: real processes, real ``pg_dump`` and ``pg_restore``.

The dump is older than what the store had pushed and pulled. After the restore the store's next
push is told where the cloud stands and sends again what the dump lost, each sale once; its
feeds, whose cursors point past the dump and into another cluster's transaction ids, get a
snapshot and then go on; and the sync status says why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from edge.sync_client import service
from sync.protocol import SNAPSHOT_NEW_EPOCH
from tests.pg_cluster import ThrowawayCluster, postgres_tool
from tests.sync.harness import (
    CloudProcess,
    assert_exactly_once,
    chain_catalog,
    cloud_database,
    new_store,
    runner,
    sell,
)

pytestmark = pytest.mark.postgres


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _libpq(url: str) -> list[str]:
    u = make_url(url)
    return [
        "-h",
        str(u.host),
        "-p",
        str(u.port or 5432),
        "-U",
        str(u.username),
        "-d",
        str(u.database),
    ]


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    if postgres_tool("pg_dump") is None or postgres_tool("pg_restore") is None:
        message = "the cloud restore test needs PostgreSQL's initdb, pg_dump and pg_restore"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    own = ThrowawayCluster.create()
    own.start()
    try:
        yield own
    finally:
        own.destroy()


def _next_xid(url: str) -> int:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
        ).fetchone()
        assert row is not None
        return int(row[0])


def _burn_xids_to(url: str, target: int) -> None:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        while _next_xid(url) < target:
            for _ in range(500):
                conn.execute("SELECT pg_current_xact_id()")


def _prices(store) -> dict[str, int]:
    with store.db.raw_read() as tx:
        return dict(tx.all("SELECT sku, unit_price FROM products"))


def test_a_cloud_restored_from_a_dump_into_a_new_cluster_loses_no_sale_and_no_change(
    cluster: ThrowawayCluster, tmp_path: Path
):
    pg_dump, pg_restore = postgres_tool("pg_dump"), postgres_tool("pg_restore")
    with cloud_database("postgresql", tmp_path) as source:
        _burn_xids_to(source, 20_000)  # a cloud that has lived: its counter is far along
        cloud = CloudProcess(tmp_path / "cloud", source).init().start()
        try:
            cloud.cli("import-catalog", str(chain_catalog(tmp_path, 6)))
            store = new_store(tmp_path, "R001")
            service.enroll(
                store.settings,
                store.db,
                cloud_url=cloud.url,
                code=cloud.add_store("R001"),
                now=datetime.now(UTC),
            )
            sync = runner(store)
            sync.run(pull=True, push=True, force=True)
            before = sell(store, 5)
            sync.run(push=True, force=True)
            dump = tmp_path / "cloud.dump"
            subprocess.run(
                [str(pg_dump), "-Fc", "-f", str(dump), *_libpq(source)],
                check=True,
                capture_output=True,
                timeout=120,
            )
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
        target = make_url(cluster.url).set(database="aisle").render_as_string(hide_password=False)
        with psycopg.connect(_conninfo(cluster.url), autocommit=True) as admin:
            admin.execute("CREATE DATABASE aisle")
        subprocess.run(
            [
                str(pg_restore),
                "--no-owner",
                "--exit-on-error",
                *_libpq(target),
                str(dump),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert _next_xid(target) < _next_xid(source), "the new cluster's counter is behind"

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
