"""The downward cursor never skips a change PostgreSQL commits out of its sequence order.

Two transactions write change rows; the one holding the *lower* id commits *last*. A naive
``id > cursor`` reader, reading between the two commits, sees only the higher id, moves its
cursor past the lower one, and never sees it. The feed (xid8 below the snapshot's xmin) serves
neither until both are done, then both.
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.cloud.harness import catalog_csv, make_cloud

pytestmark = pytest.mark.postgres  # PostgreSQL only: its commit order is what is tested

INSERT = (
    "INSERT INTO changes (xid, feed, key, store_id, created_at) "
    "VALUES (pg_current_xact_id()::text::bigint, 'prices', %s, NULL, now()) RETURNING id"
)
UPDATE_PRICE = "UPDATE products SET unit_price = %s WHERE sku = %s"


def test_commits_out_of_sequence_order_are_never_skipped(postgres_url, tmp_path):
    from tests.cloud.conftest import _empty_postgres

    _empty_postgres(postgres_url)
    cloud = make_cloud(tmp_path / "cloud", postgres_url)
    try:
        store = cloud.store()
        cloud.import_catalog(catalog_csv(2))
        _, cursor, _ = store.pull_all("prices")
        conninfo = (
            make_url(postgres_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        with psycopg.connect(conninfo) as first, psycopg.connect(conninfo) as second:
            # T1 takes the lower id and stays open; T2 takes the higher id and commits first.
            first.execute(UPDATE_PRICE, (111, "SKU0001"))
            low_id = first.execute(INSERT, ("SKU0001",)).fetchone()[0]
            second.execute(UPDATE_PRICE, (222, "SKU0002"))
            high_id = second.execute(INSERT, ("SKU0002",)).fetchone()[0]
            assert low_id < high_id
            second.commit()

            # The naive reader sees only the higher id now and would move its cursor past T1.
            with cloud.ctx.db.read() as session:
                naive = (
                    session.execute(
                        text(
                            "SELECT id FROM changes WHERE feed = 'prices' AND id > :c ORDER BY id"
                        ),
                        {"c": low_id - 1},
                    )
                    .scalars()
                    .all()
                )
            assert naive == [high_id], "the hazard: T1's row is invisible, T2's is not"

            # The feed holds back instead: nothing is served while T1 is open.
            page = store.pull("prices", cursor).get_json()
            assert page["changes"] == []
            assert page["next_cursor"] == cursor

            first.commit()

        page = store.pull("prices", cursor).get_json()
        served = {c["key"]: c["data"]["unit_price"] for c in page["changes"]}
        assert served == {"SKU0001": 111, "SKU0002": 222}
        # The naive cursor, had it stopped at high_id, would never return T1's row.
        with cloud.ctx.db.read() as session:
            after_naive = (
                session.execute(
                    text("SELECT id FROM changes WHERE feed = 'prices' AND id > :c"), {"c": high_id}
                )
                .scalars()
                .all()
            )
        assert low_id not in after_naive
    finally:
        cloud.close()


def test_a_long_open_transaction_holds_the_feed_back_without_skipping(postgres_url, tmp_path):
    from tests.cloud.conftest import _empty_postgres

    _empty_postgres(postgres_url)
    cloud = make_cloud(tmp_path / "cloud", postgres_url)
    try:
        store = cloud.store()
        cloud.import_catalog(catalog_csv(3))
        _, cursor, _ = store.pull_all("prices")
        conninfo = (
            make_url(postgres_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        with psycopg.connect(conninfo) as blocker:
            # Any open transaction that has written holds xmin back, even on another table.
            blocker.execute("UPDATE stores SET name = name WHERE id = 'S001'")
            for price in (500, 600, 700):
                cloud.import_catalog(catalog_csv(1, price=price))
            held = store.pull("prices", cursor).get_json()
            assert held["changes"] == []
            blocker.rollback()
        page = store.pull("prices", cursor).get_json()
        assert [c["data"]["unit_price"] for c in page["changes"]] == [701]
    finally:
        cloud.close()


def test_a_transaction_in_another_database_of_the_cluster_does_not_hold_the_feed(
    postgres_url, tmp_path
):
    from tests.cloud.conftest import _empty_postgres

    _empty_postgres(postgres_url)
    cloud = make_cloud(tmp_path / "cloud", postgres_url)
    try:
        store = cloud.store()
        cloud.import_catalog(catalog_csv(1))
        _, cursor, _ = store.pull_all("prices")
        url = make_url(postgres_url).set(drivername="postgresql")
        elsewhere = url.set(database="postgres").render_as_string(hide_password=False)
        here = url.render_as_string(hide_password=False)
        with psycopg.connect(elsewhere) as other:
            # Another service's transaction on the same server, older than the change below.
            other.execute("SELECT pg_current_xact_id()")
            cloud.import_catalog(catalog_csv(1, price=500))
            page = store.pull("prices", cursor).get_json()
            assert [c["data"]["unit_price"] for c in page["changes"]] == [501]
            cursor = page["next_cursor"]
            with psycopg.connect(here) as mine:
                # One in this database still holds it back, as it must.
                mine.execute("SELECT pg_current_xact_id()")
                cloud.import_catalog(catalog_csv(1, price=600))
                assert store.pull("prices", cursor).get_json()["changes"] == []
            assert [
                c["data"]["unit_price"] for c in store.pull("prices", cursor).get_json()["changes"]
            ] == [601]
    finally:
        cloud.close()
