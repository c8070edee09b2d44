"""The store talks to the cloud through a proxy that drops, duplicates, holds back (reorders),
delays past the timeout, truncates and answers 502/503: safety (each sale once, the outbox
against the cloud's rows) holds under every fault, and once the network heals the backlog
reaches zero (liveness)."""

from __future__ import annotations

import itertools
import random

import pytest

from edge.sync_client import service
from tests.sync.fault_proxy import FAULTS, FaultProxy, random_plan
from tests.sync.harness import (
    assert_exactly_once,
    chain_catalog,
    enrolled,
    now,
    runner,
    sell,
)

SETTINGS = {
    "sync.batch_events": 3,
    "sync.read_timeout_s": 1.0,
    "sync.connect_timeout_s": 1.0,
}


@pytest.fixture(scope="module")
def chain_products(cloud, tmp_path_factory):
    path = chain_catalog(tmp_path_factory.mktemp("net-catalog"), 40, prefix="NET")
    cloud.cli("import-catalog", str(path))
    return 40


def through(proxy, cloud, tmp, store_id):
    """A store enrolled with the cloud at the proxy's address (enrollment itself unharmed)."""
    return enrolled(cloud, tmp, store_id, via=proxy.url, **SETTINGS)


def heal(proxy, store):
    proxy.plan = lambda: "pass"
    sync = runner(store)
    for _ in range(3):  # a held request may land meanwhile; every run must then agree
        outcome = sync.run(push=True, pull=True, force=True)
        assert "failed" not in outcome, outcome
    assert service.status(store.db, now())["outbox_pending"] == 0


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "pass"])
def test_one_fault_then_the_network_heals(cloud, tmp, store_id, fault):
    faults = itertools.chain([fault], itertools.repeat("pass"))
    with FaultProxy(cloud.port, delay_s=1.5) as proxy:
        store = through(proxy, cloud, tmp, store_id)
        proxy.plan = lambda: next(faults)
        sell(store, 5)
        first = runner(store).run(push=True, force=True)
        if fault in ("drop_request", "drop_response", "delay", "truncate", "hold"):
            assert first.startswith("failed"), first
        heal(proxy, store)
        assert proxy.seen[fault] == 1
    assert_exactly_once(cloud, store)


def test_a_storm_of_random_faults_loses_and_repeats_nothing(cloud, tmp, store_id, chain_products):
    rng = random.Random(7)
    with FaultProxy(cloud.port, delay_s=1.2) as proxy:
        store = through(proxy, cloud, tmp, store_id)
        proxy.plan = random_plan(11, pass_share=0.35)
        sync = runner(store)
        for i in range(60):
            sell(store, rng.randint(0, 2))
            sync.run(push=True, pull=i % 6 == 0, force=True)
        assert set(proxy.seen) == set(FAULTS), proxy.seen
        heal(proxy, store)
    assert_exactly_once(cloud, store)
    assert service.status(store.db, now())["feeds"]["catalog"]["changes_applied"] >= chain_products
