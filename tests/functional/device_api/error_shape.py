"""The error shape every error path must have, and what such a path must leave alone.

Each feature's test module lists its error cases (``Case``: the request, the expected status
and code, and for validation errors the field the details must name); ``assert_error_path``
sends one and checks: the status, ``Content-Type: application/json``, a body of exactly
``{"error": {"code": str, "message": str, "details": dict}}``, the expected code (and field), no
traceback in the server log, and nothing half-written: the outbox depth, an open cart, a sale and
the stock levels are the same after the failed request as before it. The requests aim at a
``World`` set up once with successful requests.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

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


def build_world(live: Live) -> World:
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
    payments = [{"method": "cash", "amount": cart["totals"]["total"]}]
    sale = live.ok(checkout(live, w.closed_cart, payments, idempotency_key=w.sale_key), 201)["sale"]
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


def post(path: str, body: Any, role: str | None = "kiosk", **kw: Any) -> Req:
    return Req("POST", path, role, json=body, **kw)


def raw(
    path: str, data: bytes | str, role: str | None = "kiosk", headers: dict[str, str] | None = None
) -> Req:
    headers = {"Content-Type": "application/json", **(headers or {})}
    return Req("POST", path, role, data=data, headers=headers)


def add_line(w: World, body: Any, cart: str | None = None, role: str | None = "kiosk") -> Req:
    return post(f"/api/v1/carts/{cart or w.open_cart}/lines", body, role)


def patch_line(w: World, body: Any, cart: str | None = None, line: str | None = None) -> Req:
    cart = cart or w.open_cart
    return Req("PATCH", f"/api/v1/carts/{cart}/lines/{line or w.open_line}", json=body)


def pay_cart(
    w: World, payments: Any, cart: str | None = None, idem: str | None = "new", **kw: Any
) -> Req:
    headers = {} if idem is None else {"Idempotency-Key": key() if idem == "new" else idem}
    body = payments if isinstance(payments, dict) else {"payments": payments}
    return post(f"/api/v1/carts/{cart or w.open_cart}/checkout", body, headers=headers, **kw)


def move(body: Any, role: str = "handheld") -> Req:
    return post("/api/v1/stock/movements", body, role)


def return_lines(w: World, body: Any, sale: str | None = None, **kw: Any) -> Req:
    return post(f"/api/v1/sales/{sale or w.sale}/returns", body, "handheld", **kw)


def one_line(line_id: str, quantity: Any = 1, reason: str = "damaged") -> dict[str, Any]:
    return {"lines": [{"line_id": line_id, "quantity": quantity}], "reason": reason}


def declined_card(w: World) -> Req:
    """A cart on the declining server, ready to pay by card."""
    assert w.declining is not None
    cart_id = new_cart(w.declining)["id"]
    scan(w.declining, cart_id, MILK_CODE)
    return pay_cart(w, [{"method": "card", "amount": 1250}], cart=cart_id, server="declining")


def after_decline(w: World, body: dict[str, Any]) -> None:
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


def after_partial_return(w: World, body: dict[str, Any]) -> None:
    sale = w.live.ok(w.live.get(f"/api/v1/sales/{w.sale}", "handheld"))
    soap = next(line for line in sale["lines"] if line["id"] == w.sale_soap_line)
    assert (soap["returned_quantity"], soap["refunded_amount"]) == (0, 0)


def allows(*methods: str) -> Callable[[World, dict[str, Any]], None]:
    def check(w: World, body: dict[str, Any]) -> None:
        assert set(methods) <= set(body["error"]["details"]["allowed"])

    return check


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


def assert_error_path(case: Case, world: World, request: pytest.FixtureRequest) -> None:
    """Send ``case``'s request; check the error shape, and that nothing was written."""
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


def error_code(live: Live, response: requests.Response, status: int) -> str:
    """The error code of a response that must have ``status`` (and a body the contract allows)."""
    body = live.ok(response, status)
    return str(body["error"]["code"])
