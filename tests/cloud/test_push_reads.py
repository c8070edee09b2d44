"""A push reads about as many rows as its batch holds, whatever the store's history.

Counted by PostgreSQL itself (``cloud/ingest/plan_guard.py``) on a database of the test's own
that was never analyzed, with ``plan_cache_mode = force_generic_plan``: the plans a long-lived
connection runs once psycopg has prepared its statements, on a server with autovacuum off or
after a restore. A statement that filtered a list of ids or seqs over the store's events read
all of them, on every batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cloud.db import Base, Database
from cloud.ingest.plan_guard import GENERIC_PLANS, counting_reads, over_bound
from cloud.ingest.service import push
from cloud.migrations import upgrade
from shared.ids import new_id
from sync.protocol import Batch, WireEvent
from tests.cloud.harness import T0, Cloud, make_cloud, sale_event

pytestmark = pytest.mark.postgres

#: Events the store already sent; another store has as many beside it.
HISTORY = 30_000
RESENT, NEW, LINES = 100, 100, 5
#: What the batch writes: its events, and each new sale with its lines.
BATCH_ROWS = RESENT + NEW + NEW * (1 + LINES)
#: The guard of the ingest benchmark: no statement reads more than ten times that.
BOUND = 10 * BATCH_ROWS


def _driver_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def cloud_with_history(fresh_postgres_url: str, tmp_path: Path) -> Iterator[Cloud]:
    """Stores S001 and S002 with ``HISTORY`` applied events each, and no table statistics."""
    db = Database.open(fresh_postgres_url)
    upgrade(db.writer)
    db.dispose()
    with psycopg.connect(_driver_url(fresh_postgres_url), autocommit=True) as conn:
        for table in Base.metadata.sorted_tables:  # so no analyze can come between
            conn.execute(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)')
    cloud = make_cloud(tmp_path / "cloud", fresh_postgres_url)
    for store_id in ("S001", "S002"):
        cloud.store(store_id)
    with psycopg.connect(_driver_url(fresh_postgres_url), autocommit=True) as conn:
        for store_id in ("S001", "S002"):
            conn.execute(
                "INSERT INTO applied_events (store_id, seq, event_id, type, status, received_at) "
                "SELECT %s, g, gen_random_uuid(), 'sale.completed', 'applied', %s "
                "FROM generate_series(1, %s) g",
                (store_id, T0.replace(tzinfo=None), HISTORY),
            )
            conn.execute(
                "UPDATE sync_states SET high_water_seq = %s WHERE store_id = %s",
                (HISTORY, store_id),
            )
        (analyzed,) = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'applied_events'"
        ).fetchone() or (0,)
        assert analyzed == 0
    yield cloud
    cloud.close()


def _batch(cloud: Cloud) -> Batch:
    """The last ``RESENT`` events again (a lost answer), then ``NEW`` new sales."""
    with cloud.ctx.db.read() as session:
        recorded = session.execute(
            text(
                "SELECT seq, event_id::text FROM applied_events "
                "WHERE store_id = 'S001' AND seq > :after ORDER BY seq"
            ),
            {"after": HISTORY - RESENT},
        ).all()
    resent = [
        WireEvent(seq, event_id, "sale.completed", "", {}, T0.isoformat())
        for seq, event_id in recorded
    ]
    new = [WireEvent(**sale_event(HISTORY + i, "S001", lines=LINES)) for i in range(1, NEW + 1)]
    return Batch("S001", new_id(), (*resent, *new))


def test_no_statement_of_a_push_reads_the_stores_history(cloud_with_history: Cloud) -> None:
    cloud = cloud_with_history
    url = make_url(cloud.ctx.db.url).update_query_dict({"options": GENERIC_PLANS})
    db = Database.open(url.render_as_string(hide_password=False))
    try:
        with counting_reads(db.writer) as transactions:
            result = push(db, store_id="S001", batch=_batch(cloud), now=T0)
        assert (result.applied, result.duplicates, result.quarantined) == (NEW, RESENT, ())
        (pushed,) = transactions
        shapes = [s.shape for s in pushed.statements]
        assert any("applied_events" in shape for shape in shapes), shapes
        assert over_bound(pushed, BOUND) == []
        assert pushed.total <= BOUND
        # The count sees a statement that reads the history, so the bound above can fail.
        with counting_reads(db.writer) as transactions, db.read() as session:
            session.execute(
                text("SELECT count(*) FROM applied_events WHERE store_id = 'S001'")
            ).one()
        assert transactions[0].statements[0].rows_read >= HISTORY
    finally:
        db.dispose()
