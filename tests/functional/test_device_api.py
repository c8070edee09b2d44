"""Every device route over HTTP against a real ``aisle edge serve`` process, as devices use them.

The server is shared by the tests of this module, so tests that count (outbox, day report, sale
numbers) compare before/after values rather than absolute ones.
"""

from __future__ import annotations

import base64
import re
import struct
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from wcwidth import wcswidth

from edge.checkout.receipts import display_width
from tests.builders import weighed_code
from tests.functional.conftest import STORE_ID, STORE_NAME, Live
from tests.functional.helpers import (
    APPLE_PLU,
    BAIJIU_CODE,
    MILK_CODE,
    PRICE,
    RATE_BP,
    RICE_CODE,
    SOAP_CODE,
    SOAP_UPC_A,
    checkout,
    day_report,
    expected_totals,
    half_up_div,
    key,
    largest_remainder,
    new_cart,
    scan,
    sell,
    stock,
    tax_in,
)

SALE_NUMBER = re.compile(rf"^{STORE_ID}-\d{{6}}$")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _error_code(live: Live, response: Any, status: int) -> str:
    body = live.ok(response, status)
    return str(body["error"]["code"])


# --- system ---------------------------------------------------------------------------------------


def test_healthz(live: Live) -> None:
    body = live.ok(live.get("/healthz"))
    assert body == {"status": "ok", "store_id": STORE_ID, "database": "ok"}


