"""Push: every event applied exactly once, in each store's sequence order, whatever the edge
resends, skips or reorders; poison events quarantined while the rest flows on."""

from __future__ import annotations

from sqlalchemy import func, select

from cloud.ingest.models import AppliedEvent, Quarantined
from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from tests.cloud.harness import exit_event, return_event, sale_event, sales, stock_event


def _count(cloud, model, store_id="S001") -> int:
    with cloud.ctx.db.read() as session:
        query = select(func.count()).select_from(model)
        if hasattr(model, "store_id"):
            query = query.where(model.store_id == store_id)
        return int(session.execute(query).scalar_one())


def _totals(cloud, store_id="S001") -> tuple[int, int]:
    with cloud.ctx.db.read() as session:
        count, total = session.execute(
            select(func.count(), func.coalesce(func.sum(Sale.total), 0)).where(
                Sale.store_id == store_id
            )
        ).one()
    return int(count), int(total)


def test_a_batch_applies_every_event_type_and_acks_the_high_water(cloud):
    store = cloud.store()
    sale = sale_event(1, "S001", lines=3)
    events = [
        sale,
        stock_event(2),
        return_event(3, "S001", sale),
        exit_event(4, "S001", sale["aggregate_id"]),
    ]
    response = store.push(events)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["acked_seq"] == 4
    assert body["resume_from"] == 5
    assert body["applied"] == 4
    assert body["duplicates"] == 0
    assert body["quarantined"] == []
    assert body["gap_at"] is None
    assert _count(cloud, Sale) == 1
    assert _count(cloud, SaleLine) == 3
    assert _count(cloud, StockMovement) == 1
    assert _count(cloud, Return) == 1
    assert _count(cloud, ExitPassUse) == 1


def test_a_duplicate_batch_is_acknowledged_without_applying_twice(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 6))
    first = store.push(events).get_json()
    totals = _totals(cloud)
    again = store.push(events)  # the answer was lost: the edge sends the same batch again
    assert again.status_code == 200
    body = again.get_json()
    assert (body["acked_seq"], body["applied"], body["duplicates"]) == (5, 0, 5)
    assert first["acked_seq"] == 5
    assert _totals(cloud) == totals
    assert _count(cloud, AppliedEvent) == 5


def test_an_overlapping_batch_applies_only_the_new_part(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 9))
    store.push(events[:5])
    body = store.push(events[3:]).get_json()
    assert (body["acked_seq"], body["applied"], body["duplicates"]) == (8, 3, 2)
    assert _totals(cloud)[0] == 8


def test_a_gap_is_never_skipped_the_answer_says_where_to_resume(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 11))
    store.push(events[:3])
    body = store.push(events[5:]).get_json()  # seq 4 and 5 were lost on the way
    assert body["applied"] == 0
    assert body["acked_seq"] == 3
    assert body["resume_from"] == 4
    assert body["gap_at"] == 6
    assert _totals(cloud)[0] == 3
    body = store.push(events[3:]).get_json()
    assert (body["acked_seq"], body["applied"], body["gap_at"]) == (10, 7, None)


def test_a_hole_inside_a_batch_applies_the_prefix_only(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 7))
    body = store.push(events[:2] + events[3:]).get_json()
    assert (body["acked_seq"], body["applied"], body["gap_at"]) == (2, 2, 4)


def test_reordered_batches_converge_to_each_event_once(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 13))
    batches = [events[0:4], events[4:8], events[8:12]]
    # Later batches overtake earlier ones; the edge resends from resume_from each time.
    for batch in (batches[2], batches[1], batches[0], batches[2], batches[1], batches[2]):
        store.push(batch)
    assert store.push(batches[2]).get_json()["acked_seq"] == 12
    count, total = _totals(cloud)
    assert count == 12
    assert total == sum(e["payload"]["sale"]["total"] for e in events)


