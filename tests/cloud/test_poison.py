"""A poison event never blocks a store: whatever is wrong with one event, it is quarantined with
its reason and the events around it are applied, on SQLite and on PostgreSQL alike.

Each poison here once answered 500 at the push, so the store retried the same batch forever.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from cloud.sales.models import Sale, StockMovement
from tests.cloud.harness import sale_event, stock_event


def _sale_with(change: Callable[[dict[str, Any]], None]) -> Callable[[int, str], dict[str, Any]]:
    def make(seq: int, store_id: str) -> dict[str, Any]:
        event = sale_event(seq, store_id)
        change(event["payload"]["sale"])
        return event

    return make


def _stock_with(**changes: Any) -> Callable[[int, str], dict[str, Any]]:
    def make(seq: int, store_id: str) -> dict[str, Any]:
        event = stock_event(seq)
        event["payload"].update(changes)
        return event

    return make


def _line(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(sale: dict[str, Any]) -> None:
        sale["lines"][0].update(changes)

    return change


POISONS = {
    "quantity 2^70": _stock_with(quantity=2**70),
    "on hand -2^70": _stock_with(on_hand_after=-(2**70)),
    "line quantity 2^70": _sale_with(_line(quantity=2**70)),
    "year 9999 with an offset": _stock_with(at="9999-12-31T23:59:59-05:00"),
    "year 1 with an offset": _stock_with(at="0001-01-01T00:00:00+05:00"),
    "sale time in year 1": _sale_with(lambda s: s.update(created_at="0001-01-01T00:00:00+14:00")),
    "a NUL in a name": _sale_with(_line(name="Milk\x00")),
    "a NUL in a reason": _stock_with(reason="dam\x00aged"),
    "a direction override in a sku": _stock_with(sku="SKU\u202e1"),
    "a float quantity": _stock_with(quantity=1.5),
    "a huge total": _sale_with(lambda s: s.update(total=10**30)),
    "nested payload": _stock_with(ref_id={"a": [1, 2, 3]}),
}


@pytest.mark.parametrize("name", list(POISONS))
def test_a_poison_event_is_quarantined_and_its_neighbours_applied(cloud, name):
    store = cloud.store()
    events = [
        sale_event(1, "S001"),
        copy.deepcopy(POISONS[name](2, "S001")),
        stock_event(3),
    ]
    response = store.push(events)
    assert response.status_code == 200, response.get_data()[:500]
    answer = response.get_json()
    assert answer["acked_seq"] == 3
    assert [q["seq"] for q in answer["quarantined"]] == [2]
    assert answer["quarantined"][0]["reason"]
    with cloud.ctx.db.read() as session:
        assert session.execute(select(func.count()).select_from(Sale)).scalar_one() == 1
        movements = session.execute(select(func.count()).select_from(StockMovement)).scalar_one()
        assert movements == 1
    # The queue moves on: the next batch applies.
    assert store.push([sale_event(4, "S001")]).get_json()["acked_seq"] == 4