# Core routes of the contract (DESIGN.md section 5) and the edge's own additions; path parameter
# names are not part of the contract, so they are compared as "{}". Member, coupon and points
# routes belong to later roadmap capabilities and are not served yet.
CONTRACT_OPERATIONS = {
    ("get", "/healthz"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/products/by-barcode/{}"),
    ("post", "/api/v1/carts"),
    ("get", "/api/v1/carts/{}"),
    ("post", "/api/v1/carts/{}/lines"),
    ("patch", "/api/v1/carts/{}/lines/{}"),
    ("delete", "/api/v1/carts/{}/lines/{}"),
    ("post", "/api/v1/carts/{}/approvals"),
    ("post", "/api/v1/carts/{}/checkout"),
    ("post", "/api/v1/exit-passes/verify"),
    ("get", "/api/v1/sales/{}"),
    ("get", "/api/v1/sales/{}/receipt"),
    ("post", "/api/v1/sales/{}/returns"),
    ("get", "/api/v1/stock/{}"),
    ("post", "/api/v1/stock/movements"),
    ("get", "/api/v1/sync/status"),
    ("get", "/api/v1/reports/day"),
}
CONNECTIVITY = {"offline", "online_only", "offline_bounded"}
ALL_ROLES = {"kiosk", "phone", "handheld", "tablet", "manager", "exit"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_describes_every_route(live: Live) -> None:
    doc = live.ok(live.get("/api/v1/openapi.json"))
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, f"dangling $ref {ref}"

    operations = {}
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        template = re.sub(r"\{[^}]+\}", "{}", path)
        names = re.findall(r"\{([^}]+)\}", path)
        for method, op in item.items():
            assert method in HTTP_METHODS, (path, method)
            operations[(method, template)] = (path, op)
            operation_ids.append(op["operationId"])
            assert op["summary"]
            assert op["x-connectivity"] in CONNECTIVITY, (path, method)
            assert isinstance(op["x-roles"], list)
            assert set(op["x-roles"]) <= ALL_ROLES, (path, method)
            assert op["responses"], (path, method)
            for status, response in op["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5]\d\d", status)
                assert response["description"]
            path_params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert sorted(path_params) == sorted(names), (path, method)
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
            # Authenticated operations say so; public ones do not.
            assert bool(op.get("security")) == bool(op["x-roles"]), (path, method)
            if method in ("post", "patch", "put") and "requestBody" in op:
                assert "application/json" in op["requestBody"]["content"]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    missing = CONTRACT_OPERATIONS - set(operations)
    assert not missing, f"contract routes missing from the document: {sorted(missing)}"
    assert operations[("post", "/api/v1/carts/{}/checkout")][1]["parameters"][-1]["name"] == (
        "Idempotency-Key"
    )

    # The document is honest: every operation is served, and x-roles is what the server enforces.
    for (method, _), (path, op) in sorted(operations.items()):
        url = re.sub(r"\{[^}]+\}", "doc-check-0", path)
        roles = set(op["x-roles"])
        body = {} if method in ("post", "patch", "put") else None
        anonymous = live.request(method.upper(), url, json=body) if body is not None else None
        if anonymous is None:
            anonymous = live.request(method.upper(), url)
        if not roles:
            assert anonymous.status_code == 200, (method, path, anonymous.text)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        for role in sorted(ALL_ROLES):
            kw: dict[str, Any] = {"json": body} if body is not None else {}
            response = live.request(method.upper(), url, role, **kw)
            assert response.status_code not in (401, 405, 500), (method, path, role)
            if role in roles:
                assert response.status_code != 403 or (
                    # the one service-level rule: phones open scan_to_buy carts only
                    response.json()["error"]["code"] == "forbidden" and role == "phone"
                ), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                details = response.json()["error"]["details"]
                assert details == {"role": role, "allowed": sorted(roles)}


# --- catalog --------------------------------------------------------------------------------------


def test_scan_ean13_gives_product_and_price(live: Live) -> None:
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{MILK_CODE}", "kiosk"))
    assert body == {
        "sku": "MILK1L",
        "name": "Fresh Milk 1L",
        "barcode": MILK_CODE,
        "unit_price": 1250,
        "price": 1250,
        "weight_g": None,
        "sold_by": "each",
        "tax_rate_bp": 900,
        "age_restricted": False,
        "category": "dairy",
    }
    baijiu = live.ok(live.get(f"/api/v1/products/by-barcode/{BAIJIU_CODE}", "handheld"))
    assert (baijiu["sku"], baijiu["age_restricted"], baijiu["price"]) == ("BAIJIU", True, 19900)


def test_scan_upc_a_and_its_ean13_form_find_the_same_product(live: Live) -> None:
    by_upc = live.ok(live.get(f"/api/v1/products/by-barcode/{SOAP_UPC_A}", "phone"))
    by_ean = live.ok(live.get(f"/api/v1/products/by-barcode/0{SOAP_UPC_A}", "phone"))
    by_other = live.ok(live.get(f"/api/v1/products/by-barcode/{SOAP_CODE}", "phone"))
    assert by_upc["sku"] == by_ean["sku"] == by_other["sku"] == "SOAP"
    assert by_upc["barcode"] == SOAP_UPC_A
    assert by_ean["barcode"] == "0" + SOAP_UPC_A
    assert by_upc["price"] == by_ean["price"] == 333
    assert by_upc["tax_rate_bp"] == 1300


def test_scan_weighed_label_prices_from_the_label(live: Live) -> None:
    code = weighed_code(APPLE_PLU, 1234)
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{code}", "kiosk"))
    assert body["sku"] == "APPLE"
    assert body["barcode"] == code
    assert body["price"] == 1234
    assert body["unit_price"] == 1580
    assert body["sold_by"] == "kg"
    # weight = price / price-per-kg, in grams, rounded half up: 1234 * 1000 / 1580 = 781.01
    assert body["weight_g"] == half_up_div(1234 * 1000, 1580) == 781


def test_scan_bad_check_digit_is_422_and_unknown_code_is_404(live: Live) -> None:
    bad = MILK_CODE[:-1] + str((int(MILK_CODE[-1]) + 1) % 10)
    response = live.get(f"/api/v1/products/by-barcode/{bad}", "kiosk")
    body = live.ok(response, 422)
    assert body["error"]["code"] == "invalid_barcode"
    assert body["error"]["details"]["reason"] == "check_digit"
    assert body["error"]["details"]["expected_check_digit"] == int(MILK_CODE[-1])

    unknown = "4006381333931"  # a well-formed EAN-13 that is not in the catalog
    assert _error_code(live, live.get(f"/api/v1/products/by-barcode/{unknown}", "kiosk"), 404) == (
        "unknown_product"
    )
    ean8 = "96385074"  # a well-formed EAN-8
    assert _error_code(live, live.get(f"/api/v1/products/by-barcode/{ean8}", "kiosk"), 404) == (
        "unknown_product"
    )
    unknown_plu = weighed_code("999999", 100)
    body = live.ok(live.get(f"/api/v1/products/by-barcode/{unknown_plu}", "kiosk"), 404)
    assert body["error"]["code"] == "unknown_product"
    assert body["error"]["details"]["kind"] == "variable_measure"


# --- carts ----------------------------------------------------------------------------------------


def test_create_cart_on_both_channels(live: Live) -> None:
    kiosk = new_cart(live, "kiosk", "kiosk")
    phone = new_cart(live, "phone", "scan_to_buy")
    for cart, channel in ((kiosk, "kiosk"), (phone, "scan_to_buy")):
        assert cart["channel"] == channel
        assert cart["status"] == "open"
        assert cart["currency"] == "CNY"
        assert cart["lines"] == []
        assert cart["totals"] == {"subtotal": 0, "discount": 0, "tax": 0, "total": 0}
        assert cart["item_count"] == 0
        assert cart["approval"]["required"] is False
        assert cart["approval"]["approved"] is False
        assert cart["approval"]["lines"] == []
    assert kiosk["id"] != phone["id"]
    assert live.ok(live.get(f"/api/v1/carts/{phone['id']}", "phone")) == phone
    # a phone shops with scan_to_buy carts only
    response = live.post("/api/v1/carts", "phone", json={"channel": "kiosk"})
    assert _error_code(live, response, 403) == "forbidden"


def test_cart_lines_merge_change_and_remove_with_exact_totals(live: Live) -> None:
    pending = live.outbox_pending()
    cart_id = new_cart(live)["id"]

    cart = scan(live, cart_id, MILK_CODE)
    assert len(cart["lines"]) == 1
    milk = cart["lines"][0]
    assert milk["quantity"] == 1
    assert cart["totals"] == {"subtotal": 1250, "discount": 0, "tax": 103, "total": 1250}

    # The same item scanned again adds to its line.
    cart = scan(live, cart_id, MILK_CODE)
    assert [line["id"] for line in cart["lines"]] == [milk["id"]]
    assert cart["lines"][0]["quantity"] == 2
    assert cart["totals"]["tax"] == tax_in(2500, 900) == 206
    cart = scan(live, cart_id, MILK_CODE, quantity=3)
    assert cart["lines"][0]["quantity"] == 5

    # SOAP by its UPC-A and by its EAN-13 is one product: one line of two.
    scan(live, cart_id, SOAP_UPC_A)
    cart = scan(live, cart_id, SOAP_CODE)
    cart = scan(live, cart_id, RICE_CODE, quantity=2)
    assert [line["sku"] for line in cart["lines"]] == ["MILK1L", "SOAP", "RICE5"]
    soap = cart["lines"][1]
    assert soap["quantity"] == 2
    assert soap["barcode"] == SOAP_UPC_A
    assert cart["totals"] == expected_totals(
        [("MILK1L", 1250, 5), ("SOAP", 333, 2), ("RICE5", 4990, 2)]
    )
    assert cart["item_count"] == 9

    # Two scale labels are two lines, each priced from its label.
    scan(live, cart_id, weighed_code(APPLE_PLU, 1234))
    cart = scan(live, cart_id, weighed_code(APPLE_PLU, 1234))
    apples = [line for line in cart["lines"] if line["sku"] == "APPLE"]
    assert len(apples) == 2
    assert all(a["price"] == 1234 and a["weight_g"] == 781 for a in apples)

    rice = next(line for line in cart["lines"] if line["sku"] == "RICE5")
    cart = live.ok(
        live.patch(f"/api/v1/carts/{cart_id}/lines/{milk['id']}", "kiosk", json={"quantity": 2})
    )
    cart = live.ok(live.delete(f"/api/v1/carts/{cart_id}/lines/{rice['id']}", "kiosk"))
    cart = live.ok(live.delete(f"/api/v1/carts/{cart_id}/lines/{apples[1]['id']}", "kiosk"))
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [
        ("MILK1L", 2),
        ("SOAP", 2),
        ("APPLE", 1),
    ]
    expected = expected_totals([("MILK1L", 1250, 2), ("SOAP", 333, 2), ("APPLE", 1234, 1)])
    assert expected == {"subtotal": 4400, "discount": 0, "tax": 206 + 77 + 102, "total": 4400}
    assert cart["totals"] == expected
    for line in cart["lines"]:
        assert line["subtotal"] == line["price"] * line["quantity"]
        assert line["discount"] == 0
        assert line["total"] == line["subtotal"]
        assert line["tax"] == tax_in(line["total"], RATE_BP[line["sku"]])
        assert line["tax_rate_bp"] == RATE_BP[line["sku"]]
        if line["sku"] != "APPLE":
            assert line["unit_price"] == line["price"] == PRICE[line["sku"]]
    assert cart["item_count"] == 5

    # GET shows the same cart; cart edits are not events for HQ.
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk")) == cart
    assert live.outbox_pending() == pending


def test_auth_and_cart_privacy_between_phones(live: Live) -> None:
    cart = new_cart(live, "phone", "scan_to_buy")
    scan(live, cart["id"], MILK_CODE, role="phone")
    assert _error_code(live, live.get(f"/api/v1/carts/{cart['id']}"), 401) == "unauthorized"
    bad = live.get(f"/api/v1/carts/{cart['id']}", headers={"Authorization": "Bearer nope"})
    assert _error_code(live, bad, 401) == "unauthorized"
    # another phone cannot see, scan into or pay for it: as if it did not exist
    other = live.get(f"/api/v1/carts/{cart['id']}", "phone2")
    assert _error_code(live, other, 404) == "unknown_cart"
    other = live.post(f"/api/v1/carts/{cart['id']}/lines", "phone2", json={"barcode": MILK_CODE})
    assert _error_code(live, other, 404) == "unknown_cart"
    other = checkout(live, cart["id"], [{"method": "card", "amount": 1250}], role="phone2")
    assert _error_code(live, other, 404) == "unknown_cart"
    # nor can a self-checkout kiosk, which shoppers use too; the owner still sees one milk,
    # and staff may help with the cart
    other = live.get(f"/api/v1/carts/{cart['id']}", "kiosk")
    assert _error_code(live, other, 404) == "unknown_cart"
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "phone"))["item_count"] == 1
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "tablet"))["item_count"] == 1


