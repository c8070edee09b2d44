"""Store clocks are data, not order: a store whose clock is days off, or jumps back, still
syncs exactly once and its skew is reported on both sides; a store offline for three days of
trading drains its backlog oldest first once the link returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.sync_client import service
from edge.sync_client.scheduler import SyncRunner
from tests.sync.harness import assert_exactly_once, enrolled, outbox_count, runner, sell

DAY = 86_400


class SkewedClock:
    """The real time shifted by ``offset``; the test moves the offset (NTP gone wrong)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_a_store_clock_days_off_and_jumping_back_still_syncs_and_is_reported(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    clock = SkewedClock(timedelta(days=3))
    sync = SyncRunner(store.settings, store.db, clock)
    sell(store, 4)
    assert "pushed 4 events" in sync.run(push=True), "a clock three days ahead must not block"
    reported = cloud.sync_state(store_id)["clock_skew_s"]
    assert abs(reported - 3 * DAY) < 60
    assert abs(service.status(store.db, clock.now())["clock_skew_s"] - 3 * DAY) < 60
    # The clock is "fixed" and jumps back five days (two days behind the cloud); the store's
    # own sale times jump back too. Order comes from the sequence, not from the clocks.
    clock.offset = timedelta(days=-2)
    store.clock.advance(days=-5)
    sell(store, 3)
    assert "pushed 3 events" in sync.run(push=True, force=True)
    assert abs(cloud.sync_state(store_id)["clock_skew_s"] + 2 * DAY) < 60
    assert_exactly_once(cloud, store)
    sales = cloud.sales_of(store_id)
    assert [s["seq"] for s in sales] == sorted(s["seq"] for s in sales)


def test_three_days_offline_then_the_backlog_drains_oldest_first(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id, **{"sync.batch_events": 50})
    sync = runner(store)
    sell(store, 2)
    sync.run(push=True)
    cloud.stop()
    try:
        for _day in range(3):  # three trading days with no link
            for _hour in range(12):
                sell(store, 5)
                store.clock.advance(hours=1)
                assert sync.run(push=True, force=True).startswith("failed")
            store.clock.advance(hours=12)
        status = service.status(store.db, datetime.now(UTC))
        assert status["outbox_pending"] == 180 and status["online"] is False
        assert status["consecutive_failures"] == 36
    finally:
        cloud.start()
    outcome = sync.run(push=True, force=True)
    assert "pushed 180 events" in outcome, outcome
    assert service.status(store.db, datetime.now(UTC))["outbox_pending"] == 0
    assert_exactly_once(cloud, store)
    assert outbox_count(store) == 182