def test_stores_have_their_own_sequences(cloud):
    a, b = cloud.store("S001"), cloud.store("S002")
    assert a.push(sales("S001", range(1, 4))).get_json()["acked_seq"] == 3
    assert b.push(sales("S002", range(1, 3))).get_json()["acked_seq"] == 2
    assert _totals(cloud, "S001")[0] == 3
    assert _totals(cloud, "S002")[0] == 2


def test_a_restored_store_is_refused_never_merged(cloud):
    store = cloud.store()
    store.push(sales("S001", range(1, 6)))
    totals = _totals(cloud)
    # The store's database came back from a backup taken at seq 3: seq 4 is now another sale.
    restored = sales("S001", range(4, 7))
    response = store.push(restored)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "sequence_diverged"
    assert error["details"]["seq"] == 4
    assert error["details"]["offered_event_id"] == restored[0]["id"]
    assert error["details"]["acked_seq"] == 5
    assert _totals(cloud) == totals
    # The stream stays frozen: even new seqs are not taken from a diverged store.
    later = store.push(sales("S001", range(6, 8)))
    assert later.status_code == 409
    assert later.get_json()["error"]["code"] == "sequence_diverged"
    state = cloud.hq("/api/v1/stores/S001/sync-state").get_json()
    assert state["diverged"] is True
    assert state["high_water_seq"] == 5


def test_the_same_event_id_under_a_new_seq_is_a_divergence(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 3))
    store.push(events)
    replayed = dict(events[0], seq=3)
    response = store.push([replayed])
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "sequence_diverged"


def test_an_event_id_sent_again_under_a_new_seq_is_refused_with_its_whole_batch(cloud):
    # The projection takes the event (a new movement id): only the unique index on the store's
    # event ids refuses it, after the batch's rows went in, and the whole batch rolls back.
    store = cloud.store()
    first = sales("S001", range(1, 4))
    store.push(first)
    totals = _totals(cloud)
    again = dict(stock_event(5), id=first[1]["id"])
    response = store.push([sale_event(4, "S001"), again, sale_event(6, "S001")])
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "sequence_diverged"
    assert (error["details"]["seq"], error["details"]["offered_event_id"]) == (5, first[1]["id"])
    assert error["details"]["acked_seq"] == 3
    assert _totals(cloud) == totals
    assert _count(cloud, StockMovement) == 0
    assert _count(cloud, AppliedEvent) == 3
    assert cloud.hq("/api/v1/stores/S001/sync-state").get_json()["diverged"] is True


def test_events_sent_again_with_holes_between_them_are_each_checked(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 7))
    store.push(events)
    body = store.push([events[0], events[1], events[3], events[4]]).get_json()
    assert (body["acked_seq"], body["applied"], body["duplicates"]) == (6, 0, 4)
    other = sale_event(4, "S001")
    response = store.push([events[0], events[1], other, events[4]])
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["seq"] == 4
    assert response.get_json()["error"]["details"]["applied_event_id"] == events[3]["id"]


def test_event_ids_that_are_not_uuids_are_applied_once_all_the_same(cloud):
    # The wire allows any id of 1-64 characters; the cloud keys one that is not a UUID by its
    # name-based UUID, so a resend is still a duplicate and a reuse still a divergence.
    store = cloud.store()
    events = sales("S001", range(1, 4))
    events[1]["id"], events[2]["id"] = "evt-2", events[2]["id"].upper()
    assert store.push(events).get_json()["applied"] == 3
    body = store.push(events).get_json()
    assert (body["acked_seq"], body["applied"], body["duplicates"]) == (3, 0, 3)
    response = store.push([dict(events[1], seq=4)])
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["offered_event_id"] == "evt-2"
    assert _count(cloud, AppliedEvent) == 3