# --- checkout -------------------------------------------------------------------------------------


def test_checkout_cash_over_the_total_returns_change(live: Live) -> None:
    before = day_report(live)
    pending = live.outbox_pending()
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE, 2)
    cart = scan(live, cart_id, RICE_CODE)
    assert cart["totals"] == {"subtotal": 7490, "discount": 0, "tax": 206 + 412, "total": 7490}

    body = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 10000}]), 201)
    sale = body["sale"]
    assert SALE_NUMBER.match(sale["number"])
    assert sale["number"] == f"{STORE_ID}-{before['sales'] + 1:06d}"
    assert sale["cart_id"] == cart_id
    assert sale["channel"] == "kiosk"
    assert sale["currency"] == "CNY"
    assert (sale["subtotal"], sale["discount"], sale["tax"], sale["total"]) == (7490, 0, 618, 7490)
    assert (sale["paid"], sale["change"]) == (10000, 2510)
    assert sale["item_count"] == 3
    assert sale["device_id"] == live.device_ids["kiosk"]
    assert sale["approved_by"] is None
    assert sale["payments"] == [{"method": "cash", "amount": 10000, "reference": None}]
    assert [(line["sku"], line["quantity"], line["total"]) for line in sale["lines"]] == [
        ("MILK1L", 2, 2500),
        ("RICE5", 1, 4990),
    ]
    assert body["exit_pass"] is None
    receipt = body["receipt"]
    assert (receipt["sale_number"], receipt["total"], receipt["change"]) == (
        sale["number"],
        7490,
        2510,
    )

    # the cart is closed, the sale readable with its line ids
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk"))["status"] == "checked_out"
    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "kiosk"))
    assert fetched == sale
    assert all(line["id"] for line in fetched["lines"])
    assert len({line["id"] for line in fetched["lines"]}) == 2
    assert all(line["returned_quantity"] == line["refunded_amount"] == 0 for line in sale["lines"])
    assert live.outbox_pending() == pending + 1


