"""Every error path a device can reach, over HTTP against a real server: one shape, no 500s.

For each case: the status, ``Content-Type: application/json``, a body of exactly
``{"error": {"code": str, "message": str, "details": dict}}``, the expected code (and, for
validation errors, the field it names), no traceback in the server log, and nothing half-written:
the outbox depth, an open cart, a sale and the stock levels are the same after the failed request
as before it.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.builders import weighed_code
from tests.functional.conftest import Live
from tests.functional.helpers import (
    BAIJIU_CODE,
    MILK_CODE,
    SOAP_CODE,
    checkout,
    key,
    new_cart,
    scan,
)

BAD_CHECK_DIGIT = MILK_CODE[:-1] + str((int(MILK_CODE[-1]) + 1) % 10)
UNKNOWN_EAN13 = "4006381333931"
NO_SUCH = "01a20000-0000-7000-8000-000000000000"


@dataclass
class World:
    """What the failing requests aim at, set up once with successful requests."""

    live: Live
    open_cart: str = ""
    open_line: str = ""
    big_cart: str = ""
    big_line: str = ""
    age_cart: str = ""
    empty_cart: str = ""
    phone_cart: str = ""
    closed_cart: str = ""
    closed_line: str = ""
    sale: str = ""
    sale_key: str = ""
    sale_milk_line: str = ""
    sale_soap_line: str = ""
    return_key: str = ""
    other_sale: str = ""
    other_sale_line: str = ""
    declining: Live | None = None


@pytest.fixture(scope="module")
def world(live: Live) -> World:
    w = World(live)
    cart = new_cart(live)
    w.open_cart = cart["id"]
    w.open_line = scan(live, w.open_cart, MILK_CODE)["lines"][0]["id"]

    w.big_cart = new_cart(live)["id"]
    w.big_line = scan(live, w.big_cart, MILK_CODE, 9_999)["lines"][0]["id"]

    w.age_cart = new_cart(live)["id"]
    scan(live, w.age_cart, BAIJIU_CODE)
    w.empty_cart = new_cart(live)["id"]
    w.phone_cart = new_cart(live, "phone", "scan_to_buy")["id"]
    scan(live, w.phone_cart, SOAP_CODE, role="phone")

    # A paid cart: milk x2 + soap; then one milk returned with an Idempotency-Key.
    w.closed_cart = new_cart(live)["id"]
    scan(live, w.closed_cart, MILK_CODE, 2)
    cart = scan(live, w.closed_cart, SOAP_CODE)
    w.closed_line = cart["lines"][0]["id"]
    w.sale_key = key()
    pay = [{"method": "cash", "amount": cart["totals"]["total"]}]
    sale = live.ok(checkout(live, w.closed_cart, pay, idempotency_key=w.sale_key), 201)["sale"]
    w.sale = sale["id"]
    w.sale_milk_line = sale["lines"][0]["id"]
    w.sale_soap_line = sale["lines"][1]["id"]
    w.return_key = key()
    live.ok(
        live.post(
            f"/api/v1/sales/{w.sale}/returns",
            "handheld",
            json={"lines": [{"line_id": w.sale_milk_line, "quantity": 1}], "reason": "damaged"},
            headers={"Idempotency-Key": w.return_key},
        ),
        201,
    )

    other_cart = new_cart(live)["id"]
    scan(live, other_cart, SOAP_CODE)
    other = live.ok(checkout(live, other_cart, [{"method": "card", "amount": 333}]), 201)
    w.other_sale = other["sale"]["id"]
    w.other_sale_line = other["sale"]["lines"][0]["id"]
    return w


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    role: str | None = "kiosk"
    json: Any = None
    data: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    server: str = "live"
    #: announce a body of this many bytes but send only the headers, then read the answer: the
    #: server refuses an oversized body before reading it (and closes the connection after)
    announce_only: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str
    build: Callable[[World], Req]
    #: a field the error's details must name (validation errors)
    field: str | None = None
    #: more checks after the common ones
    then: Callable[[World, dict[str, Any]], None] | None = None


def _post(path: str, body: Any, role: str | None = "kiosk", **kw: Any) -> Req:
    return Req("POST", path, role, json=body, **kw)


def _raw(
    path: str, data: bytes | str, role: str | None = "kiosk", headers: dict[str, str] | None = None
) -> Req:
    headers = {"Content-Type": "application/json", **(headers or {})}
    return Req("POST", path, role, data=data, headers=headers)


def _lines(w: World, body: Any, cart: str | None = None, role: str | None = "kiosk") -> Req:
    return _post(f"/api/v1/carts/{cart or w.open_cart}/lines", body, role)


def _patch(w: World, body: Any, cart: str | None = None, line: str | None = None) -> Req:
    cart = cart or w.open_cart
    return Req("PATCH", f"/api/v1/carts/{cart}/lines/{line or w.open_line}", json=body)


def _pay(
    w: World, payments: Any, cart: str | None = None, idem: str | None = "new", **kw: Any
) -> Req:
    headers = {} if idem is None else {"Idempotency-Key": key() if idem == "new" else idem}
    body = payments if isinstance(payments, dict) else {"payments": payments}
    return _post(f"/api/v1/carts/{cart or w.open_cart}/checkout", body, headers=headers, **kw)


def _move(body: Any, role: str = "handheld") -> Req:
    return _post("/api/v1/stock/movements", body, role)


def _return(w: World, body: Any, sale: str | None = None, **kw: Any) -> Req:
    return _post(f"/api/v1/sales/{sale or w.sale}/returns", body, "handheld", **kw)


def _one(line_id: str, quantity: Any = 1, reason: str = "damaged") -> dict[str, Any]:
    return {"lines": [{"line_id": line_id, "quantity": quantity}], "reason": reason}


def _declined(w: World) -> Req:
    """A cart on the declining server, ready to pay by card."""
    assert w.declining is not None
    cart_id = new_cart(w.declining)["id"]
    scan(w.declining, cart_id, MILK_CODE)
    return _pay(w, [{"method": "card", "amount": 1250}], cart=cart_id, server="declining")


def _after_decline(w: World, body: dict[str, Any]) -> None:
    assert w.declining is not None
    assert body["error"]["details"]["method"] == "card"
    cart_id = body["_request_path"].split("/")[4]
    cart = w.declining.ok(w.declining.get(f"/api/v1/carts/{cart_id}", "kiosk"))
    assert cart["status"] == "open"
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [("MILK1L", 1)]
    # declined again with a wallet; cash needs no acquirer, and the cart is still payable
    again = checkout(w.declining, cart_id, [{"method": "wallet", "amount": 1250}])
    assert again.status_code == 402
    pending = w.declining.outbox_pending()
    paid = checkout(w.declining, cart_id, [{"method": "cash", "amount": 1250}])
    assert w.declining.ok(paid, 201)["sale"]["total"] == 1250
    assert w.declining.outbox_pending() == pending + 1


def _after_partial_return(w: World, body: dict[str, Any]) -> None:
    sale = w.live.ok(w.live.get(f"/api/v1/sales/{w.sale}", "handheld"))
    soap = next(line for line in sale["lines"] if line["id"] == w.sale_soap_line)
    assert (soap["returned_quantity"], soap["refunded_amount"]) == (0, 0)


def _allowed(*methods: str) -> Callable[[World, dict[str, Any]], None]:
    def check(w: World, body: dict[str, Any]) -> None:
        assert set(methods) <= set(body["error"]["details"]["allowed"])

    return check


CASES = [
    # --- 400: the body is not a JSON object ---
    Case("malformed_json", 400, "malformed_json", lambda w: _raw("/api/v1/carts", "{")),
    Case("json_list", 400, "malformed_json", lambda w: _raw("/api/v1/carts", "[1, 2]")),
    Case("json_null", 400, "malformed_json", lambda w: _raw("/api/v1/carts", "null")),
    Case("json_string", 400, "malformed_json", lambda w: _raw("/api/v1/carts", '"kiosk"')),
    Case(
        "json_not_utf8",
        400,
        "malformed_json",
        lambda w: _raw("/api/v1/carts", b'{"channel": "\xff"}'),
    ),
    Case(
        "malformed_json_on_lines",
        400,
        "malformed_json",
        lambda w: _raw(f"/api/v1/carts/{w.open_cart}/lines", "{'barcode': 1}"),
    ),
    Case(
        "malformed_json_on_checkout",
        400,
        "malformed_json",
        lambda w: _raw(
            f"/api/v1/carts/{w.open_cart}/checkout", "{", headers={"Idempotency-Key": key()}
        ),
    ),
    # --- 401: who is calling? ---
    Case(
        "no_token", 401, "unauthorized", lambda w: Req("GET", f"/api/v1/carts/{w.open_cart}", None)
    ),
    Case(
        "no_token_write",
        401,
        "unauthorized",
        lambda w: _lines(w, {"barcode": MILK_CODE}, role=None),
    ),
    Case(
        "bad_token",
        401,
        "unauthorized",
        lambda w: Req(
            "GET",
            f"/api/v1/carts/{w.open_cart}",
            None,
            headers={"Authorization": "Bearer aisle_kiosk_forged"},
        ),
    ),
    Case(
        "wrong_scheme",
        401,
        "unauthorized",
        lambda w: Req(
            "GET",
            f"/api/v1/carts/{w.open_cart}",
            None,
            headers={"Authorization": "Basic " + w.live.tokens["kiosk"]},
        ),
    ),
    Case(
        "empty_bearer",
        401,
        "unauthorized",
        lambda w: Req("GET", "/api/v1/sync/status", None, headers={"Authorization": "Bearer "}),
    ),
    # --- 403: the wrong role ---
    Case(
        "kiosk_approves",
        403,
        "forbidden",
        lambda w: _post(f"/api/v1/carts/{w.age_cart}/approvals", {}, "kiosk"),
    ),
    Case(
        "phone_approves",
        403,
        "forbidden",
        lambda w: _post(f"/api/v1/carts/{w.phone_cart}/approvals", {}, "phone"),
    ),
    Case(
        "kiosk_moves_stock",
        403,
        "forbidden",
        lambda w: _move({"sku": "MILK1L", "quantity": 1, "kind": "receive"}, "kiosk"),
    ),
    Case(
        "phone_reads_stock", 403, "forbidden", lambda w: Req("GET", "/api/v1/stock/SOAP", "phone")
    ),
    Case(
        "kiosk_verifies_exit_pass",
        403,
        "forbidden",
        lambda w: _post("/api/v1/exit-passes/verify", {"token": "x.y"}, "kiosk"),
    ),
    Case(
        "phone_reads_sync_status",
        403,
        "forbidden",
        lambda w: Req("GET", "/api/v1/sync/status", "phone"),
    ),
    Case("kiosk_reads_day", 403, "forbidden", lambda w: Req("GET", "/api/v1/reports/day", "kiosk")),
    Case(
        "handheld_opens_cart",
        403,
        "forbidden",
        lambda w: _post("/api/v1/carts", {"channel": "kiosk"}, "handheld"),
    ),
    Case(
        "exit_opens_cart",
        403,
        "forbidden",
        lambda w: _post("/api/v1/carts", {"channel": "scan_to_buy"}, "exit"),
    ),
    Case(
        "phone_opens_kiosk_cart",
        403,
        "forbidden",
        lambda w: _post("/api/v1/carts", {"channel": "kiosk"}, "phone"),
    ),
    Case(
        "kiosk_returns",
        403,
        "forbidden",
        lambda w: _post(f"/api/v1/sales/{w.sale}/returns", _one(w.sale_soap_line), "kiosk"),
    ),
    Case(
        "exit_reads_sale", 403, "forbidden", lambda w: Req("GET", f"/api/v1/sales/{w.sale}", "exit")
    ),
    # --- 404: no such thing ---
    Case("unknown_route", 404, "not_found", lambda w: Req("GET", "/api/v1/nope", "manager")),
    Case("unknown_route_anonymous", 404, "not_found", lambda w: Req("GET", "/nope", None)),
    Case("unknown_route_trailing_slash", 404, "not_found", lambda w: _post("/api/v1/carts/", {})),
    Case("unknown_cart", 404, "unknown_cart", lambda w: Req("GET", f"/api/v1/carts/{NO_SUCH}")),
    Case(
        "unknown_cart_scan",
        404,
        "unknown_cart",
        lambda w: _lines(w, {"barcode": MILK_CODE}, cart=NO_SUCH),
    ),
    Case(
        "unknown_cart_checkout",
        404,
        "unknown_cart",
        lambda w: _pay(w, [{"method": "cash", "amount": 1250}], cart=NO_SUCH),
    ),
    Case(
        "other_phones_cart",
        404,
        "unknown_cart",
        lambda w: Req("GET", f"/api/v1/carts/{w.phone_cart}", "phone2"),
    ),
    Case(
        "unknown_line_patch",
        404,
        "unknown_line",
        lambda w: _patch(w, {"quantity": 2}, line=NO_SUCH),
    ),
    Case(
        "unknown_line_delete",
        404,
        "unknown_line",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.open_cart}/lines/{NO_SUCH}"),
    ),
    Case(
        "line_of_another_cart",
        404,
        "unknown_line",
        lambda w: _patch(w, {"quantity": 2}, line=w.big_line),
    ),
    Case("unknown_sale", 404, "unknown_sale", lambda w: Req("GET", f"/api/v1/sales/{NO_SUCH}")),
    Case(
        "unknown_sale_receipt",
        404,
        "unknown_sale",
        lambda w: Req("GET", f"/api/v1/sales/{NO_SUCH}/receipt", params={"format": "text"}),
    ),
    Case(
        "unknown_sale_return",
        404,
        "unknown_sale",
        lambda w: _return(w, _one(w.sale_soap_line), sale=NO_SUCH),
    ),
    Case(
        "return_line_of_another_sale",
        404,
        "unknown_line",
        lambda w: _return(w, _one(w.other_sale_line)),
    ),
    Case(
        "unknown_sku_stock",
        404,
        "unknown_sku",
        lambda w: Req("GET", "/api/v1/stock/NOPE", "tablet"),
    ),
    Case(
        "unknown_sku_movement",
        404,
        "unknown_sku",
        lambda w: _move({"sku": "NOPE", "quantity": 1, "kind": "receive"}),
    ),
    Case(
        "unknown_product",
        404,
        "unknown_product",
        lambda w: Req("GET", f"/api/v1/products/by-barcode/{UNKNOWN_EAN13}"),
    ),
    Case(
        "unknown_product_scan",
        404,
        "unknown_product",
        lambda w: _lines(w, {"barcode": UNKNOWN_EAN13}),
    ),
    Case(
        "unknown_plu_scan",
        404,
        "unknown_product",
        lambda w: _lines(w, {"barcode": weighed_code("999999", 100)}),
    ),
    # --- 405: the wrong method ---
    Case(
        "put_carts",
        405,
        "method_not_allowed",
        lambda w: Req("PUT", "/api/v1/carts", json={"channel": "kiosk"}),
        then=_allowed("POST"),
    ),
    Case(
        "delete_healthz",
        405,
        "method_not_allowed",
        lambda w: Req("DELETE", "/healthz", None),
        then=_allowed("GET"),
    ),
    Case(
        "get_checkout",
        405,
        "method_not_allowed",
        lambda w: Req("GET", f"/api/v1/carts/{w.open_cart}/checkout"),
        then=_allowed("POST"),
    ),
    Case(
        "delete_cart",
        405,
        "method_not_allowed",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.open_cart}"),
        then=_allowed("GET"),
    ),
    # --- 409: conflicts with the state of things ---
    Case(
        "approval_required",
        409,
        "approval_required",
        lambda w: _pay(w, [{"method": "cash", "amount": 19900}], cart=w.age_cart),
    ),
    Case(
        "idempotency_key_reused",
        409,
        "idempotency_key_reused",
        lambda w: _pay(w, [{"method": "cash", "amount": 1250}], idem=w.sale_key),
    ),
    Case(
        "cart_closed_scan",
        409,
        "cart_closed",
        lambda w: _lines(w, {"barcode": MILK_CODE}, cart=w.closed_cart),
    ),
    Case(
        "cart_closed_patch",
        409,
        "cart_closed",
        lambda w: _patch(w, {"quantity": 1}, cart=w.closed_cart, line=w.closed_line),
    ),
    Case(
        "cart_closed_delete",
        409,
        "cart_closed",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.closed_cart}/lines/{w.closed_line}"),
    ),
    Case(
        "cart_closed_approve",
        409,
        "cart_closed",
        lambda w: _post(f"/api/v1/carts/{w.closed_cart}/approvals", {}, "tablet"),
    ),
    Case(
        "cart_closed_checkout",
        409,
        "cart_closed",
        lambda w: _pay(w, [{"method": "cash", "amount": 2833}], cart=w.closed_cart),
    ),
    Case(
        "cart_empty",
        409,
        "cart_empty",
        lambda w: _pay(w, [{"method": "cash", "amount": 100}], cart=w.empty_cart),
    ),
    Case(
        "return_exceeds_sale",
        409,
        "return_exceeds_sale",
        lambda w: _return(w, _one(w.sale_milk_line, 2)),
    ),
    Case(
        "return_exceeds_sale_after_a_good_line",
        409,
        "return_exceeds_sale",
        lambda w: _return(
            w,
            {
                "lines": [
                    {"line_id": w.sale_soap_line, "quantity": 1},
                    {"line_id": w.sale_milk_line, "quantity": 5},
                ],
                "reason": "damaged",
            },
        ),
        then=_after_partial_return,
    ),
    Case(
        "return_idempotency_key_reused",
        409,
        "idempotency_key_reused",
        lambda w: _return(
            w,
            _one(w.other_sale_line),
            sale=w.other_sale,
            headers={"Idempotency-Key": w.return_key},
        ),
    ),
    # --- 413 ---
    Case(
        "body_too_large",
        413,
        "payload_too_large",
        lambda w: Req(
            "POST",
            "/api/v1/carts",
            headers={"Content-Type": "application/json"},
            announce_only=300 * 1024,
        ),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "quantity_string",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": "2"}),
        field="quantity",
    ),
    Case(
        "quantity_zero",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": 0}),
        field="quantity",
    ),
    Case(
        "quantity_10000",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": 10_000}),
        field="quantity",
    ),
    Case(
        "quantity_negative",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": -1}),
        field="quantity",
    ),
    Case(
        "quantity_float",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": 2.5}),
        field="quantity",
    ),
    Case(
        "quantity_bool",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "quantity": True}),
        field="quantity",
    ),
    Case(
        "quantity_nan",
        422,
        "validation_error",
        lambda w: _raw(
            f"/api/v1/carts/{w.open_cart}/lines", f'{{"barcode": "{MILK_CODE}", "quantity": NaN}}'
        ),
        field="quantity",
    ),
    Case(
        "merged_quantity_over_limit",
        422,
        "quantity_out_of_range",
        lambda w: _lines(w, {"barcode": MILK_CODE}, cart=w.big_cart),
        field="quantity",
    ),
    Case(
        "unknown_field",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": MILK_CODE, "colour": "red"}),
        field="colour",
    ),
    Case(
        "missing_barcode",
        422,
        "validation_error",
        lambda w: _lines(w, {"quantity": 1}),
        field="barcode",
    ),
    Case(
        "barcode_number",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": int(MILK_CODE)}),
        field="barcode",
    ),
    Case(
        "barcode_too_long",
        422,
        "validation_error",
        lambda w: _lines(w, {"barcode": "1" * 129}),
        field="barcode",
    ),
    Case(
        "channel_unknown",
        422,
        "validation_error",
        lambda w: _post("/api/v1/carts", {"channel": "drive_thru"}),
        field="channel",
    ),
    Case(
        "channel_missing",
        422,
        "validation_error",
        lambda w: _post("/api/v1/carts", {}),
        field="channel",
    ),
    Case(
        "patch_quantity_string",
        422,
        "validation_error",
        lambda w: _patch(w, {"quantity": "2"}),
        field="quantity",
    ),
    Case(
        "patch_quantity_zero",
        422,
        "validation_error",
        lambda w: _patch(w, {"quantity": 0}),
        field="quantity",
    ),
    Case(
        "patch_no_body",
        422,
        "validation_error",
        lambda w: Req("PATCH", f"/api/v1/carts/{w.open_cart}/lines/{w.open_line}"),
        field="quantity",
    ),
    Case(
        "approval_unknown_field",
        422,
        "validation_error",
        lambda w: _post(f"/api/v1/carts/{w.age_cart}/approvals", {"age": 30}, "tablet"),
        field="age",
    ),
    Case(
        "approval_note_too_long",
        422,
        "validation_error",
        lambda w: _post(f"/api/v1/carts/{w.age_cart}/approvals", {"note": "n" * 201}, "tablet"),
        field="note",
    ),
    Case(
        "invalid_barcode_check_digit",
        422,
        "invalid_barcode",
        lambda w: _lines(w, {"barcode": BAD_CHECK_DIGIT}),
    ),
    Case(
        "invalid_barcode_lookup",
        422,
        "invalid_barcode",
        lambda w: Req("GET", f"/api/v1/products/by-barcode/{BAD_CHECK_DIGIT}", "phone"),
    ),
    Case(
        "invalid_barcode_letters",
        422,
        "invalid_barcode",
        lambda w: Req("GET", "/api/v1/products/by-barcode/abc", "handheld"),
    ),
    Case(
        "invalid_barcode_length",
        422,
        "invalid_barcode",
        lambda w: _lines(w, {"barcode": "12345"}),
    ),
    Case(
        "invalid_barcode_arabic_digits",
        422,
        "invalid_barcode",
        lambda w: _lines(w, {"barcode": "٦٩٠٠٠٠٠٠٠٠٠٠١٤"}),
    ),
    Case(
        "invalid_barcode_gs1",
        422,
        "invalid_barcode",
        lambda w: _lines(w, {"barcode": "(01)123"}),
    ),
    Case(
        "invalid_barcode_blank",
        422,
        "invalid_barcode",
        lambda w: _lines(w, {"barcode": "   "}),
    ),
    Case(
        "payment_mismatch_card_short",
        422,
        "payment_mismatch",
        lambda w: _pay(w, [{"method": "card", "amount": 1249}]),
    ),
    Case(
        "payment_mismatch_card_over",
        422,
        "payment_mismatch",
        lambda w: _pay(w, [{"method": "card", "amount": 1251}]),
    ),
    Case(
        "payment_mismatch_cash_short",
        422,
        "payment_mismatch",
        lambda w: _pay(w, [{"method": "cash", "amount": 1000}]),
    ),
    Case(
        "payment_mismatch_card_plus_cash_card_over",
        422,
        "payment_mismatch",
        lambda w: _pay(w, [{"method": "card", "amount": 1300}, {"method": "cash", "amount": 50}]),
    ),
    Case(
        "idempotency_key_required",
        422,
        "idempotency_key_required",
        lambda w: _pay(w, [{"method": "cash", "amount": 1250}], idem=None),
    ),
    Case(
        "idempotency_key_blank",
        422,
        "bad_idempotency_key",
        lambda w: _pay(w, [{"method": "cash", "amount": 1250}], idem=""),
    ),
    Case(
        "idempotency_key_too_long",
        422,
        "bad_idempotency_key",
        lambda w: _pay(w, [{"method": "cash", "amount": 1250}], idem="k" * 129),
    ),
    Case(
        "payments_empty",
        422,
        "validation_error",
        lambda w: _pay(w, []),
        field="payments",
    ),
    Case(
        "payments_missing",
        422,
        "validation_error",
        lambda w: _pay(w, {}),
        field="payments",
    ),
    Case(
        "payment_method_unknown",
        422,
        "validation_error",
        lambda w: _pay(w, [{"method": "bitcoin", "amount": 1250}]),
        field="payments.0.method",
    ),
    Case(
        "payment_amount_zero",
        422,
        "validation_error",
        lambda w: _pay(w, [{"method": "cash", "amount": 0}]),
        field="payments.0.amount",
    ),
    Case(
        "payment_amount_string",
        422,
        "validation_error",
        lambda w: _pay(w, [{"method": "cash", "amount": "1250"}]),
        field="payments.0.amount",
    ),
    Case(
        "payment_amount_float",
        422,
        "validation_error",
        lambda w: _pay(w, [{"method": "cash", "amount": 12.5}]),
        field="payments.0.amount",
    ),
    Case(
        "shrink_without_reason",
        422,
        "reason_required",
        lambda w: _move({"sku": "MILK1L", "quantity": 2, "kind": "shrink"}),
        field="reason",
    ),
    Case(
        "shrink_blank_reason",
        422,
        "reason_required",
        lambda w: _move({"sku": "MILK1L", "quantity": 2, "kind": "shrink", "reason": "  "}),
        field="reason",
    ),
    Case(
        "movement_kind_unknown",
        422,
        "validation_error",
        lambda w: _move({"sku": "MILK1L", "quantity": 2, "kind": "steal"}),
        field="kind",
    ),
    Case(
        "receive_zero",
        422,
        "bad_quantity",
        lambda w: _move({"sku": "MILK1L", "quantity": 0, "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "receive_negative",
        422,
        "bad_quantity",
        lambda w: _move({"sku": "MILK1L", "quantity": -5, "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "adjust_zero",
        422,
        "bad_quantity",
        lambda w: _move({"sku": "MILK1L", "quantity": 0, "kind": "adjust", "reason": "count"}),
        field="quantity",
    ),
    Case(
        "movement_quantity_string",
        422,
        "validation_error",
        lambda w: _move({"sku": "MILK1L", "quantity": "5", "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "movement_sku_missing",
        422,
        "validation_error",
        lambda w: _move({"quantity": 5, "kind": "receive"}),
        field="sku",
    ),
    Case(
        "return_reason_empty",
        422,
        "validation_error",
        lambda w: _return(w, _one(w.sale_soap_line, 1, reason="")),
        field="reason",
    ),
    Case(
        "return_reason_blank",
        422,
        "reason_required",
        lambda w: _return(w, _one(w.sale_soap_line, 1, reason="   ")),
        field="reason",
    ),
    Case(
        "return_no_lines",
        422,
        "validation_error",
        lambda w: _return(w, {"lines": [], "reason": "damaged"}),
        field="lines",
    ),
    Case(
        "return_quantity_zero",
        422,
        "validation_error",
        lambda w: _return(w, _one(w.sale_soap_line, 0)),
        field="lines.0.quantity",
    ),
    Case(
        "return_quantity_string",
        422,
        "validation_error",
        lambda w: _return(w, _one(w.sale_soap_line, "1")),
        field="lines.0.quantity",
    ),
    Case(
        "receipt_width",
        422,
        "validation_error",
        lambda w: Req(
            "GET", f"/api/v1/sales/{w.sale}/receipt", params={"format": "text", "width": "40"}
        ),
        field="width",
    ),
    Case(
        "exit_token_empty",
        422,
        "validation_error",
        lambda w: _post("/api/v1/exit-passes/verify", {"token": ""}, "exit"),
        field="token",
    ),
    Case(
        "exit_token_missing",
        422,
        "validation_error",
        lambda w: _post("/api/v1/exit-passes/verify", {}, "exit"),
        field="token",
    ),
    # --- 402: the acquirer says no ---
    Case("payment_declined", 402, "payment_declined", _declined, then=_after_decline),
]


def _field_names(details: dict[str, Any]) -> set[str]:
    names = {f["field"] for f in details.get("fields", [])}
    if "field" in details:
        names.add(details["field"])
    return names


def _snapshot(w: World) -> dict[str, Any]:
    """What a failed request must leave alone."""
    live = w.live
    return {
        "outbox": live.ok(live.get("/api/v1/sync/status", "manager"))["outbox_last_seq"],
        "pending": live.outbox_pending(),
        "open_cart": live.ok(live.get(f"/api/v1/carts/{w.open_cart}", "kiosk")),
        "big_cart": live.ok(live.get(f"/api/v1/carts/{w.big_cart}", "kiosk")),
        "age_cart": live.ok(live.get(f"/api/v1/carts/{w.age_cart}", "kiosk")),
        "sale": live.ok(live.get(f"/api/v1/sales/{w.sale}", "handheld")),
        "stock": [
            live.ok(live.get(f"/api/v1/stock/{sku}", "handheld"))["on_hand"]
            for sku in ("MILK1L", "SOAP", "BAIJIU")
        ],
        "day": live.ok(live.get("/api/v1/reports/day", "manager")),
        "declining": None
        if w.declining is None
        else (
            w.declining.ok(w.declining.get("/api/v1/sync/status", "manager"))["outbox_last_seq"],
            w.declining.ok(w.declining.get("/api/v1/reports/day", "manager")),
        ),
    }


def _send(server: Live, req: Req) -> tuple[int, str, str]:
    """(status, Content-Type, body text) of ``req`` sent to ``server``."""
    if req.announce_only is None:
        kwargs: dict[str, Any] = {"headers": req.headers, "params": req.params}
        if req.json is not None:
            kwargs["json"] = req.json
        elif req.data is not None:
            kwargs["data"] = req.data
        response = server.request(req.method, req.path, req.role, **kwargs)
        return response.status_code, response.headers.get("Content-Type", ""), response.text
    url = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.putrequest(req.method, req.path)
        for name, value in {**server.headers(req.role), **req.headers}.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(req.announce_only))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def _no_traceback(*servers: Live | None) -> None:
    for server in servers:
        if server is not None:
            log = server.log_text()
            assert "Traceback" not in log and "unhandled error" not in log, server.log_tail()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    if case.id == "payment_declined":
        world.declining = request.getfixturevalue("declining")
    req = case.build(world)
    server = world.declining if req.server == "declining" else world.live
    assert server is not None
    before = _snapshot(world)

    status, content_type, text = _send(server, req)

    assert status != 500, text
    assert status == case.status, (
        f"{req.method} {req.path}: expected {case.status} {case.code}, got {status}: {text[:1000]}"
    )
    assert content_type.split(";")[0].strip() == "application/json"
    body = json.loads(text)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["details"], dict)
    assert error["code"] == case.code, body
    if case.field is not None:
        assert case.field in _field_names(error["details"]), error

    # nothing half-written, no traceback in either server's log
    assert _snapshot(world) == before
    _no_traceback(world.live, world.declining)
    if case.then is not None:
        case.then(world, {**body, "_request_path": req.path})
