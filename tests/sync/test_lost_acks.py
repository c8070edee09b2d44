"""A store that forgot what the cloud acknowledged sends those events again: the cloud holds them
already, identical, so they are acknowledged again and nothing halts.

Ack marks commit without an fsync of their own, so a power cut can drop the last few; a store
whose push answer was lost and that then sends smaller batches is in the same place. Only a
sequence number whose event differs is a divergence (a store restored from an old backup).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.sync_client import service
from tests.sync.harness import assert_exactly_once, enrolled, runner, sell


def forget_acks_after(store, seq: int) -> None:
    """What the store's database looks like when its last ack marks never reached the disk."""
    with store.db.raw_write() as tx:
        tx.run("UPDATE outbox SET pushed_at = NULL WHERE seq > ?", (seq,))
        tx.run("UPDATE sync_state SET acked_seq = ?", (seq,))
        tx.commit()


@pytest.mark.parametrize("batch_events", [500, 7])
def test_events_the_cloud_already_holds_are_acked_again_not_a_divergence(
    cloud, tmp, store_id, batch_events
):
    store = enrolled(cloud, tmp, store_id)
    sell(store, 30)
    assert "pushed 30 events" in runner(store).run(push=True)
    forget_acks_after(store, 4)
    # Smaller batches than the ones the cloud acknowledged, too: the answer's mark lies past
    # the end of every batch sent now.
    store = enrolled_again(store, batch_events)
    outcome = runner(store).run(push=True, force=True)
    status = service.status(store.db, datetime.now(UTC))
    assert status["halted"] is None, (outcome, status)
    assert status["acked_seq"] == 30
    assert status["outbox_pending"] == 0
    sell(store, 2)
    assert "pushed 2 events" in runner(store).run(push=True, force=True)
    assert_exactly_once(cloud, store)


def enrolled_again(store, batch_events: int):
    from tests.sync.harness import Store

    settings = store.settings.model_copy(
        update={"sync": store.settings.sync.model_copy(update={"batch_events": batch_events})}
    )
    return Store(settings, store.ctx, store.clock, store.tokens, store.devices, store.payments)


def test_a_store_whose_outbox_ends_before_the_clouds_mark_is_halted_as_restored(
    cloud, tmp, store_id
):
    # The other side of the rule: a store restored from an old backup holds fewer events than
    # the cloud acknowledged. It must stop and say so, never carry on under reused numbers.
    store = enrolled(cloud, tmp, store_id)
    sell(store, 10)
    assert "pushed 10 events" in runner(store).run(push=True)
    with store.db.raw_write() as tx:  # the database as a copy taken after the 6th event holds it
        tx.run("DELETE FROM outbox WHERE seq > 6")
        tx.run("UPDATE counters SET value = 6 WHERE name = 'outbox'")
        tx.commit()
    forget_acks_after(store, 3)
    runner(store).run(push=True, force=True)
    status = service.status(store.db, datetime.now(UTC))
    assert status["halted"] == "sequence_diverged"
    assert "restored" in status["last_error"]["message"]
