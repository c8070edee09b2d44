"""The wire contract's schemas: versions read or refused, bounds held, feed items checked."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from sync import contract
from sync.contract import (
    EVENTS,
    MAX_INT,
    CatalogItem,
    StockMoved,
    UnreadableEvent,
    read_event,
)

AT = "2026-11-25T09:30:00+00:00"


def _moved(**changes: Any) -> dict[str, Any]:
    payload = StockMoved(
        movement_id="m-1",
        sku="MILK1L",
        quantity=24,
        kind="receive",
        reason="delivery",
        on_hand_after=24,
        at=AT,
    ).to_dict()
    payload.update(changes)
    return payload


class _StockMovedV2(StockMoved):
    """Version 2 renamed ``reason`` to ``note``."""

    SCHEMA_VERSION: ClassVar[int] = 2
    reason: str = ""
    note: str = ""

    @classmethod
    def upgrade(cls, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        assert version == 1
        return {**payload, "note": payload.get("reason", "")}


def test_a_payload_reads_back_into_itself_with_its_version():
    payload = _moved()
    assert payload["schema_version"] == StockMoved.SCHEMA_VERSION
    assert read_event(StockMoved.TYPE, payload).to_dict() == payload


def test_a_payload_without_a_version_is_read_as_version_one():
    payload = _moved()
    del payload["schema_version"]
    event = read_event(StockMoved.TYPE, payload)
    assert isinstance(event, StockMoved)
    assert event.schema_version == 1


def test_one_version_behind_is_upgraded_and_newer_or_older_is_refused(monkeypatch):
    monkeypatch.setitem(EVENTS, StockMoved.TYPE, _StockMovedV2)
    upgraded = read_event(StockMoved.TYPE, _moved(schema_version=1))
    assert isinstance(upgraded, _StockMovedV2)
    assert (upgraded.note, upgraded.schema_version) == ("delivery", 2)
    with pytest.raises(UnreadableEvent, match="newer than this side reads"):
        read_event(StockMoved.TYPE, _moved(schema_version=3))
    with pytest.raises(UnreadableEvent, match="older than this side reads"):
        read_event(StockMoved.TYPE, _moved(schema_version=0))


@pytest.mark.parametrize("version", ["1", 1.0, True, None])
def test_a_version_that_is_not_a_whole_number_is_refused(version):
    with pytest.raises(UnreadableEvent, match="not a whole number"):
        read_event(StockMoved.TYPE, _moved(schema_version=version))


def test_an_unknown_type_is_refused():
    with pytest.raises(UnreadableEvent, match="unknown event type"):
        read_event("sale.voided", _moved())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", MAX_INT + 1),  # past what a double holds exactly
        ("quantity", "24"),  # strict: text is not a number
        ("at", "2026-11-25T09:30:00"),  # no offset
        ("at", "0001-01-01T00:00:00+01:00"),  # outside the calendar once in UTC
        ("at", "3100-01-01T00:00:00+00:00"),  # not a time a store can have
        ("reason", "refund\u202etxt.exe"),  # a text-direction control
        ("reason", "x" * 501),
        ("sku", ""),
    ],
)
def test_every_field_is_bounded(field, value):
    with pytest.raises(ValidationError):
        read_event(StockMoved.TYPE, _moved(**{field: value}))


def test_every_event_type_has_a_projection_at_the_cloud():
    from cloud.ingest.projections import PROJECTIONS

    assert set(PROJECTIONS) == set(EVENTS)


def test_the_feeds_are_the_feed_item_types():
    from sync.protocol import FeedChange  # the envelope items travel in

    assert tuple(contract.FEED_ITEMS) == contract.FEEDS
    assert set(contract.FEEDS) == {
        "catalog",
        "prices",
        "store_settings",
        "member_merges",
        "earn_rules",
        "promotions",
        "coupon_campaigns",
        "coupon_quotas",
    }
    assert FeedChange("k", {}).to_dict() == {"key": "k", "data": {}}


@pytest.mark.parametrize(
    "barcode", ["4006381333931", "0400638133393x", "040063813339310", "\u0660" * 14]
)
def test_a_catalog_item_carries_only_gtin_14_barcodes(barcode):
    item = {"sku": "A", "name": "A", "unit_price": 1, "tax_rate_bp": 0, "sold_by": "each"}
    assert CatalogItem.model_validate(item).barcodes == []
    with pytest.raises(ValidationError):
        CatalogItem.model_validate({**item, "barcodes": [barcode]})


def _max_length(schema: type, name: str) -> int | None:
    for meta in schema.model_fields[name].metadata:  # type: ignore[attr-defined]
        if getattr(meta, "max_length", None) is not None:
            return int(meta.max_length)
    return None


@pytest.mark.parametrize(
    ("schema", "table", "renamed"),
    [
        ("SaleDoc", "sales", {}),
        ("SaleLine", "sale_lines", {}),
        ("ReturnCreated", "returns", {"return_id": "id", "at": "created_at"}),
        ("StockMoved", "stock_movements", {"movement_id": "id", "at": "created_at"}),
        ("ExitPassUsed", "exit_pass_uses", {"at": "used_at"}),
    ],
)
def test_every_text_the_schema_lets_through_fits_its_column_at_the_cloud(schema, table, renamed):
    """A value the schema accepts and the cloud's database refuses would be quarantined: a
    sale missing at HQ for no fault of the store."""
    import sqlalchemy as sa

    import cloud.models  # noqa: F401  (every table on the metadata)
    from cloud.db import Base

    model = getattr(contract, schema)
    columns = Base.metadata.tables[table].columns
    checked = 0
    for name in model.model_fields:
        column = columns.get(renamed.get(name, name))
        if column is None:
            continue
        longest = _max_length(model, name)
        if isinstance(column.type, sa.Uuid):
            assert model.model_fields[name].annotation is str
            assert any(
                "[0-9a-fA-F]{8}-" in str(getattr(m, "pattern", ""))
                for m in model.model_fields[name].metadata
            ), f"{schema}.{name} goes to a UUID column: the schema must say it is one"
        elif isinstance(column.type, sa.String) and column.type.length is not None:
            assert longest is not None and longest <= column.type.length, (
                f"{schema}.{name} takes {longest} characters, {table}.{column.name} holds "
                f"{column.type.length}"
            )
        checked += 1
    assert checked >= 3