def test_checkout_card_must_match_the_total_exactly(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE)
    pending = live.outbox_pending()
    for amount in (1249, 1251):
        response = checkout(live, cart_id, [{"method": "card", "amount": amount}])
        assert _error_code(live, response, 422) == "payment_mismatch"
    # cash short of the total is refused too
    response = checkout(live, cart_id, [{"method": "cash", "amount": 1000}])
    assert _error_code(live, response, 422) == "payment_mismatch"
    assert live.outbox_pending() == pending
    assert live.ok(live.get(f"/api/v1/carts/{cart_id}", "kiosk"))["status"] == "open"

    sale = live.ok(checkout(live, cart_id, [{"method": "card", "amount": 1250}]), 201)["sale"]
    assert (sale["total"], sale["paid"], sale["change"]) == (1250, 1250, 0)
    assert sale["payments"][0]["method"] == "card"
    assert sale["payments"][0]["amount"] == 1250
    assert sale["payments"][0]["reference"]  # the acquirer's reference
    assert live.outbox_pending() == pending + 1


def test_checkout_mixed_card_and_cash(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    cart = scan(live, cart_id, RICE_CODE)
    assert cart["totals"]["total"] == 4990
    payments = [{"method": "card", "amount": 3000}, {"method": "cash", "amount": 2000}]
    sale = live.ok(checkout(live, cart_id, payments), 201)["sale"]
    assert (sale["paid"], sale["change"]) == (5000, 10)
    assert sorted((p["method"], p["amount"]) for p in sale["payments"]) == [
        ("card", 3000),
        ("cash", 2000),
    ]


def test_idempotency_key_required_replayed_and_not_reusable(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, SOAP_CODE, 3)
    pending = live.outbox_pending()
    sales_before = day_report(live)["sales"]
    payment = {"payments": [{"method": "cash", "amount": 999}]}

    response = live.post(f"/api/v1/carts/{cart_id}/checkout", "kiosk", json=payment)
    assert _error_code(live, response, 422) == "idempotency_key_required"
    assert live.outbox_pending() == pending

    k = key()
    first = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 999}], "kiosk", k), 201)
    again = live.ok(checkout(live, cart_id, [{"method": "cash", "amount": 999}], "kiosk", k), 201)
    assert again["sale"]["id"] == first["sale"]["id"]
    assert again["sale"]["number"] == first["sale"]["number"]
    assert again == first
    assert live.outbox_pending() == pending + 1
    assert day_report(live)["sales"] == sales_before + 1

    other = new_cart(live)["id"]
    scan(live, other, SOAP_CODE)
    response = checkout(live, other, [{"method": "cash", "amount": 333}], "kiosk", k)
    body = live.ok(response, 409)
    assert body["error"]["code"] == "idempotency_key_reused"
    assert live.ok(live.get(f"/api/v1/carts/{other}", "kiosk"))["status"] == "open"
    assert live.outbox_pending() == pending + 1


def test_sale_numbers_increase_by_one_without_gaps(live: Live) -> None:
    start = day_report(live)["sales"]
    numbers = []
    for barcode in (MILK_CODE, SOAP_CODE, RICE_CODE, SOAP_UPC_A):
        numbers.append(sell(live, [(barcode, 1)])["sale"]["number"])
        # a refused checkout in between must not use up a number
        cart_id = new_cart(live)["id"]
        scan(live, cart_id, MILK_CODE)
        response = checkout(live, cart_id, [{"method": "card", "amount": 1}])
        assert _error_code(live, response, 422) == "payment_mismatch"
    assert numbers == [f"{STORE_ID}-{n:06d}" for n in range(start + 1, start + 5)]


