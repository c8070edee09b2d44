"""Expected values computed independently of the server, and the device's common steps."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.builders import APPLES, BAIJIU, MILK, RICE, SOAP, ean13
from tests.functional.conftest import Live

# The catalog of tests.builders, as the tests expect to see it.
MILK_CODE = ean13("690000000001")
RICE_CODE = ean13("690000000002")
SOAP_CODE = ean13("690000000003")
SOAP_UPC_A = "036000291452"
BAIJIU_CODE = ean13("690000000004")
APPLE_PLU = "012345"

assert MILK["barcodes"] == MILK_CODE
assert RICE["barcodes"] == RICE_CODE
assert SOAP["barcodes"] == f"{SOAP_CODE}|{SOAP_UPC_A}"
assert BAIJIU["barcodes"] == BAIJIU_CODE
assert APPLES["plu"] == APPLE_PLU

PRICE = {
    "MILK1L": int(MILK["unit_price"]),  # 1250
    "RICE5": int(RICE["unit_price"]),  # 4990
    "SOAP": int(SOAP["unit_price"]),  # 333
    "BAIJIU": int(BAIJIU["unit_price"]),  # 19900
    "APPLE": int(APPLES["unit_price"]),  # 1580 per kg
}
RATE_BP = {
    "MILK1L": 900,
    "RICE5": 900,
    "SOAP": 1300,
    "BAIJIU": 1300,
    "APPLE": 900,
}
SKU_OF = {MILK_CODE: "MILK1L", RICE_CODE: "RICE5", SOAP_CODE: "SOAP", BAIJIU_CODE: "BAIJIU"}


def half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero (both non-negative)."""
    assert numerator >= 0 and denominator > 0
    return (2 * numerator + denominator) // (2 * denominator)


def tax_in(gross: int, rate_bp: int) -> int:
    """VAT contained in a tax-inclusive amount: round_half_up(gross * r / (1 + r))."""
    return half_up_div(gross * rate_bp, 10_000 + rate_bp)


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` exactly; ties go to the earlier weight."""
    base = sum(weights)
    shares = [total * w // base for w in weights]
    rems = [total * w % base for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-rems[i], i))[: total - sum(shares)]:
        shares[i] += 1
    return shares


def expected_totals(lines: list[tuple[str, int, int]]) -> dict[str, int]:
    """Totals of ``(sku, piece_price, quantity)`` lines: no discounts, tax per line."""
    subtotal = sum(price * qty for _, price, qty in lines)
    tax = sum(tax_in(price * qty, RATE_BP[sku]) for sku, price, qty in lines)
    return {"subtotal": subtotal, "discount": 0, "tax": tax, "total": subtotal}


def key() -> str:
    return f"test-{uuid.uuid4()}"


def new_cart(live: Live, role: str = "kiosk", channel: str = "kiosk") -> dict[str, Any]:
    return live.ok(live.post("/api/v1/carts", role, json={"channel": channel}), 201)


def scan(
    live: Live, cart_id: str, barcode: str, quantity: int | None = None, role: str = "kiosk"
) -> dict[str, Any]:
    body: dict[str, Any] = {"barcode": barcode}
    if quantity is not None:
        body["quantity"] = quantity
    return live.ok(live.post(f"/api/v1/carts/{cart_id}/lines", role, json=body))


def checkout(
    live: Live,
    cart_id: str,
    payments: list[dict[str, Any]],
    role: str = "kiosk",
    idempotency_key: str | None = None,
) -> requests.Response:
    return live.post(
        f"/api/v1/carts/{cart_id}/checkout",
        role,
        json={"payments": payments},
        headers={"Idempotency-Key": idempotency_key or key()},
    )


def sell(
    live: Live,
    items: list[tuple[str, int]],
    *,
    role: str = "kiosk",
    channel: str = "kiosk",
    method: str = "cash",
) -> dict[str, Any]:
    """Open a cart, scan ``(barcode, quantity)`` items, pay the exact total; the checkout body."""
    cart = new_cart(live, role, channel)
    for barcode, quantity in items:
        cart = scan(live, cart["id"], barcode, quantity, role)
    total = cart["totals"]["total"]
    return live.ok(checkout(live, cart["id"], [{"method": method, "amount": total}], role), 201)


def stock(live: Live, sku: str) -> int:
    return int(live.ok(live.get(f"/api/v1/stock/{sku}", "handheld"))["on_hand"])


def day_report(live: Live) -> dict[str, Any]:
    return live.ok(live.get("/api/v1/reports/day", "manager"))
