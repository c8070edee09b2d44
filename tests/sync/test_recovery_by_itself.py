"""Pulls and backoff that recover by themselves: a bad feed page shows on the status, applies
nothing and is tried again later; a clock that ran ahead and was put right does not keep the
store waiting; a cloud that asks for time with ``Retry-After`` gets it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.catalog.models import Product
from edge.sync_client import service
from edge.sync_client.scheduler import SyncRunner
from edge.sync_client.state import may_attempt, record_failure
from edge.sync_client.transport import CloudUnavailable
from sync.protocol import FeedChange, PullPage
from tests.sync.harness import enrolled, new_store, runner


def _failure(store, error, *, now=None, max_s=60.0) -> float:
    return record_failure(
        store.db,
        error,
        now=now or datetime.now(UTC),
        initial_s=1.0,
        max_s=max_s,
        rng=random.Random(1),
    )


def test_a_clock_that_ran_ahead_and_was_corrected_does_not_keep_the_store_waiting(tmp_path):
    store = new_store(tmp_path, "T900")
    # The store's clock was three days fast when the push failed; then NTP put it right.
    _failure(
        store,
        CloudUnavailable("cloud unreachable", code="cloud_unreachable"),
        now=datetime.now(UTC) + timedelta(days=3),
    )
    real_now = datetime.now(UTC)
    assert not may_attempt(store.db, real_now)  # the backoff itself still holds
    # Once the backoff has run (on the monotonic clock), the store tries again: not in 3 days.
    with store.db.raw_write() as tx:
        tx.run("UPDATE sync_state SET next_attempt_mono = next_attempt_mono - 5")
        tx.commit()
    assert may_attempt(store.db, real_now)
    store.db.dispose()


def test_a_deadline_further_away_than_the_longest_backoff_is_not_kept(tmp_path):
    # A deadline from before a reboot (another monotonic clock) or from a broken row.
    store = new_store(tmp_path, "T902")
    _failure(store, CloudUnavailable("away", code="cloud_unreachable"), max_s=60.0)
    with store.db.raw_write() as tx:
        tx.run("UPDATE sync_state SET next_attempt_mono = next_attempt_mono + 1e9")
        tx.commit()
    assert may_attempt(store.db, datetime.now(UTC), max_s=60.0)
    store.db.dispose()


def test_retry_after_is_honoured_up_to_a_bound(tmp_path):
    store = new_store(tmp_path, "T901")
    asked = CloudUnavailable("busy", code="http_503", status=503, retry_after_s=45.0)
    assert _failure(store, asked, max_s=60.0) >= 45.0
    assert not may_attempt(store.db, datetime.now(UTC) + timedelta(seconds=30))
    greedy = CloudUnavailable("busy", code="http_429", status=429, retry_after_s=86_400.0)
    assert _failure(store, greedy, max_s=60.0) <= 600.0  # never more than ten minutes
    store.db.dispose()


class BadFeedClient:
    """A cloud whose catalog feed serves an item this store cannot apply (a product without a
    name, as a cloud of another version might send), and is fine otherwise."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def pull(self, feed: str, *, cursor: str | None, limit: int, now: datetime) -> PullPage:
        if feed != "catalog":
            return self.real.pull(feed, cursor=cursor, limit=limit, now=now)
        good = {"sku": "GOOD", "name": "Good", "unit_price": 100, "tax_rate_bp": 900}
        good.update(sold_by="each", barcodes=[])
        bad = {"sku": "BAD", "name": None, "unit_price": "free"}
        return PullPage(
            feed="catalog",
            changes=(FeedChange("GOOD", good), FeedChange("BAD", bad)),
            next_cursor="1.99.0",
            has_more=False,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_bad_feed_page_is_recorded_applies_nothing_and_pulling_goes_on(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    sync = runner(
        store,
        client_factory=lambda settings, link: BadFeedClient(service.client_for(settings, link)),
    )
    outcome = sync.run(pull=True, push=False, force=True)
    assert "bad_feed_page" in outcome
    status = service.status(store.db, datetime.now(UTC))
    assert status["last_error"]["code"] == "bad_feed_page"
    assert "catalog" in status["last_error"]["message"]
    assert "BAD" in status["last_error"]["message"]
    with store.db.read() as session:
        assert session.get(Product, "GOOD") is None  # the page is all or nothing
    # A good cloud again: the pull works and the error clears.
    assert "failed" not in SyncRunner(store.settings, store.db, store.clock).run(
        pull=True, push=False, force=True
    )
    assert service.status(store.db, datetime.now(UTC))["last_error"] is None