def test_age_restricted_items_need_an_attendant(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE)
    cart = scan(live, cart_id, BAIJIU_CODE)
    assert (cart["approval"]["required"], cart["approval"]["approved"]) == (True, False)
    total = cart["totals"]["total"]
    assert total == 1250 + 19900
    assert cart["totals"]["tax"] == tax_in(1250, 900) + tax_in(19900, 1300)
    pay = [{"method": "cash", "amount": total}]

    body = live.ok(checkout(live, cart_id, pay), 409)
    assert body["error"]["code"] == "approval_required"
    assert body["error"]["details"]["skus"] == ["BAIJIU"]

    # a kiosk (or a phone) cannot approve itself
    for role in ("kiosk", "phone", "handheld"):
        response = live.post(f"/api/v1/carts/{cart_id}/approvals", role, json={})
        assert _error_code(live, response, 403) == "forbidden"
    approved = live.ok(live.post(f"/api/v1/carts/{cart_id}/approvals", "tablet", json={}))
    assert (approved["approval"]["required"], approved["approval"]["approved"]) == (True, True)
    assert approved["approval"]["approved_by"] == live.device_ids["tablet"]
    baijiu = next(line for line in approved["lines"] if line["sku"] == "BAIJIU")
    assert approved["approval"]["lines"] == [{"line_id": baijiu["id"], "quantity": 1}]

    # a new restricted scan needs a new look
    cart = scan(live, cart_id, BAIJIU_CODE)
    assert (cart["approval"]["required"], cart["approval"]["approved"]) == (True, False)
    assert _error_code(live, checkout(live, cart_id, pay), 409) == "approval_required"
    live.ok(live.post(f"/api/v1/carts/{cart_id}/approvals", "manager", json={"note": "ID seen"}))

    pay = [{"method": "cash", "amount": cart["totals"]["total"]}]
    sale = live.ok(checkout(live, cart_id, pay), 201)["sale"]
    assert sale["approved_by"] == live.device_ids["manager"]
    assert sale["total"] == 1250 + 2 * 19900


# --- receipts -------------------------------------------------------------------------------------


def test_receipt_json_and_text_fit_the_paper(live: Live) -> None:
    body = sell(live, [(RICE_CODE, 2), (MILK_CODE, 1), (weighed_code(APPLE_PLU, 1234), 1)])
    sale = body["sale"]
    receipt = live.ok(live.get(f"/api/v1/sales/{sale['id']}/receipt", "kiosk"))
    assert receipt == body["receipt"]
    assert receipt["store_name"] == STORE_NAME
    assert receipt["store_id"] == STORE_ID
    assert receipt["sale_number"] == sale["number"]
    assert receipt["sale_id"] == sale["id"]
    assert receipt["currency"] == "CNY"
    assert (receipt["subtotal"], receipt["tax"], receipt["total"]) == (
        sale["subtotal"],
        sale["tax"],
        sale["total"],
    )
    assert receipt["total"] == 2 * 4990 + 1250 + 1234
    assert [line["name"] for line in receipt["lines"]] == [
        "东北大米 5kg",
        "Fresh Milk 1L",
        "Fuji Apples",
    ]
    assert receipt["lines"][2]["weight_g"] == 781
    assert receipt["payments"] == [{"method": "cash", "amount": receipt["total"]}]

    for width in (32, 48):
        response = live.get(
            f"/api/v1/sales/{sale['id']}/receipt",
            "kiosk",
            params={"format": "text", "width": str(width)},
        )
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.text
        assert text.endswith("\n")
        lines = text.rstrip("\n").split("\n")
        for line in lines:
            assert display_width(line) <= width, (width, line)
            assert wcswidth(line) <= width, (width, line)
        assert any("东北大米" in line for line in lines)
        assert any(sale["number"] in line for line in lines)
        total_line = next(line for line in lines if line.startswith("TOTAL CNY"))
        assert total_line.endswith("124.64")
        assert any(line.startswith("VAT 9% incl.") for line in lines)
        assert sum(1 for line in lines if set(line) == {"-"} and len(line) == width) == 4
    # JSON is the default, and the text form is there too
    assert "东北大米" in receipt["text"]


# --- scan-to-buy and the exit gate ----------------------------------------------------------------


