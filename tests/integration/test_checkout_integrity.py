"""Checkout integrity against a real store file: prices, currencies, approvals, whose cart."""

from __future__ import annotations

import pytest

from edge.auth.service import Principal, pair_device
from edge.checkout import carts, sale_reads, sales
from edge.checkout.payment_rules import PaymentRequest
from edge.errors import Conflict, NotFound, Unprocessable
from tests.builders import APPLES, BAIJIU, MILK, RICE, T0, ean13, make_store, weighed_code

DELI = {
    **APPLES,
    "sku": "HAM",
    "name": "Sliced ham",
    "sold_by": "variable",
    "unit_price": "3000",
    "plu": "123",  # not zero-padded: found by the label 2 000123 ... all the same
    "barcodes": ean13("690000000009"),
    "max_price": "8000",
}
GOLD = {**MILK, "sku": "GOLD", "name": "Gold bar", "barcodes": ean13("690000000010")}
GOLD["unit_price"] = "100000000"  # the catalog's largest unit price
PRODUCTS = [MILK, RICE, BAIJIU, APPLES, DELI, GOLD]
HEADER_WITH_MAX = [*MILK.keys(), "max_price"]


def who(store, role):
    return Principal(store.devices[role], role)


@pytest.fixture
def shop(tmp_path):
    import csv

    store = make_store(tmp_path / "s")
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER_WITH_MAX, restval="")
        writer.writeheader()
        writer.writerows(PRODUCTS)
    from edge.catalog.service import import_catalog

    import_catalog(store.db, path, now=T0, plu_length=6)
    yield store
    store.db.dispose()


def open_cart(store, role="kiosk"):
    return carts.create_cart(
        store.db, who(store, role), channel="kiosk", currency=store.ctx.currency, now=T0
    )


def scan(store, view, code, role="kiosk", quantity=None):
    return carts.add_line(
        store.db,
        who(store, role),
        view.cart.id,
        barcode=code,
        quantity=quantity,
        rules=store.ctx.scan_rules,
        shop=store.ctx.shop,
        now=T0,
    )


def test_a_phone_cannot_set_the_price_of_fixed_price_goods_by_any_code(shop):
    view = open_cart(shop)
    gtin = MILK["barcodes"]
    for code in (
        f"01{'0' + gtin}3922001",  # 0.01
        f"(01)0{gtin}(3922)000",  # zero
        f"(01)0{gtin}(3103)000000",  # zero weight
        f"]C101{'0' + gtin}3922001",  # the same behind a GS1-128 symbology identifier
    ):
        with pytest.raises(Unprocessable) as err:
            scan(shop, view, code)
        assert err.value.code == "embedded_measure_not_allowed"
    assert carts.get_cart(shop.db, who(shop, "kiosk"), view.cart.id, shop=shop.ctx.shop).lines == []
    assert scan(shop, view, gtin).totals.total == 1250


def test_a_variable_price_label_is_honoured_up_to_the_products_ceiling(shop):
    view = open_cart(shop)
    view = scan(shop, view, weighed_code("000123", 2599))
    assert (view.lines[0].sku, view.totals.total) == ("HAM", 2599)
    with pytest.raises(Unprocessable) as err:
        scan(shop, view, weighed_code("123", 8001))
    assert err.value.code == "embedded_price_over_ceiling"
    with pytest.raises(Unprocessable) as err:
        scan(shop, view, weighed_code("123", 0))
    assert err.value.code == "embedded_measure_zero"


def test_a_price_too_large_to_pay_never_reaches_a_cart(shop):
    view = scan(shop, open_cart(shop), GOLD["barcodes"], quantity=10)
    assert view.totals.total == 1_000_000_000
    with pytest.raises(Unprocessable) as err:
        scan(shop, view, GOLD["barcodes"])
    assert err.value.code == "cart_total_too_large"
    with pytest.raises(Unprocessable):
        carts.update_line(
            shop.db,
            who(shop, "kiosk"),
            view.cart.id,
            view.lines[0].id,
            quantity=11,
            shop=shop.ctx.shop,
            now=T0,
        )
    again = carts.get_cart(shop.db, who(shop, "kiosk"), view.cart.id, shop=shop.ctx.shop)
    assert again.totals.total == 1_000_000_000  # nothing half-written


@pytest.mark.parametrize(
    ("currency", "label_value", "gs1", "expected"),
    [
        # 2 + PLU + 5-digit price: CNY fen, JPY yen, KWD fils (the label's decimals are the
        # currency's); AI 3922 carries two decimals, 3920 none, 3923 three.
        ("CNY", 1234, "(3922)1234", 1234),
        ("JPY", 1234, "(3920)1234", 1234),
        ("KWD", 1234, "(3923)1234", 1234),
    ],
)
def test_embedded_prices_are_read_in_the_store_currencys_minor_units(
    tmp_path, currency, label_value, gs1, expected
):
    store = make_store(tmp_path / currency, products=[DELI_NO_MAX], **{"store.currency": currency})
    try:
        view = open_cart(store)
        view = scan(store, view, weighed_code("123", label_value))
        gtin = "0" + DELI_NO_MAX["barcodes"]
        view = scan(store, view, f"(01){gtin}{gs1}")
        # Two packs at the same label price are one line of two.
        assert [(line.piece_price, line.quantity) for line in view.lines] == [(expected, 2)]
        assert view.totals.total == 2 * expected
        assert view.cart.currency == currency
    finally:
        store.db.dispose()


