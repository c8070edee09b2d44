"""Every write a device may retry: the same key and body get the first answer, once.

Against a real server: the retry is a second HTTP request with the same ``Idempotency-Key``, as a
device sends after a timeout. Counted by what the store holds afterwards, not by the answers.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from tests.functional.conftest import Live
from tests.functional.helpers import MILK_CODE, checkout, new_cart, scan, sell, stock


def _key() -> str:
    return f"retry-{uuid.uuid4()}"


def _post(live: Live, path: str, role: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {"Idempotency-Key": key}  # None: sent without one
    return live.post(path, role, json=body, headers=headers)


def test_a_retried_stock_movement_is_counted_once(live: Live) -> None:
    before = stock(live, "MILK1L")
    key = _key()
    body = {"sku": "MILK1L", "quantity": 12, "kind": "receive"}
    first = live.ok(_post(live, "/api/v1/stock/movements", "handheld", body, key), 201)
    again = live.ok(_post(live, "/api/v1/stock/movements", "handheld", body, key), 201)
    assert again == first
    assert stock(live, "MILK1L") == before + 12
    # The same key with another body is not a retry.
    other = _post(live, "/api/v1/stock/movements", "handheld", {**body, "quantity": 13}, key)
    assert live.ok(other, 409)["error"]["code"] == "idempotency_key_reused"
    assert stock(live, "MILK1L") == before + 12


def test_a_stock_movement_and_a_return_need_a_key(live: Live) -> None:
    body = {"sku": "MILK1L", "quantity": 1, "kind": "receive"}
    response = _post(live, "/api/v1/stock/movements", "handheld", body, None)
    assert live.ok(response, 422)["error"]["code"] == "idempotency_key_required"
    sale = sell(live, [(MILK_CODE, 1)])["sale"]
    ret = {"lines": [{"line_id": sale["lines"][0]["id"], "quantity": 1}], "reason": "spilt"}
    response = _post(live, f"/api/v1/sales/{sale['id']}/returns", "tablet", ret, None)
    assert live.ok(response, 422)["error"]["code"] == "idempotency_key_required"


def test_a_retried_return_refunds_once(live: Live) -> None:
    sale = sell(live, [(MILK_CODE, 2)])["sale"]
    body = {"lines": [{"line_id": sale["lines"][0]["id"], "quantity": 1}], "reason": "spilt"}
    key = _key()
    path = f"/api/v1/sales/{sale['id']}/returns"
    first = live.ok(_post(live, path, "tablet", body, key), 201)
    again = live.ok(_post(live, path, "tablet", body, key), 201)
    assert again == first
    after = live.ok(live.get(f"/api/v1/sales/{sale['id']}", "manager"))
    assert after["lines"][0]["returned_quantity"] == 1


def test_a_retried_scan_adds_the_item_once(live: Live) -> None:
    cart = new_cart(live)
    key = _key()
    path = f"/api/v1/carts/{cart['id']}/lines"
    first = live.ok(_post(live, path, "kiosk", {"barcode": MILK_CODE}, key))
    again = live.ok(_post(live, path, "kiosk", {"barcode": MILK_CODE}, key))
    assert again == first
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["item_count"] == 1
    # Without a key a scan is a scan: two scans, two milks.
    scan(live, cart["id"], MILK_CODE)
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["item_count"] == 2


def test_a_retried_exit_check_gets_its_first_verdict_not_used(live: Live) -> None:
    cart = scan(live, new_cart(live, "phone", "scan_to_buy")["id"], MILK_CODE, role="phone")
    pay = [{"method": "card", "amount": cart["totals"]["total"]}]
    token = live.ok(checkout(live, cart["id"], pay, role="phone"), 201)["exit_pass"]["token"]
    key = _key()
    first = live.ok(_post(live, "/api/v1/exit-passes/verify", "exit", {"token": token}, key))
    again = live.ok(_post(live, "/api/v1/exit-passes/verify", "exit", {"token": token}, key))
    assert first["valid"] is True
    assert again == first
    # Another scan of the pass (a new key) is a second use.
    other = live.ok(_post(live, "/api/v1/exit-passes/verify", "exit", {"token": token}, _key()))
    assert (other["valid"], other["reason"]) == (False, "used")


def test_a_key_is_the_devices_own(live: Live) -> None:
    # Two handhelds may pick the same key by chance: each gets its own first answer.
    key = _key()
    body = {"sku": "MILK1L", "quantity": 1, "kind": "receive"}
    before = stock(live, "MILK1L")
    a = live.ok(_post(live, "/api/v1/stock/movements", "handheld", body, key), 201)
    b = live.ok(_post(live, "/api/v1/stock/movements", "tablet", body, key), 201)
    assert a["id"] != b["id"]
    assert stock(live, "MILK1L") == before + 2


def test_the_same_key_at_once_from_many_threads_applies_once(live: Live) -> None:
    before = stock(live, "RICE5")
    key = _key()
    body = {"sku": "RICE5", "quantity": 5, "kind": "receive"}
    answers: list[tuple[int, str]] = []

    def send() -> None:
        import requests

        response = requests.post(
            live.base_url + "/api/v1/stock/movements",
            data=json.dumps(body),
            headers={
                "Authorization": f"Bearer {live.tokens['handheld']}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
            timeout=30,
        )
        answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {status for status, _ in answers} == {201}
    assert len({json.loads(text)["id"] for _, text in answers}) == 1
    assert stock(live, "RICE5") == before + 5


def test_the_openapi_document_says_which_routes_take_and_which_require_the_key(
    live: Live,
) -> None:
    doc = live.ok(live.get("/api/v1/openapi.json"))
    keyed = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for param in op["parameters"]:
                if param["name"] == "Idempotency-Key":
                    keyed[(method.upper(), path)] = param["required"]
    assert keyed[("POST", "/api/v1/carts/{cart_id}/checkout")] is True
    assert keyed[("POST", "/api/v1/sales/{sale_id}/returns")] is True
    assert keyed[("POST", "/api/v1/stock/movements")] is True
    assert keyed[("POST", "/api/v1/carts/{cart_id}/lines")] is False
    assert keyed[("POST", "/api/v1/exit-passes/verify")] is False
    writes = {
        (method.upper(), path)
        for path, ops in doc["paths"].items()
        for method in ops
        if method == "post" and "x-roles" in ops[method] and ops[method]["x-roles"]
    }
    assert writes <= set(keyed), writes - set(keyed)