def test_scan_to_buy_exit_pass_is_valid_once(live: Live) -> None:
    cart_id = new_cart(live, "phone", "scan_to_buy")["id"]
    scan(live, cart_id, SOAP_CODE, 2, role="phone")
    cart = scan(live, cart_id, MILK_CODE, role="phone")
    total = cart["totals"]["total"]
    assert total == 666 + 1250
    body = live.ok(
        checkout(live, cart_id, [{"method": "wallet", "amount": total}], role="phone"), 201
    )
    sale, exit_pass = body["sale"], body["exit_pass"]
    assert sale["channel"] == "scan_to_buy"
    assert set(exit_pass) == {"token", "qr_svg", "expires_at"}
    token = exit_pass["token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert "<svg" in exit_pass["qr_svg"]
    assert datetime.fromisoformat(exit_pass["expires_at"]) > datetime.fromisoformat(
        sale["created_at"]
    )

    # the shopper's own phone sees the sale; another phone does not
    assert live.ok(live.get(f"/api/v1/sales/{sale['id']}", "phone"))["id"] == sale["id"]
    other = live.get(f"/api/v1/sales/{sale['id']}", "phone2")
    assert _error_code(live, other, 404) == "unknown_sale"

    verify = "/api/v1/exit-passes/verify"
    # only the gate or staff may use up a pass
    for role in ("kiosk", "phone"):
        assert _error_code(live, live.post(verify, role, json={"token": token}), 403) == (
            "forbidden"
        )
    assert _error_code(live, live.post(verify, json={"token": token}), 401) == "unauthorized"

    # tampered passes: a lowered total in the payload, a changed signature byte
    payload_b64, sig_b64 = token.split(".")
    payload = bytearray(_b64d(payload_b64))
    struct.pack_into(">Q", payload, 9, 1)  # version u8, issued u32, ttl u32, then total u64
    lowered = f"{_b64e(bytes(payload))}.{sig_b64}"
    sig = bytearray(_b64d(sig_b64))
    sig[0] ^= 0x01
    resigned = f"{payload_b64}.{_b64e(bytes(sig))}"
    pending = live.outbox_pending()
    for forged in (lowered, resigned):
        verdict = live.ok(live.post(verify, "exit", json={"token": forged}))
        assert verdict["valid"] is False
        assert verdict["reason"] == "forged"
        assert verdict["sale_id"] is None
    verdict = live.ok(live.post(verify, "exit", json={"token": "not-a-pass"}))
    assert (verdict["valid"], verdict["reason"]) == (False, "malformed")
    assert live.outbox_pending() == pending

    first = live.ok(live.post(verify, "exit", json={"token": token}))
    assert first["valid"] is True
    assert first["reason"] is None
    assert first["sale_id"] == sale["id"]
    assert first["sale_number"] == sale["number"]
    assert (first["total"], first["item_count"]) == (1916, 3)
    assert isinstance(first["audit"], bool)
    assert live.outbox_pending() == pending + 1

    second = live.ok(live.post(verify, "handheld", json={"token": token}))
    assert (second["valid"], second["reason"], second["sale_id"]) == (False, "used", sale["id"])
    assert second["audit"] is False
    assert live.outbox_pending() == pending + 1


# --- returns --------------------------------------------------------------------------------------


def test_partial_returns_refund_exactly_and_restock(live: Live) -> None:
    soap_before = stock(live, "SOAP")
    body = sell(live, [(SOAP_CODE, 2), (MILK_CODE, 1)])
    sale = body["sale"]
    soap_line = next(line for line in sale["lines"] if line["sku"] == "SOAP")
    assert soap_line["total"] == 666
    assert stock(live, "SOAP") == soap_before - 2
    pending = live.outbox_pending()
    url = f"/api/v1/sales/{sale['id']}/returns"
    one = {"lines": [{"line_id": soap_line["id"], "quantity": 1}], "reason": "damaged"}

    assert _error_code(live, live.post(url, "kiosk", json=one), 403) == "forbidden"
    assert _error_code(live, live.post(url, "phone", json=one), 403) == "forbidden"

    first = live.ok(live.post(url, "handheld", json=one), 201)["return"]
    assert first["sale_id"] == sale["id"]
    assert first["reason"] == "damaged"
    assert first["refund_total"] == half_up_div(666 * 1, 2) == 333
    assert first["lines"] == [{"line_id": soap_line["id"], "quantity": 1, "amount": 333}]
    assert first["refunds"] == [{"method": "cash", "amount": 333}]
    assert stock(live, "SOAP") == soap_before - 1
    assert live.outbox_pending() == pending + 1

    rest = live.ok(live.post(url, "manager", json=one), 201)["return"]
    assert rest["refund_total"] == 333
    assert first["refund_total"] + rest["refund_total"] == soap_line["total"]
    assert stock(live, "SOAP") == soap_before
    assert live.outbox_pending() == pending + 2

    body = live.ok(live.post(url, "tablet", json=one), 409)
    assert body["error"]["code"] == "return_exceeds_sale"
    assert body["error"]["details"]["returnable"] == 0
    assert stock(live, "SOAP") == soap_before
    assert live.outbox_pending() == pending + 2

    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "handheld"))
    line = next(line for line in fetched["lines"] if line["id"] == soap_line["id"])
    assert (line["returned_quantity"], line["refunded_amount"]) == (2, 666)
    milk = next(line for line in fetched["lines"] if line["sku"] == "MILK1L")
    assert (milk["returned_quantity"], milk["refunded_amount"]) == (0, 0)


