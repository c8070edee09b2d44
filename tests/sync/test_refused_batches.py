"""A batch the cloud refuses as a whole is split, and an event refused even alone goes as a
stand-in that the cloud quarantines: nothing is sent unchanged forever, the queue moves on.

The cloud here is restarted with a smaller batch limit than the one the store learned at
enrollment (HQ tightened it), so the store's batches are refused with 413.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from edge.outbox.service import append_event
from edge.sync_client import service
from shared.ids import new_id
from tests.sync.harness import enrolled, runner, sell


def test_refused_batches_are_split_and_an_oversized_event_quarantined(cloud, tmp, store_id):
    store = enrolled(cloud, tmp, store_id)
    sell(store, 12)
    with store.db.write() as uow:  # one event far over any small limit: a very long sale
        append_event(
            uow.session,
            type="stock.moved",
            aggregate_id="BIG",
            payload={"movement_id": new_id(), "lines": [new_id() for _ in range(400)]},
            now=datetime.now(UTC),
        )
        uow.commit()
    sell(store, 3)
    cloud.stop()
    cloud.start(env={"AISLE_SYNC__MAX_BATCH_BYTES": "2048"})
    try:
        outcomes = [runner(store).run(push=True, force=True) for _ in range(3)]
        status = service.status(store.db, datetime.now(UTC))
        assert status["outbox_pending"] == 0, (outcomes, status)
        assert status["halted"] is None
        assert [q["seq"] for q in status["quarantined"]] == [13]
        assert "batch_too_large" in json.dumps(status["quarantined"])
        # The cloud holds the fifteen sales once, and the stand-in in its quarantine.
        numbers = [s["number"] for s in cloud.sales_of(store_id)]
        assert len(numbers) == len(set(numbers)) == 15
        quarantine = cloud.get("/api/v1/quarantine")["quarantined"]
        mine = [q for q in quarantine if q["store_id"] == store_id]
        assert [q["seq"] for q in mine] == [13]
        assert "could not send this stock.moved event" in mine[0]["reason"]
    finally:
        cloud.stop()
        cloud.start()