DELI_NO_MAX = {k: v for k, v in DELI.items() if k != "max_price"}


def test_a_jpy_gs1_price_finer_than_a_yen_is_refused(tmp_path):
    store = make_store(tmp_path / "jpy", products=[DELI_NO_MAX], **{"store.currency": "JPY"})
    try:
        with pytest.raises(Unprocessable) as err:
            scan(store, open_cart(store), f"(01)0{DELI['barcodes']}(3922)1234")  # 12.34 yen
        assert err.value.details["reason"] == "gs1_precision"
    finally:
        store.db.dispose()


def test_an_approval_covers_the_quantities_the_attendant_saw(shop):
    view = scan(shop, open_cart(shop), BAIJIU["barcodes"])
    line = view.lines[0].id
    view = carts.approve(shop.db, who(shop, "tablet"), view.cart.id, shop=shop.ctx.shop, now=T0)
    assert view.approved
    approval = view.to_dict()["approval"]
    assert approval["approved_by"] == shop.devices["tablet"]
    assert approval["lines"] == [{"line_id": line, "quantity": 1}]

    # 1 approved, then changed to 50: the approval is void and checkout is held.
    kiosk = who(shop, "kiosk")
    view = carts.update_line(
        shop.db, kiosk, view.cart.id, line, quantity=50, shop=shop.ctx.shop, now=T0
    )
    assert not view.approved and view.to_dict()["approval"]["approved_by"] is None
    view = carts.update_line(
        shop.db, kiosk, view.cart.id, line, quantity=1, shop=shop.ctx.shop, now=T0
    )
    assert not view.approved  # void stays void: another look is needed
    with pytest.raises(Conflict) as err:
        sales.checkout(
            shop.ctx,
            kiosk,
            view.cart.id,
            payments=[PaymentRequest("cash", view.totals.total)],
            idempotency_key="k1",
        )
    assert err.value.code == "approval_required"


def test_lowering_a_quantity_or_adding_plain_goods_keeps_the_approval(shop):
    view = scan(shop, open_cart(shop), BAIJIU["barcodes"], quantity=3)
    view = carts.approve(shop.db, who(shop, "manager"), view.cart.id, shop=shop.ctx.shop, now=T0)
    kiosk = who(shop, "kiosk")
    view = carts.update_line(
        shop.db, kiosk, view.cart.id, view.lines[0].id, quantity=2, shop=shop.ctx.shop, now=T0
    )
    view = scan(shop, view, MILK["barcodes"])
    assert view.approved
    sale = sales.checkout(
        shop.ctx,
        kiosk,
        view.cart.id,
        payments=[PaymentRequest("cash", view.totals.total)],
        idempotency_key="k2",
    ).sale
    assert sale["approved_by"] == shop.devices["manager"]


def test_another_restricted_scan_voids_the_approval(shop):
    view = scan(shop, open_cart(shop), BAIJIU["barcodes"])
    view = carts.approve(shop.db, who(shop, "tablet"), view.cart.id, shop=shop.ctx.shop, now=T0)
    view = scan(shop, view, BAIJIU["barcodes"])  # the same line, now 2
    assert not view.approved
    view = carts.approve(shop.db, who(shop, "tablet"), view.cart.id, shop=shop.ctx.shop, now=T0)
    assert view.to_dict()["approval"]["lines"][0]["quantity"] == 2


def test_nothing_to_approve_is_a_conflict(shop):
    view = scan(shop, open_cart(shop), MILK["barcodes"])
    with pytest.raises(Conflict) as err:
        carts.approve(shop.db, who(shop, "tablet"), view.cart.id, shop=shop.ctx.shop, now=T0)
    assert err.value.code == "nothing_to_approve"


def test_a_kiosk_cannot_touch_pay_or_replay_another_kiosks_cart(shop):
    other_id, _ = pair_device(shop.db, role="kiosk", name="kiosk 2", now=T0)
    other = Principal(other_id, "kiosk")
    view = scan(shop, open_cart(shop), MILK["barcodes"])
    done = sales.checkout(
        shop.ctx,
        who(shop, "kiosk"),
        view.cart.id,
        payments=[PaymentRequest("cash", 1250)],
        idempotency_key="kiosk-1-key",
    )
    # Kiosk 2 replays kiosk 1's key on kiosk 1's cart: it gets no sale, only a 404.
    with pytest.raises(NotFound) as err:
        sales.checkout(
            shop.ctx,
            other,
            view.cart.id,
            payments=[PaymentRequest("cash", 1250)],
            idempotency_key="kiosk-1-key",
        )
    assert err.value.code == "unknown_cart"
    with pytest.raises(NotFound):
        carts.get_cart(shop.db, other, view.cart.id, shop=shop.ctx.shop)
    with pytest.raises(NotFound):
        sale_reads.get_sale(shop.ctx, other, done.sale["id"])
    # Staff still see every cart.
    assert (
        carts.get_cart(shop.db, who(shop, "tablet"), view.cart.id, shop=shop.ctx.shop).cart.id
        == view.cart.id
    )
