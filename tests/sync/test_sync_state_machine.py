"""Sync as a state machine: sales, pushes, pulls, network faults (requests dropped, answers lost
after the cloud acted, duplicates, cut-short answers, 502/503), power cuts that lose what was not
fsynced, restarts, backups taken while trading and restored later (then `aisle edge recover`
and HQ's approval), in any order Hypothesis finds, against a real cloud process.

Always: the cloud never holds a sale twice, nor one the store never made; every sale the store
answered for is still in the store, unless a restored backup took it back, and then the cloud
either never had it or the store's recovery reports it; nothing halts, except a restored store
that found the cloud holds other events under its numbers, until it recovers. Whenever the
faults stop, the store drains and the cloud holds each sale exactly once.
``AISLE_TEST_STATEFUL_EXAMPLES`` sets how many runs (``make soak`` runs many more)."""

from __future__ import annotations

import itertools
import os
from collections import deque
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from edge.app import build_context
from edge.backup import restore_backup, take_backup
from edge.sync_client import recovery, service
from sync.protocol import ERR_DIVERGED
from tests.powerloss import unwatch, watch
from tests.sync.fault_proxy import FaultProxy
from tests.sync.harness import (
    CloudProcess,
    assert_exactly_once,
    edge_sales,
    new_store,
    now,
    runner,
    sell,
)

EXAMPLES = int(os.environ.get("AISLE_TEST_STATEFUL_EXAMPLES", "8"))
NETWORK_FAULTS = [
    "drop_request",
    "drop_response",
    "duplicate",
    "truncate",
    "bad_gateway",
    "unavailable",
]
_numbers = itertools.count(1)


