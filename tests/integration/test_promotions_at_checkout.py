"""Promotions at a store's checkout, on a real migrated SQLite file through the services: what
the promotions feed brought prices the cart, the sale keeps each offer and its lines, the
receipt names them, a return refunds what was paid, a withdrawal ends an offer, and a hot
product's per-member limit counts what the member bought here before."""

from __future__ import annotations

from typing import Any

import pytest

from edge.auth.service import Principal
from edge.checkout import carts, returns, sales
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.sale_reads import get_sale
from edge.members.service import sign_up
from edge.pricing.store_promotions import apply_promotion_items
from sync.contract import PromotionItem
from sync.keys import generate_private_key, public_key_b64
from tests.builders import MILK, RICE, make_store

MILK_10 = {
    "id": "milk-10",
    "name": "Milk 10% off",
    "kind": "percent_off",
    "percent_bp": 1000,
    "target": {"skus": ["MILK1L"]},
}
SPEND_100 = {
    "id": "spend-100",
    "name": "Spend 100, save 10",
    "kind": "threshold",
    "stage": "basket",
    "steps": [{"min": 10_000, "off": 1_000}],
}


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "S001")


def _pulled(store, *docs: dict[str, Any]) -> None:
    with store.db.write() as uow:
        apply_promotion_items(
            uow.session, [PromotionItem.model_validate(d) for d in docs], store.clock.now()
        )
        uow.commit()


def _kiosk(store) -> Principal:
    return Principal(store.devices["kiosk"], "kiosk")


