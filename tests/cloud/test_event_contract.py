"""Every event type, from the store use case that writes it, over the wire, to its rows at HQ.

The store's own services write the events into a real SQLite outbox; the rows go to the cloud
as a signed push batch, and the cloud projects them. Nothing in between is hand-written, so a
field one side renames without the other shows here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cloud.members import registry
from cloud.members.models import Member
from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from edge.auth.service import Principal
from edge.checkout import carts, returns, sales
from edge.checkout.exit_gate import verify_at_exit
from edge.checkout.payment_rules import PaymentRequest
from edge.inventory.service import post_movement
from edge.members.service import sign_up
from sync.contract import EVENT_REFUSED, EVENTS, read_event
from sync.keys import public_key_b64
from tests.builders import MILK, SOAP, make_store

STORE = "S001"


def _outbox(store: Any) -> list[dict[str, Any]]:
    with store.db.raw_read() as tx:
        rows = tx.all(
            "SELECT seq, id, type, aggregate_id, payload, created_at FROM outbox ORDER BY seq"
        )
    return [
        {
            "seq": int(r[0]),
            "id": r[1],
            "type": r[2],
            "aggregate_id": r[3],
            "payload": json.loads(r[4]),
            "created_at": r[5],
        }
        for r in rows
    ]


def _trade(tmp: Path, cloud_key: str) -> tuple[Any, dict[str, Any], bool]:
    """A store that sold by phone, let the shopper out, took a return and a delivery, and
    signed a member up (the phone sealed to ``cloud_key``)."""
    store = make_store(tmp)
    now = store.clock.now()
    phone = Principal(store.devices["phone"], "phone")
    view = carts.create_cart(store.db, phone, channel="scan_to_buy", currency="CNY", now=now)
    for code in (MILK["barcodes"], SOAP["barcodes"].split("|")[0], MILK["barcodes"]):
        view = carts.add_line(
            store.db,
            phone,
            view.cart.id,
            barcode=code,
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=now,
        )
    paid = sales.checkout(
        store.ctx,
        phone,
        view.cart.id,
        payments=[PaymentRequest("card", view.totals.total)],
        idempotency_key="k-1",
    )
    assert paid.exit_pass is not None
    gate = verify_at_exit(
        store.ctx, Principal(store.devices["exit"], "exit"), paid.exit_pass["token"]
    )
    assert gate.valid
    tablet = Principal(store.devices["tablet"], "tablet")
    first_line = paid.sale["lines"][0]
    returns.create_return(
        store.ctx,
        tablet,
        paid.sale["id"],
        lines=[returns.ReturnRequestLine(first_line["id"], 1)],
        reason="leaking carton",
        idempotency_key="r-1",
    )
    post_movement(
        store.db,
        sku=MILK["sku"],
        quantity=24,
        kind="receive",
        reason="morning delivery",
        device_id=store.devices["handheld"],
        now=now,
    )
    sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=cloud_key,
        store_id=STORE,
        phone="138 0013 8000",
        name="Li Lei",
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=now,
    )
    return store, paid.sale, gate.audit


def test_every_event_type_goes_from_its_use_case_to_its_projection(cloud, tmp_path):
    store, sale, audit = _trade(tmp_path / "store", public_key_b64(cloud.ctx.cloud_key))
    events = _outbox(store)
    assert {e["type"] for e in events} == set(EVENTS) - {EVENT_REFUSED}
    for event in events:
        # Written at the current version, and read back into the very same payload.
        schema = EVENTS[event["type"]]
        assert event["payload"]["schema_version"] == schema.SCHEMA_VERSION
        assert read_event(event["type"], event["payload"]).to_dict() == event["payload"]

    client = cloud.store(STORE)
    answer = client.push(events)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["applied"], body["quarantined"]) == (len(events), [])

    with cloud.ctx.db.read() as session:
        at_hq = session.get(Sale, sale["id"])
        assert at_hq is not None
        assert (at_hq.number, at_hq.total, at_hq.item_count) == (
            sale["number"],
            sale["total"],
            sale["item_count"],
        )
        lines = session.execute(
            select(SaleLine).where(SaleLine.sale_id == sale["id"]).order_by(SaleLine.position)
        ).scalars()
        assert [(x.sku, x.quantity, x.total) for x in lines] == [
            (x["sku"], x["quantity"], x["total"]) for x in sale["lines"]
        ]
        refund = session.execute(select(Return)).scalar_one()
        assert (refund.sale_id, refund.reason) == (sale["id"], "leaking carton")
        assert refund.refund_total == sale["lines"][0]["total"] // sale["lines"][0]["quantity"]
        assert json.loads(refund.lines)[0]["sale_line_id"] == sale["lines"][0]["id"]
        assert sum(r["amount"] for r in json.loads(refund.refunds)) == refund.refund_total
        moved = session.execute(select(StockMovement)).scalar_one()
        assert (moved.sku, moved.quantity, moved.kind) == (MILK["sku"], 24, "receive")
        used = session.execute(select(ExitPassUse)).scalar_one()
        assert (used.sale_id, used.audit) == (sale["id"], audit)  # the gate picks some at random
        member = session.execute(select(Member)).scalar_one()
        signed_up = next(e for e in events if e["type"] == "member.signed_up")
        assert member.id == signed_up["aggregate_id"] == signed_up["payload"]["member_id"]
        assert (member.store_id, member.device_id) == (STORE, store.devices["kiosk"])
        assert registry.phone_of(cloud.ctx.members_keyring, member) == "+8613800138000"
        assert registry.name_of(cloud.ctx.members_keyring, member) == "Li Lei"


def test_an_event_from_a_newer_store_is_quarantined_and_one_without_a_version_is_read(
    cloud, tmp_path
):
    store, _, _ = _trade(tmp_path / "store", public_key_b64(cloud.ctx.cloud_key))
    events = _outbox(store)
    newer, older = events[0], events[-1]
    newer["payload"]["schema_version"] = EVENTS[newer["type"]].SCHEMA_VERSION + 1
    del older["payload"]["schema_version"]  # as stores wrote them before versions travelled
    answer = cloud.store(STORE).push(events).get_json()
    assert [q["seq"] for q in answer["quarantined"]] == [newer["seq"]]
    assert "newer than this side reads" in answer["quarantined"][0]["reason"]
    assert answer["applied"] == len(events) - 1


def test_a_sale_of_a_long_gs1_code_reaches_hq_whole(cloud):
    """A store takes codes of up to 128 characters (several GS1 application identifiers); HQ
    keeps the whole code instead of quarantining the sale."""
    from tests.cloud.harness import sale_event

    event = sale_event(1, STORE, lines=1)
    code = "01095012345678903" + "3103000750" + "10" + "A" * 20 + "\x1d" + "21" + "9" * 70
    assert 64 < len(code) <= 128
    event["payload"]["sale"]["lines"][0]["barcode"] = code
    answer = cloud.store(STORE).push([event]).get_json()
    assert (answer["applied"], answer["quarantined"]) == (1, [])
    with cloud.ctx.db.read() as session:
        assert session.execute(select(SaleLine.barcode)).scalar_one() == code