class SyncMachine(RuleBasedStateMachine):
    cloud: CloudProcess
    root: object
    codes: dict[str, str]

    def __init__(self) -> None:
        super().__init__()
        self.store_id = f"M{next(_numbers):04d}"
        code = self.codes.pop(self.store_id, None) or self.cloud.add_stores([self.store_id])
        self.faults: deque[str] = deque()
        self.proxy = FaultProxy(self.cloud.port, self._next_fault).__enter__()
        self.store = new_store(self.root, self.store_id, **{"sync.batch_events": 3})
        service.enroll(
            self.store.settings,
            self.store.db,
            cloud_url=self.proxy.url,
            code=code if isinstance(code, str) else code[self.store_id],
            now=now(),
        )
        self.store.db.dispose()
        self.disk = watch(self.store.settings.database_path)
        self._reopen()
        self.answered: set[str] = set()
        self.backups: list[tuple[Path, set[str]]] = []
        self.lost: set[str] = set()  # answered sales a restored backup took back from the store
        self.reported: set[str] = set()  # sales the store's recoveries report the cloud holds
        self.restored = False  # restored and not yet recovered: it may halt on a divergence
        self.ever_restored = False

    def _next_fault(self) -> str:
        return self.faults.popleft() if self.faults else "pass"

    def _reopen(self) -> None:
        store = self.store
        store.ctx = build_context(store.settings, clock=store.clock, payments=store.payments)

    def teardown(self) -> None:
        try:
            self.store.db.dispose()
        finally:
            unwatch(self.disk)
            self.proxy.__exit__(None, None, None)

    @rule(count=st.integers(1, 4))
    def sell(self, count: int) -> None:
        self.answered.update(sell(self.store, count, items=1))

    @rule(drain=st.booleans())
    def push(self, drain: bool) -> None:
        """One run, or the background job's runs until the outbox is empty or the cloud cannot
        be reached."""
        sync = runner(self.store)
        for _ in range(10 if drain else 1):
            outcome = sync.run(push=True, force=True)
            if outcome.startswith("failed") or not self._pending():
                return

    def _pending(self) -> int:
        return int(service.status(self.store.db, now())["outbox_pending"])

    @rule()
    def pull(self) -> None:
        runner(self.store).run(pull=True, force=True)

    @rule(faults=st.lists(st.sampled_from(NETWORK_FAULTS), min_size=1, max_size=3))
    def network_faults(self, faults: list[str]) -> None:
        self.faults.extend(faults)

    @rule(power=st.booleans())
    def crash(self, power: bool) -> None:
        """A power cut (what was not fsynced is lost), or the server process killed (nothing
        committed is lost); then the store starts again."""
        if power:
            self.disk.cut()
        self.store.db.dispose()
        if power:
            self.disk.restore()
        self._reopen()

    @rule()
    def backup(self) -> None:
        """`aisle edge backup` while the store trades."""
        target = Path(str(self.root)) / f"{self.store_id}-backup-{next(_numbers)}"
        manifest = take_backup(self.store.settings, target, now=now())
        held = set(edge_sales(self.store))
        assert manifest.sales == len(held)
        self.backups.append((target, held))

    @precondition(lambda self: bool(self.backups))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        """The server stops and `aisle edge restore` puts one of the backups back."""
        target, held = data.draw(st.sampled_from(self.backups))
        self.store.db.dispose()
        unwatch(self.disk)
        restore_backup(self.store.settings, target, now=now())
        self.disk = watch(self.store.settings.database_path)
        self._reopen()
        self.lost |= self.answered - held
        self.answered &= held
        self.restored = self.ever_restored = True

    @precondition(lambda self: self.restored)
    @rule()
    def recover(self) -> None:
        """`aisle edge recover`, HQ approves at the cloud, the store moves onto a new stream."""
        self.faults.clear()
        link = service.link_of(self.store.db)
        assert link is not None
        client = service.client_for(self.store.settings, link)
        try:
            asked = recovery.request(self.store.db, client, now=now())
        except recovery.NothingToRecover:
            self.restored = False
            return
        approved = self.cloud.post(
            f"/api/v1/stores/{self.store_id}/recovery/approve", {"approved_by": "HQ"}
        )
        assert approved["id"] == asked.id and approved["status"] == "approved", approved
        resumed = recovery.resume_if_approved(
            self.store.db, client, store_id=self.store_id, now=now()
        )
        assert resumed is None, resumed
        report = service.status(self.store.db, now())["recovery"]
        assert report["cloud_only_sales_count"] == len(report["cloud_only_sales"])
        self.reported |= {s["id"] for s in report["cloud_only_sales"]}
        self.restored = False

    @rule()
    def heal(self) -> None:
        """The faults stop: the store (recovered if it was restored) drains, and the cloud
        holds each sale exactly once."""
        self.faults.clear()
        if self.restored:
            self.recover()
        sync = runner(self.store)
        for _ in range(50):
            sync.run(push=True, force=True)
            if not self._pending():
                break
        assert not self._pending()
        if not self.ever_restored:
            assert_exactly_once(self.cloud, self.store)
            return
        at_cloud = {s["id"]: s["total"] for s in self.cloud.sales_of(self.store_id)}
        at_store = edge_sales(self.store)
        assert {k: at_cloud.get(k) for k in at_store} == at_store, "a store sale is missing"
        extra = set(at_cloud) - set(at_store)
        assert extra <= self.lost, "the cloud holds a sale the store never made"
        assert extra <= self.reported, "a sale only the cloud holds was never reported"

    @invariant()
    def never_twice_never_invented_never_halted(self) -> None:
        at_store = edge_sales(self.store)
        assert self.answered <= set(at_store), "an answered sale is gone from the store"
        at_cloud = [s["id"] for s in self.cloud.sales_of(self.store_id)]
        assert len(at_cloud) == len(set(at_cloud)), "a sale arrived twice"
        invented = set(at_cloud) - set(at_store)
        assert invented <= self.lost, "the cloud holds a sale the store never made"
        status = service.status(self.store.db, now())
        allowed = {None, ERR_DIVERGED} if self.restored else {None}
        assert status["halted"] in allowed, status


def test_sync_holds_each_sale_once_whatever_happens(cloud, tmp_path_factory):
    machine = type("Machine", (SyncMachine,), {})
    machine.cloud = cloud
    machine.root = tmp_path_factory.mktemp("machine")
    # Each run enrolls a store of its own; registering most of them first keeps the runs quick.
    first = next(_numbers) + 1
    machine.codes = cloud.add_stores([f"M{n:04d}" for n in range(first, first + 2 * EXAMPLES)])
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