def test_return_refunds_follow_the_tenders(live: Live) -> None:
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, SOAP_CODE, 2)
    cart = scan(live, cart_id, MILK_CODE)
    assert cart["totals"]["total"] == 1916
    payments = [{"method": "card", "amount": 1000}, {"method": "cash", "amount": 1000}]
    sale = live.ok(checkout(live, cart_id, payments), 201)["sale"]
    assert sale["change"] == 84
    milk = next(line for line in sale["lines"] if line["sku"] == "MILK1L")
    ret = live.ok(
        live.post(
            f"/api/v1/sales/{sale['id']}/returns",
            "manager",
            json={"lines": [{"line_id": milk["id"], "quantity": 1}], "reason": "expired"},
        ),
        201,
    )["return"]
    assert ret["refund_total"] == 1250
    # card paid 1000, cash really paid 1000 - 84 change = 916
    card_share, cash_share = largest_remainder(1250, [1000, 916])
    assert sorted((r["method"], r["amount"]) for r in ret["refunds"]) == [
        ("card", card_share),
        ("cash", cash_share),
    ]
    assert sum(r["amount"] for r in ret["refunds"]) == 1250


def test_return_retry_with_idempotency_key_returns_the_first_result(live: Live) -> None:
    sale = sell(live, [(RICE_CODE, 3)])["sale"]
    line = sale["lines"][0]
    url = f"/api/v1/sales/{sale['id']}/returns"
    body = {"lines": [{"line_id": line["id"], "quantity": 1}], "reason": "changed mind"}
    headers = {"Idempotency-Key": key()}
    rice_before = stock(live, "RICE5")
    pending = live.outbox_pending()

    first = live.ok(live.post(url, "handheld", json=body, headers=headers), 201)
    again = live.ok(live.post(url, "handheld", json=body, headers=headers), 201)
    assert again["return"]["id"] == first["return"]["id"]
    assert stock(live, "RICE5") == rice_before + 1
    assert live.outbox_pending() == pending + 1
    fetched = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "handheld"))
    assert fetched["lines"][0]["returned_quantity"] == 1
    # "a retry returns the first result" (DESIGN.md section 3): the whole body, refunds included
    assert first["return"]["refunds"] == [{"method": "cash", "amount": 4990}]
    assert again["return"].get("refunds") == first["return"]["refunds"], again
    assert again == first


# --- stock ----------------------------------------------------------------------------------------


def test_stock_movements_receive_shrink_adjust(live: Live) -> None:
    pending = live.outbox_pending()
    before = live.ok(live.get("/api/v1/stock/MILK1L", "handheld"))
    assert set(before) == {"sku", "name", "on_hand", "unit"}
    assert (before["sku"], before["name"], before["unit"]) == ("MILK1L", "Fresh Milk 1L", "each")
    assert live.ok(live.get("/api/v1/stock/APPLE", "tablet"))["unit"] == "g"
    on_hand = before["on_hand"]
    url = "/api/v1/stock/movements"

    received = live.ok(
        live.post(url, "handheld", json={"sku": "MILK1L", "quantity": 100, "kind": "receive"}), 201
    )
    on_hand += 100
    assert (received["sku"], received["kind"], received["quantity"]) == ("MILK1L", "receive", 100)
    assert received["on_hand"] == on_hand
    assert received["below_zero"] is (on_hand < 0)

    response = live.post(url, "handheld", json={"sku": "MILK1L", "quantity": 2, "kind": "shrink"})
    body = live.ok(response, 422)
    assert body["error"]["code"] == "reason_required"
    assert body["error"]["details"]["field"] == "reason"
    assert live.outbox_pending() == pending + 1

    shrunk = live.ok(
        live.post(
            url,
            "tablet",
            json={"sku": "MILK1L", "quantity": 2, "kind": "shrink", "reason": "damaged"},
        ),
        201,
    )
    on_hand -= 2
    assert (shrunk["quantity"], shrunk["reason"], shrunk["on_hand"]) == (-2, "damaged", on_hand)

    for delta in (-3, 1):
        moved = live.ok(
            live.post(
                url,
                "manager",
                json={"sku": "MILK1L", "quantity": delta, "kind": "adjust", "reason": "count"},
            ),
            201,
        )
        on_hand += delta
        assert (moved["quantity"], moved["on_hand"]) == (delta, on_hand)
    assert stock(live, "MILK1L") == on_hand == before["on_hand"] + 96
    assert live.outbox_pending() == pending + 4

    # shoppers' devices neither read nor move stock
    for role in ("phone", "kiosk", "exit"):
        assert _error_code(live, live.get("/api/v1/stock/MILK1L", role), 403) == "forbidden"
        response = live.post(url, role, json={"sku": "MILK1L", "quantity": 1, "kind": "receive"})
        assert _error_code(live, response, 403) == "forbidden"
    assert stock(live, "MILK1L") == on_hand
    assert live.outbox_pending() == pending + 4


def test_weighed_sales_move_stock_in_grams(live: Live) -> None:
    before = stock(live, "APPLE")
    sell(live, [(weighed_code(APPLE_PLU, 1234), 1), (weighed_code(APPLE_PLU, 790), 1)])
    # 1234 / 15.80 per kg = 781 g; 790 / 15.80 = 500 g
    assert stock(live, "APPLE") == before - 781 - 500


