"""An exit picked for an audit tells the gate what to check in the bag: the sale's items and
quantities (a pass that is not audited says nothing of them)."""

from __future__ import annotations

from edge.auth.service import Principal
from edge.checkout import carts, sales
from edge.checkout.exit_gate import verify_at_exit
from edge.checkout.payment_rules import PaymentRequest
from tests.builders import MILK, SOAP, make_store


def _paid_pass(store) -> str:
    phone = Principal(store.devices["phone"], "phone")
    view = carts.create_cart(
        store.db, phone, channel="scan_to_buy", currency="CNY", now=store.clock.now()
    )
    for code, quantity in ((MILK["barcodes"], 2), (SOAP["barcodes"].split("|")[0], None)):
        view = carts.add_line(
            store.db,
            phone,
            view.cart.id,
            barcode=code,
            quantity=quantity,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    done = sales.checkout(
        store.ctx,
        phone,
        view.cart.id,
        payments=[PaymentRequest("wallet", view.due)],
        idempotency_key="audit-1",
    )
    assert done.exit_pass is not None
    return done.exit_pass["token"]


def test_an_audited_exit_lists_the_items_and_a_plain_one_does_not(tmp_path) -> None:

    for rate, name in ((10_000, "always"), (0, "never")):
        store = make_store(tmp_path / name, **{"exit_pass.audit_base_rate_bp": rate})
        try:
            gate = Principal(store.devices["exit"], "exit")
            verdict = verify_at_exit(store.ctx, gate, _paid_pass(store)).to_dict()
        finally:
            store.db.dispose()
        assert verdict["valid"] is True
        if rate:
            assert verdict["audit"] is True
            assert verdict["items"] == [
                {"name": MILK["name"], "quantity": 2, "weight_g": None},
                {"name": SOAP["name"], "quantity": 1, "weight_g": None},
            ]
        else:
            assert (verdict["audit"], verdict["items"]) == (False, None)
