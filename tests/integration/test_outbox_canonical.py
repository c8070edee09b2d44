"""The outbox writes an event's payload with the wire's one canonical JSON: the bytes a batch
carries are the bytes stored, and a payload the wire cannot carry (NaN, infinity) is refused at
the write, with nothing written, never stored for the cloud to refuse later."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edge.outbox.service import append_event
from sync.protocol import canonical_json
from tests.builders import T0, make_store


def _rows(store) -> list[tuple[int, str]]:
    with store.db.raw_read() as tx:
        return [(int(r[0]), str(r[1])) for r in tx.all("SELECT seq, payload FROM outbox")]


def test_the_stored_payload_is_the_wire_canonical_json(tmp_path: Path):
    store = make_store(tmp_path / "s")
    payload = {"b": [1, "é"], "a": {"z": 0.5, "y": None}}
    with store.db.write() as uow:
        append_event(uow.session, type="stock.moved", aggregate_id="A1", payload=payload, now=T0)
        uow.commit()
    assert _rows(store) == [(1, canonical_json(payload).decode())]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_payload_the_wire_cannot_carry_is_refused_and_nothing_is_written(tmp_path, bad):
    store = make_store(tmp_path / "s")
    with pytest.raises(ValueError), store.db.write() as uow:
        append_event(uow.session, type="stock.moved", aggregate_id="A1", payload={"x": bad}, now=T0)
        uow.commit()
    assert _rows(store) == []
    with store.db.write() as uow:  # the sequence did not move either
        append_event(uow.session, type="stock.moved", aggregate_id="A2", payload={}, now=T0)
        uow.commit()
    assert [seq for seq, _ in _rows(store)] == [1]
