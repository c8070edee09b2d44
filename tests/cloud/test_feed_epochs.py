"""Feeds survive a restored cloud database: real ``pg_dump`` and ``pg_restore``.

Transaction ids belong to a PostgreSQL cluster. Restored into a new cluster, a dump's change
rows carry ids from the old one, above every id the new cluster hands out; restored from an
older dump, stores hold cursors on rows the database no longer has. Either way the feeds must
go on: a cursor from another epoch, or standing on a row this database lacks, gets a paged
snapshot, and a new store gets every product.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloud.catalog.service import set_store_price
from cloud.changes.models import Change, FeedEpoch
from cloud.db import Database
from cloud.migrations import upgrade
from sync.protocol import SNAPSHOT_NEW_EPOCH, SNAPSHOT_UNKNOWN_POSITION
from tests.cloud.conftest import _new_postgres_database
from tests.cloud.harness import Cloud, StoreClient, catalog_csv, make_cloud
from tests.pg_cluster import (
    ThrowawayCluster,
    advance_xids_to,
    create_database,
    dump,
    next_xid,
    require_tools,
    restore,
    throwaway_cluster,
)

pytestmark = pytest.mark.postgres


def _cloud_on(url: str, data_dir: Path) -> Cloud:
    db = Database.open(url)
    upgrade(db.writer)
    db.dispose()
    return make_cloud(data_dir, url)


def _move(store: StoreClient, cloud: Cloud) -> None:
    """The store's cloud now answers from another database (same keys, same address)."""
    store.cloud.close()
    store.cloud = cloud


def _prices(store: StoreClient, cursor: str | None) -> tuple[dict[str, int], str, list[bool], set]:
    seen: dict[str, int] = {}
    flags, reasons = [], set()
    while True:
        response = store.pull("prices", cursor, 2)
        assert response.status_code == 200, response.get_json()
        page = response.get_json()
        seen.update({c["key"]: c["data"]["unit_price"] for c in page["changes"]})
        flags.append(page["snapshot"])
        if page["snapshot_reason"]:
            reasons.add(page["snapshot_reason"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return seen, cursor, flags, reasons


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster("pg_dump", "pg_restore") as own:
        yield own


def test_a_dump_restored_into_a_new_cluster_keeps_every_feed_moving(
    cluster, fresh_postgres_url, tmp_path
):
    source = fresh_postgres_url
    advance_xids_to(source, 20_000)
    old = _cloud_on(source, tmp_path / "cloud")
    store = old.store("S001")
    old.import_catalog(catalog_csv(5))
    prices, cursor, _, _ = _prices(store, None)
    assert prices == {f"SKU{i:04d}": 1000 + i for i in range(1, 6)}
    dump(source, tmp_path / "cloud.dump")

    # A new cluster, as after losing the server: its transaction counter starts near zero.
    target = create_database(cluster.url, "aisle")
    restore(tmp_path / "cloud.dump", target)
    restored = Database.open(target)
    with restored.read() as session:
        top = session.execute(select(func.max(Change.xid))).scalar_one()
    restored.dispose()
    assert next_xid(target) < top, "the hazard: every stored change is ahead of the counter"

    new = _cloud_on(target, tmp_path / "cloud")
    _move(store, new)
    set_store_price(new.ctx.db, store_id="S001", sku="SKU0003", unit_price=777, now=new.clock.now())

    # The store's cursor is from the old epoch: it gets a snapshot, then the log goes on.
    after, cursor, flags, reasons = _prices(store, cursor)
    assert after == {**prices, "SKU0003": 777}
    assert flags[0] is True and reasons == {SNAPSHOT_NEW_EPOCH}
    with new.ctx.db.read() as session:
        epochs = [
            (e.seq, e.reason)
            for e in session.execute(select(FeedEpoch).order_by(FeedEpoch.seq)).scalars()
        ]
    assert [seq for seq, _ in epochs] == [1, 2]
    assert "restored" in epochs[-1][1]

    set_store_price(new.ctx.db, store_id="S001", sku="SKU0004", unit_price=888, now=new.clock.now())
    later, cursor, flags, _ = _prices(store, cursor)
    assert (later, flags) == ({"SKU0004": 888}, [False])

    # A store enrolled after the restore gets every product, and the catalog feed too.
    fresh = new.store("S002")
    assert _prices(fresh, None)[0] == {**prices}
    everything, _, _ = fresh.pull_all("catalog", limit=2)
    assert sorted(everything) == sorted(prices)
    new.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_ahead_of_a_restored_database_gets_a_snapshot(backend, tmp_path):
    """Restored from an older copy (a point-in-time restore, yesterday's dump): the store has
    seen changes the database lost. Even once new changes pass its cursor, it is not served the
    log from there, which would leave it on the lost prices: it gets a snapshot."""
    if backend == "postgresql":
        require_tools("pg_dump", "pg_restore")
    with (
        _database(backend, tmp_path, "first") as first_url,
        _database(backend, tmp_path, "second") as second_url,
    ):
        old = _cloud_on(first_url, tmp_path / "cloud")
        store = old.store("S001")
        old.import_catalog(catalog_csv(5))
        _, cursor, _, _ = _prices(store, None)
        _copy(backend, first_url, second_url, tmp_path)  # yesterday's copy
        old.clock.advance(minutes=5)
        old.import_catalog(catalog_csv(5, price=2000))
        seen, cursor, _, _ = _prices(store, cursor)
        assert seen["SKU0002"] == 2002

        new = _cloud_on(second_url, tmp_path / "cloud")
        _move(store, new)
        for price in range(3000, 3010):  # enough new changes to pass the store's cursor
            set_store_price(
                new.ctx.db, store_id="S001", sku="SKU0001", unit_price=price, now=new.clock.now()
            )
        after, _, flags, reasons = _prices(store, cursor)
        assert flags[0] is True and reasons == {SNAPSHOT_UNKNOWN_POSITION}
        assert after == {"SKU0001": 3009, **{f"SKU{i:04d}": 1000 + i for i in range(2, 6)}}
        new.close()


def _copy(backend: str, source: str, target: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        # The online backup API: the database as one transaction sees it, WAL included.
        with (
            sqlite3.connect(source.removeprefix("sqlite:///")) as src,
            sqlite3.connect(target.removeprefix("sqlite:///")) as dst,
        ):
            src.backup(dst)
        return
    dump(source, tmp_path / "copy.dump")
    restore(tmp_path / "copy.dump", target)


class _database:
    """An empty database of the test's own on ``backend``."""

    def __init__(self, backend: str, tmp_path: Path, name: str) -> None:
        self.backend, self.path, self.name = backend, tmp_path, name
        self._pg: object = None

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.path / (self.name + '.sqlite3')}"
        self._pg = _new_postgres_database()
        return self._pg.__enter__()  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        if self._pg is not None:
            self._pg.__exit__(*exc)  # type: ignore[attr-defined]