def _scan(store, cart_id: str, code: str, times: int = 1) -> carts.CartView:
    view = None
    for _ in range(times):
        view = carts.add_line(
            store.db,
            _kiosk(store),
            cart_id,
            barcode=code,
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    assert view is not None
    return view


def _cart(store) -> str:
    return carts.create_cart(
        store.db, _kiosk(store), channel="kiosk", currency="CNY", now=store.clock.now()
    ).cart.id


def _pay(store, view: carts.CartView, key: str):
    return sales.checkout(
        store.ctx,
        _kiosk(store),
        view.cart.id,
        payments=[PaymentRequest("card", view.due)],
        idempotency_key=key,
    )


def test_a_pulled_promotion_prices_the_cart_the_sale_and_the_receipt(store) -> None:
    _pulled(store, MILK_10, SPEND_100)
    cart_id = _cart(store)
    _scan(store, cart_id, MILK["barcodes"], times=4)  # 4 x 12.50 = 50.00
    view = _scan(store, cart_id, RICE["barcodes"], times=2)  # 2 x 49.90 = 99.80
    # Line offer first: 10 % of 5,000 = 500, leaving 4,500 of milk. Then the basket: 4,500 +
    # 9,980 = 14,480 reaches 10,000, so 1,000 off, spread 4,500 : 9,980 -> 310.8 and 689.2 ->
    # 311 and 689. Milk: 500 + 311 = 811 off; rice 689; the cart 14,980 - 1,500 = 13,480.
    discounts = {
        line.sku: priced.discount for line, priced in zip(view.lines, view.priced, strict=True)
    }
    assert discounts == {"MILK1L": 811, "RICE5": 689}
    assert view.totals.total == 13_480
    shown = view.to_dict()["discounts"]
    assert [(d["name"], d["stage"], d["amount"]) for d in shown] == [
        ("Milk 10% off", "line", 500),
        ("Spend 100, save 10", "basket", 1_000),
    ]
    milk_line = next(line.id for line in view.lines if line.sku == "MILK1L")
    assert shown[0]["lines"] == [{"line_id": milk_line, "amount": 500}]
    # A read of the cart prices it the same way.
    again = carts.get_cart(store.db, _kiosk(store), cart_id, shop=store.ctx.shop)
    assert again.to_dict() == view.to_dict()

    done = _pay(store, view, "k-promo")
    sale = done.sale
    assert sale["total"] == 13_480 and sale["discount"] == 1_500
    by_sku = {line["sku"]: line for line in sale["lines"]}
    assert [d["amount"] for d in sale["discounts"]] == [500, 1_000]
    # The sale's offers name the sale's own lines, and add up to each line's discount.
    per_line: dict[str, int] = {}
    for d in sale["discounts"]:
        for share in d["lines"]:
            per_line[share["line_id"]] = per_line.get(share["line_id"], 0) + share["amount"]
    assert per_line == {line["id"]: line["discount"] for line in sale["lines"]}
    assert [(o["name"], o["amount"]) for o in done.receipt["offers"]] == [
        ("Milk 10% off", 500),
        ("Spend 100, save 10", 1_000),
    ]
    # Each line of the receipt names the offers it took and its share of each.
    milk_on_receipt = next(r for r in done.receipt["lines"] if r["name"] == MILK["name"])
    assert milk_on_receipt["offers"] == [
        {"name": "Milk 10% off", "amount": 500},
        {"name": "Spend 100, save 10", "amount": 311},
    ]
    text = done.receipt["text"]
    assert "Milk 10% off" in text and "-5.00" in text and "-3.11" in text and "-6.89" in text
    # Read back (a retry, a reprint) it is the same sale.
    assert get_sale(store.ctx, _kiosk(store), sale["id"]) == sale

    # Returning the milk one piece, then three: exactly what was paid for it, 4,189.
    milk = by_sku["MILK1L"]
    refunds = [
        returns.create_return(
            store.ctx,
            Principal(store.devices["manager"], "manager"),
            sale["id"],
            lines=[returns.ReturnRequestLine(milk["id"], quantity)],
            reason="changed mind",
        )["refund_total"]
        for quantity in (1, 3)
    ]
    assert refunds == [1_047, 3_142]  # 4,189 / 4 = 1,047.25 -> 1,047; the rest, 3,142
    assert sum(refunds) == milk["total"] == 5_000 - 811


def test_a_withdrawn_promotion_stops_applying(store) -> None:
    _pulled(store, MILK_10)
    cart_id = _cart(store)
    assert _scan(store, cart_id, MILK["barcodes"]).totals.discount == 125
    _pulled(store, {**MILK_10, "active": False})
    assert _scan(store, cart_id, MILK["barcodes"]).totals.discount == 0


def test_a_cart_is_priced_as_of_its_last_change(store) -> None:
    # T0 is 17:30 in Shanghai, the store's zone: an hour of 10 % off from 17:00.
    _pulled(store, {**MILK_10, "window": {"opens": "17:00", "closes": "18:00"}})
    cart_id = _cart(store)
    assert _scan(store, cart_id, MILK["barcodes"]).totals.discount == 125
    store.clock.advance(hours=1)  # 18:30: the offer's hour is over
    # What the shopper saw at the last scan holds until the cart changes...
    still = carts.get_cart(store.db, _kiosk(store), cart_id, shop=store.ctx.shop)
    assert still.totals.discount == 125
    # ...and the next scan prices the whole cart by the time it was made.
    assert _scan(store, cart_id, MILK["barcodes"]).totals.discount == 0


def test_a_hot_products_limit_counts_what_the_member_bought_here_before(store) -> None:
    _pulled(
        store,
        {
            "id": "hot-milk",
            "name": "Hot milk 9.90, 3 a member",
            "kind": "member_price",
            "price": 990,
            "per_member_limit": 3,
            "target": {"skus": ["MILK1L"]},
        },
    )
    member, _ = sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone="13655550009",
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
    )
    discounts = []
    for n in range(3):
        cart_id = _cart(store)
        _scan(store, cart_id, MILK["barcodes"], times=2)
        view, _ = carts.set_member(
            store.db, _kiosk(store), cart_id, member.id, shop=store.ctx.shop, now=store.clock.now()
        )
        discounts.append(view.totals.discount)
        _pay(store, view, f"k-hot-{n}")
    # 12.50 -> 9.90 is 260 a piece: two pieces, then the one left of three, then none.
    assert discounts == [520, 260, 0]
    # Nobody signed in: a per-member offer needs a member.
    cart_id = _cart(store)
    assert _scan(store, cart_id, MILK["barcodes"]).totals.discount == 0