def test_poison_events_are_quarantined_and_the_rest_flows_on(cloud):
    store = cloud.store()
    good = sales("S001", range(1, 7))
    unknown = dict(good[1], type="loyalty.teleported")
    bad_payload = dict(
        good[3], payload={"store_id": "S001", "sale": {"id": "x"}, "schema_version": 3}
    )
    response = store.push([good[0], unknown, good[2], bad_payload, good[4], good[5]])
    body = response.get_json()
    assert response.status_code == 200
    assert body["acked_seq"] == 6
    assert body["applied"] == 4
    assert [(q["seq"], q["type"]) for q in body["quarantined"]] == [
        (2, "loyalty.teleported"),
        (4, "sale.completed"),
    ]
    assert "unknown event type" in body["quarantined"][0]["reason"]
    assert "invalid sale.completed payload" in body["quarantined"][1]["reason"]
    assert _totals(cloud)[0] == 4
    # Later events keep flowing; a resend of the poison is a duplicate, not a new quarantine.
    body = store.push([unknown, *sales("S001", range(7, 9))]).get_json()
    assert (body["acked_seq"], body["applied"], body["duplicates"]) == (8, 2, 1)
    assert _count(cloud, Quarantined) == 2
    state = cloud.hq("/api/v1/stores/S001/sync-state").get_json()
    assert state["quarantined"] == 2
    assert state["events_applied"] == 6


def test_a_row_the_database_refuses_is_quarantined_alone(cloud):
    store = cloud.store()
    first = sale_event(1, "S001")
    # Same sale id again under a new event: the projection's primary key refuses it.
    duplicate_sale = sale_event(2, "S001")
    duplicate_sale["payload"]["sale"]["id"] = first["aggregate_id"]
    duplicate_sale["aggregate_id"] = first["aggregate_id"]
    third = sale_event(3, "S001")
    body = store.push([first, duplicate_sale, third]).get_json()
    assert body["acked_seq"] == 3
    assert [q["seq"] for q in body["quarantined"]] == [2]
    assert "database refused" in body["quarantined"][0]["reason"]
    assert _totals(cloud)[0] == 2


def test_payload_naming_another_store_is_quarantined(cloud):
    store = cloud.store()
    body = store.push([sale_event(1, "S999")]).get_json()
    assert body["acked_seq"] == 1
    assert "names store 'S999'" in body["quarantined"][0]["reason"]
    assert _totals(cloud)[0] == 0


def test_concurrent_pushes_of_one_store_apply_each_event_once(cloud):
    import threading

    store = cloud.store()
    events = sales("S001", range(1, 41))
    bodies = [store.batch(events[i : i + 20]) for i in (0, 10, 20, 0, 20)]
    answers: list[int] = []
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> None:
        barrier.wait()
        answers.append(store.signed("POST", "/api/v1/sync/push", body).status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(bodies)
    # Whatever interleaving happened, a final resend from the start converges exactly once.
    for start in range(0, 40, 20):
        store.push(events[start : start + 20])
    count, total = _totals(cloud)
    assert count == 40
    assert total == sum(e["payload"]["sale"]["total"] for e in events)
    assert _count(cloud, AppliedEvent) == 40


def test_a_large_batch_goes_in_whole_and_a_refused_row_in_it_is_quarantined_alone(cloud):
    # Big enough that PostgreSQL takes the sales and their lines by COPY: the same outcome as
    # row by row, including a row the database refuses halfway through.
    store = cloud.store()
    events = [sale_event(seq, "S001", lines=3) for seq in range(1, 81)]
    events[40]["payload"]["sale"]["id"] = events[10]["aggregate_id"]
    events[40]["aggregate_id"] = events[10]["aggregate_id"]
    body = store.push(events).get_json()
    assert body["acked_seq"] == 80
    assert [q["seq"] for q in body["quarantined"]] == [41]
    assert "database refused" in body["quarantined"][0]["reason"]
    assert _count(cloud, Sale) == 79
    assert _count(cloud, SaleLine) == 79 * 3
    assert _totals(cloud)[0] == 79
