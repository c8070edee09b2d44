"""Checkout, returns and stock against a real migrated SQLite file, through the services."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from edge.auth.service import Principal
from edge.checkout import carts, returns, sales
from edge.checkout.models import Cart, Payment, Sale, SaleLine
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.payments import PaymentDeclined, SimulatedProvider
from edge.errors import Conflict, NotFound, Unprocessable
from edge.inventory.models import StockMovement
from edge.inventory.service import ledger_mismatches, post_movement, stock_of
from edge.outbox.models import OutboxEvent
from tests.builders import APPLES, BAIJIU, MILK, RICE, SOAP, ean13, make_store, weighed_code

MILK_CODE = MILK["barcodes"]
RICE_CODE = RICE["barcodes"]


def who(store, role):
    return Principal(store.devices[role], role)


def cart_with(store, *codes, channel="kiosk", role="kiosk"):
    p = who(store, role)
    view = carts.create_cart(store.db, p, channel=channel, currency="CNY", now=store.clock.now())
    for code in codes:
        view = carts.add_line(
            store.db,
            p,
            view.cart.id,
            barcode=code,
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    return view


def pay(store, view, key="k-1", role="kiosk", methods=None):
    total = view.totals.total
    payments = methods or [PaymentRequest("card", total)]
    return sales.checkout(
        store.ctx, who(store, role), view.cart.id, payments=payments, idempotency_key=key
    )


def counts(store):
    with store.db.read() as s:
        return {
            "sales": s.scalar(select(func.count()).select_from(Sale)),
            "lines": s.scalar(select(func.count()).select_from(SaleLine)),
            "payments": s.scalar(select(func.count()).select_from(Payment)),
            "movements": s.scalar(select(func.count()).select_from(StockMovement)),
            "outbox": s.scalar(select(func.count()).select_from(OutboxEvent)),
        }


def test_checkout_writes_sale_lines_payments_stock_and_its_event_together(store):
    view = cart_with(store, MILK_CODE, MILK_CODE, RICE_CODE, weighed_code("012345", 790))
    result = pay(store, view)
    sale = result.sale
    assert sale["number"] == "S001-000001"
    assert sale["total"] == 1250 * 2 + 4990 + 790
    assert [(line["sku"], line["quantity"]) for line in sale["lines"]] == [
        ("MILK1L", 2),
        ("RICE5", 1),
        ("APPLE", 1),
    ]
    assert counts(store) == {"sales": 1, "lines": 3, "payments": 1, "movements": 3, "outbox": 1}
    with store.db.read() as s:
        event = s.execute(select(OutboxEvent)).scalar_one()
        assert event.type == "sale.completed"
        assert event.seq == 1
        payload = json.loads(event.payload)
        assert payload["sale"]["id"] == sale["id"]
        assert payload["sale"]["total"] == sale["total"]
        assert s.get(Cart, view.cart.id).status == "checked_out"
        # Weighed goods move stock in grams: 790 at 15.80/kg is 500 g.
        assert stock_of(s, "APPLE").on_hand == -500
        assert stock_of(s, "MILK1L").on_hand == -2
    assert ledger_mismatches_of(store) == []


def ledger_mismatches_of(store):
    with store.db.read() as s:
        return ledger_mismatches(s)


def test_a_declined_card_leaves_the_cart_open_and_writes_nothing(tmp_path):
    store = make_store(tmp_path, payments=SimulatedProvider(latency_ms=0, decline_rate_bp=10_000))
    view = cart_with(store, MILK_CODE)
    before = counts(store)
    with pytest.raises(PaymentDeclined):
        pay(store, view)
    assert counts(store) == before
    with store.db.read() as s:
        assert s.get(Cart, view.cart.id).status == "open"
    # Cash still works on the same cart.
    result = pay(store, view, key="k-2", methods=[PaymentRequest("cash", 2000)])
    assert result.sale["change"] == 750


def test_the_same_key_returns_the_first_sale_and_another_cart_is_refused(store):
    view = cart_with(store, MILK_CODE)
    first = pay(store, view, key="same")
    again = pay(store, view, key="same")
    assert again.replayed and not first.replayed
    assert again.sale == first.sale
    other = cart_with(store, RICE_CODE)
    with pytest.raises(Conflict) as err:
        pay(store, other, key="same")
    assert err.value.code == "idempotency_key_reused"
    assert counts(store)["sales"] == 1


def test_a_failure_mid_write_rolls_back_everything_and_voids_the_card(store, monkeypatch):
    view = cart_with(store, MILK_CODE, RICE_CODE)
    before = counts(store)

    def explode(*args, **kwargs):
        raise RuntimeError("disk unplugged")

    # The second stock movement fails after the sale row and the first movement were written.
    calls = {"n": 0}
    real = sales.apply_movement

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            explode()
        return real(*args, **kwargs)

    monkeypatch.setattr(sales, "apply_movement", flaky)
    with pytest.raises(RuntimeError):
        pay(store, view)
    assert counts(store) == before
    assert len(store.payments.voided) == 1
    assert store.payments.authorized == {}
    with store.db.read() as s:
        assert s.get(Cart, view.cart.id).status == "open"
        assert stock_of(s, "MILK1L").on_hand == 0


def test_age_restricted_items_need_an_attendant_and_a_new_item_needs_a_new_look(store):
    view = cart_with(store, MILK_CODE, BAIJIU["barcodes"])
    with pytest.raises(Conflict) as err:
        pay(store, view)
    assert err.value.code == "approval_required"
    assert err.value.details["skus"] == ["BAIJIU"]
    with pytest.raises(Exception, match="attendant"):
        carts.approve(
            store.db, who(store, "kiosk"), view.cart.id, shop=store.ctx.shop, now=store.clock.now()
        )
    carts.approve(
        store.db, who(store, "tablet"), view.cart.id, shop=store.ctx.shop, now=store.clock.now()
    )
    view = carts.add_line(
        store.db,
        who(store, "kiosk"),
        view.cart.id,
        barcode=BAIJIU["barcodes"],
        quantity=1,
        rules=store.ctx.scan_rules,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    assert view.needs_approval and not view.approved
    with pytest.raises(Conflict):
        pay(store, view)
    view = carts.approve(
        store.db, who(store, "manager"), view.cart.id, shop=store.ctx.shop, now=store.clock.now()
    )
    assert pay(store, view).sale["approved_by"] == store.devices["manager"]


def test_payments_must_match_the_total(store):
    view = cart_with(store, MILK_CODE)
    for payments, code in [
        ([PaymentRequest("card", 1000)], "payment_mismatch"),
        ([PaymentRequest("card", 1251)], "payment_mismatch"),
        ([PaymentRequest("cash", 1000)], "payment_mismatch"),
        (
            [PaymentRequest("card", 1000), PaymentRequest("cash", 100)],
            "payment_mismatch",
        ),
    ]:
        with pytest.raises(Unprocessable) as err:
            pay(store, view, methods=payments)
        assert err.value.code == code
    mixed = pay(store, view, methods=[PaymentRequest("card", 1000), PaymentRequest("cash", 500)])
    assert mixed.sale["change"] == 250


def test_a_phone_only_sees_its_own_carts(store):
    view = cart_with(store, MILK_CODE, channel="scan_to_buy", role="phone")
    stranger = Principal("another-phone", "phone")
    with pytest.raises(NotFound):
        carts.get_cart(store.db, stranger, view.cart.id, shop=store.ctx.shop)
    assert (
        carts.get_cart(store.db, who(store, "tablet"), view.cart.id, shop=store.ctx.shop).cart.id
        == view.cart.id
    )


def test_returns_refund_exactly_what_was_paid_and_restock(store):
    view = cart_with(store, MILK_CODE)
    view = carts.update_line(
        store.db,
        who(store, "kiosk"),
        view.cart.id,
        view.lines[0].id,
        quantity=3,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    sale = pay(store, view).sale
    line = sale["lines"][0]
    staff = who(store, "manager")
    first = returns.create_return(
        store.ctx,
        staff,
        sale["id"],
        lines=[returns.ReturnRequestLine(line["id"], 1)],
        reason="damaged",
    )
    second = returns.create_return(
        store.ctx,
        staff,
        sale["id"],
        lines=[returns.ReturnRequestLine(line["id"], 2)],
        reason="changed mind",
    )
    assert first["refund_total"] + second["refund_total"] == line["total"] == 3750
    with pytest.raises(Conflict) as err:
        returns.create_return(
            store.ctx,
            staff,
            sale["id"],
            lines=[returns.ReturnRequestLine(line["id"], 1)],
            reason="again",
        )
    assert err.value.code == "return_exceeds_sale"
    with store.db.read() as s:
        assert stock_of(s, "MILK1L").on_hand == 0
        types = [e.type for e in s.execute(select(OutboxEvent).order_by(OutboxEvent.seq)).scalars()]
    assert types == ["sale.completed", "return.created", "return.created"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quantity=st.integers(1, 40),
    price=st.integers(1, 99_999),
    chunks=st.lists(st.integers(1, 40), min_size=1, max_size=8),
)
def test_partial_returns_never_refund_more_than_the_line(tmp_path_factory, quantity, price, chunks):
    product = dict(SOAP, unit_price=str(price), barcodes=ean13("690000000099"))
    store = make_store(tmp_path_factory.mktemp("ret"), products=[product])
    try:
        view = cart_with(store, product["barcodes"])
        view = carts.update_line(
            store.db,
            who(store, "kiosk"),
            view.cart.id,
            view.lines[0].id,
            quantity=quantity,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
        sale = pay(store, view).sale
        line = sale["lines"][0]
        refunded = 0
        returned = 0
        for chunk in chunks:
            try:
                r = returns.create_return(
                    store.ctx,
                    who(store, "tablet"),
                    sale["id"],
                    lines=[returns.ReturnRequestLine(line["id"], chunk)],
                    reason="test",
                )
            except Conflict:
                assert returned + chunk > quantity
                continue
            returned += chunk
            refunded += r["refund_total"]
            assert refunded <= line["total"]
        if returned == quantity:
            assert refunded == line["total"]
    finally:
        store.db.dispose()


def test_staff_stock_movements_and_the_ledger_stays_honest(store):
    now = store.clock.now()
    post_movement(
        store.db,
        sku="RICE5",
        quantity=24,
        kind="receive",
        reason="PO-1",
        device_id=store.devices["handheld"],
        now=now,
    )
    post_movement(
        store.db,
        sku="RICE5",
        quantity=2,
        kind="shrink",
        reason="damaged",
        device_id=store.devices["handheld"],
        now=now,
    )
    moved = post_movement(
        store.db,
        sku="RICE5",
        quantity=-1,
        kind="adjust",
        reason="count",
        device_id=store.devices["manager"],
        now=now,
    )
    assert moved.on_hand_after == 21
    with pytest.raises(Unprocessable, match="reason"):
        post_movement(
            store.db,
            sku="RICE5",
            quantity=1,
            kind="shrink",
            reason=" ",
            device_id=store.devices["handheld"],
            now=now,
        )
    with pytest.raises(NotFound):
        post_movement(
            store.db,
            sku="NOPE",
            quantity=1,
            kind="receive",
            reason="",
            device_id=store.devices["handheld"],
            now=now,
        )
    with store.db.read() as s:
        assert stock_of(s, "RICE5").on_hand == 21
        assert ledger_mismatches(s) == []
        events = [json.loads(e.payload) for e in s.execute(select(OutboxEvent)).scalars()]
    assert [(e["kind"], e["quantity"]) for e in events] == [
        ("receive", 24),
        ("shrink", -2),
        ("adjust", -1),
    ]


def test_selling_below_zero_is_allowed_and_flagged(store):
    sale = pay(store, cart_with(store, RICE_CODE)).sale
    with store.db.read() as s:
        movement = s.execute(
            select(StockMovement).where(StockMovement.ref_id == sale["id"])
        ).scalar_one()
    assert movement.below_zero and movement.on_hand_after == -1


def test_weighed_items_price_from_the_label(store):
    view = cart_with(store, weighed_code(APPLES["plu"], 1264))
    line = view.lines[0]
    assert (line.piece_price, line.weight_g) == (1264, 800)
    assert view.totals.total == 1264