# --- sync status and the day report ---------------------------------------------------------------


def test_sync_status_counts_each_sale_return_and_movement(live: Live) -> None:
    status = live.ok(live.get("/api/v1/sync/status", "kiosk"))
    # The contract's fields (DESIGN.md section 5), and what an unenrolled store says of its link.
    assert {
        "online",
        "cloud",
        "outbox_pending",
        "outbox_last_seq",
        "oldest_pending_age_s",
        "last_push_at",
        "last_pull_at",
        "last_error",
        "enrolled",
        "acked_seq",
        "halted",
        "quarantined",
    } <= set(status)
    assert status["online"] is False and status["enrolled"] is False
    assert status["cloud"] is None and status["halted"] is None
    assert status["last_push_at"] is None
    assert _error_code(live, live.get("/api/v1/sync/status", "phone"), 403) == "forbidden"

    pending = status["outbox_pending"]
    sale = sell(live, [(MILK_CODE, 2)])["sale"]
    after_sale = live.ok(live.get("/api/v1/sync/status", "tablet"))
    assert after_sale["outbox_pending"] == pending + 1
    assert after_sale["outbox_last_seq"] == status["outbox_last_seq"] + 1
    assert after_sale["oldest_pending_age_s"] is not None
    assert after_sale["oldest_pending_age_s"] >= 0

    line_id = sale["lines"][0]["id"]
    live.ok(
        live.post(
            f"/api/v1/sales/{sale['id']}/returns",
            "handheld",
            json={"lines": [{"line_id": line_id, "quantity": 1}], "reason": "leaking"},
        ),
        201,
    )
    assert live.outbox_pending() == pending + 2
    live.ok(
        live.post(
            "/api/v1/stock/movements",
            "handheld",
            json={"sku": "RICE5", "quantity": 5, "kind": "receive"},
        ),
        201,
    )
    assert live.outbox_pending() == pending + 3
    # reads and cart edits are not events
    cart_id = new_cart(live)["id"]
    scan(live, cart_id, MILK_CODE)
    live.get(f"/api/v1/sales/{sale['id']}", "kiosk")
    assert live.outbox_pending() == pending + 3


def test_day_report_adds_up_what_happened(live: Live) -> None:
    before = day_report(live)
    assert before["store_id"] == STORE_ID
    assert before["currency"] == "CNY"
    assert before["net_revenue"] == before["revenue"] - before["refunded"]
    rice0, milk0 = stock(live, "RICE5"), stock(live, "MILK1L")

    # receive 5 rice, sell 2 rice + 1 milk, return 1 rice, shrink 1 milk
    live.ok(
        live.post(
            "/api/v1/stock/movements",
            "handheld",
            json={"sku": "RICE5", "quantity": 5, "kind": "receive"},
        ),
        201,
    )
    sale = sell(live, [(RICE_CODE, 2), (MILK_CODE, 1)])["sale"]
    rice_line = next(line for line in sale["lines"] if line["sku"] == "RICE5")
    live.ok(
        live.post(
            f"/api/v1/sales/{sale['id']}/returns",
            "manager",
            json={"lines": [{"line_id": rice_line["id"], "quantity": 1}], "reason": "torn bag"},
        ),
        201,
    )
    live.ok(
        live.post(
            "/api/v1/stock/movements",
            "manager",
            json={"sku": "MILK1L", "quantity": 1, "kind": "shrink", "reason": "expired"},
        ),
        201,
    )
    after = day_report(live)

    below_zero = sum(
        [
            rice0 + 5 < 0,  # receive
            rice0 + 5 - 2 < 0,  # sale line rice
            milk0 - 1 < 0,  # sale line milk
            rice0 + 5 - 2 + 1 < 0,  # return
            milk0 - 2 < 0,  # shrink
        ]
    )
    delta = {k: after[k] - before[k] for k in before if isinstance(before[k], int)}
    assert delta == {
        "sales": 1,
        "items": 3,
        "revenue": 2 * 4990 + 1250,
        "returns": 1,
        "refunded": 4990,
        "net_revenue": 2 * 4990 + 1250 - 4990,
        "stock_movements": 5,
        "below_zero_movements": below_zero,
        "outbox_pending": 4,
    }
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert after["date"] == today
    assert _error_code(live, live.get("/api/v1/reports/day", "kiosk"), 403) == "forbidden"
    assert _error_code(live, live.get("/api/v1/reports/day", "handheld"), 403) == "forbidden"


@pytest.mark.parametrize("role", ["kiosk", "phone", "tablet", "manager"])
def test_every_shopper_role_can_sell(live: Live, role: str) -> None:
    channel = "scan_to_buy" if role == "phone" else "kiosk"
    body = sell(live, [(SOAP_CODE, 1)], role=role, channel=channel, method="card")
    assert body["sale"]["device_id"] == live.device_ids[role]
    assert body["sale"]["total"] == 333
    assert (body["exit_pass"] is not None) is (channel == "scan_to_buy")
