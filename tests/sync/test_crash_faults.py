"""Processes killed with SIGKILL at named points of the sync protocol, on both sides, then
healed: nothing is lost, nothing is applied twice (the store's outbox against the cloud's rows),
and the backlog reaches zero once the faults stop."""

from __future__ import annotations

import os
import random
import signal

import pytest
from sqlalchemy import func, select

from edge.catalog.models import Product
from edge.sync_client import service
from edge.sync_client.models import FeedCursor
from tests.sync.harness import (
    assert_exactly_once,
    chain_catalog,
    enrolled,
    now,
    run_cli,
    runner,
    sell,
    write_config,
)

KILLED = -signal.SIGKILL
EDGE_POINTS = ["edge.push.after_answer", "edge.push.mid_ack", "edge.pull.mid_apply"]
CLOUD_POINTS = ["cloud.push.before_commit", "cloud.push.after_commit"]


def sync_now(config, **env):
    return run_cli("edge", "sync-now", "--config", config, env=env, check=False)


def pulled(store):
    with store.db.read() as session:
        products = session.scalar(select(func.count()).select_from(Product))
        cursors = {c.feed: c.changes_applied for c in session.execute(select(FeedCursor)).scalars()}
    return products, cursors


@pytest.fixture(scope="module")
def chain_products(cloud, tmp_path_factory):
    """The chain's catalog at the cloud: something for pull pages to carry."""
    path = chain_catalog(tmp_path_factory.mktemp("catalog"), 120)
    cloud.cli("import-catalog", str(path))
    return 120


@pytest.mark.store_faults
@pytest.mark.parametrize("point", EDGE_POINTS)
def test_the_store_killed_at_a_sync_step_loses_and_repeats_nothing(
    cloud, tmp, store_id, chain_products, point
):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 3})
    config = write_config(store)
    sell(store, 7)
    before = pulled(store)
    died = sync_now(config, AISLE_FAULT_POINT=point, AISLE_FAULT_AFTER="1")
    assert died.returncode == KILLED, died.stdout + died.stderr
    if point == "edge.pull.mid_apply":
        # The page applied before the kill is whole; the one being applied left no trace.
        products, cursors = pulled(store)
        assert products - before[0] == cursors.get("catalog", 0)
    healed = sync_now(config)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert_exactly_once(cloud, store)
    products, cursors = pulled(store)
    assert cursors["catalog"] >= chain_products
    assert products == before[0] + chain_products


@pytest.mark.parametrize("point", CLOUD_POINTS)
def test_the_cloud_killed_at_a_push_step_loses_and_repeats_nothing(cloud, tmp, store_id, point):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 4})
    sell(store, 9)
    flag = tmp / "die-once"
    flag.touch()
    cloud.stop()
    cloud.start(env={"AISLE_FAULT_POINT": point, "AISLE_FAULT_FILE": str(flag)})
    try:
        sync = runner(store)
        outcome = sync.run(push=True)
        assert not flag.exists(), "the cloud never reached the fault point"
        assert outcome.startswith("failed"), outcome
        # The cloud's master replaced the dead worker: the retry finds the batch applied
        # (after_commit) or not (before_commit) and either way applies each event once.
        assert "failed" not in sync.run(push=True, force=True)
        assert_exactly_once(cloud, store)
    finally:
        cloud.stop()
        cloud.start()


KILLS = int(os.environ.get("AISLE_TEST_KILLS", "12"))


@pytest.mark.store_faults
def test_random_kills_of_the_store_mid_sync(cloud, tmp, store_id, chain_products):
    """``AISLE_TEST_KILLS`` kills (12; ``make soak`` runs 100) at random points of push and pull."""
    rng = random.Random(20261126)
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 2})
    config = write_config(store)
    kills = runs = 0
    while kills < KILLS:
        runs += 1
        assert runs <= 2 * KILLS, f"only {kills} kills in {runs} runs"
        sell(store, rng.randint(0, 3))
        # The pull point fires only while the chain catalog is still arriving; the push
        # points fire whenever something is waiting.
        point = rng.choice([*EDGE_POINTS, "edge.push.after_answer", "edge.push.mid_ack"])
        done = sync_now(config, AISLE_FAULT_POINT=point, AISLE_FAULT_AFTER=str(rng.randint(0, 1)))
        assert done.returncode in (0, KILLED), done.stdout + done.stderr
        kills += done.returncode == KILLED
    healed = sync_now(config)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert_exactly_once(cloud, store)
    assert service.status(store.db, now())["outbox_pending"] == 0
    assert pulled(store)[1]["catalog"] >= chain_products
