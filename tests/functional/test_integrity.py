"""Checkout integrity over HTTP, as an attacker's phone would try it, against a real server."""

from __future__ import annotations

import time
from typing import Any

from tests.functional.conftest import AISLE, Live, _env, aisle
from tests.functional.helpers import BAIJIU_CODE, MILK_CODE, checkout, new_cart, scan

GTIN14 = "0" + MILK_CODE  # the milk's GTIN-14, as GS1 element strings carry it


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_no_scanned_code_lowers_the_price_of_fixed_price_goods(live: Live) -> None:
    cart = new_cart(live, "phone", "scan_to_buy")
    attacks = [
        f"01{GTIN14}3922001",  # CNY 0.01 in AI 3922
        f"(01){GTIN14}(3922)000",  # a zero price
        f"(01){GTIN14}(3103)000000",  # a zero weight
        f"(01){GTIN14}(3103)000001",  # a gram of milk
        f"]C101{GTIN14}3922001",  # the same behind symbology identifiers
        f"]d201{GTIN14}3922001",
        f"]e001{GTIN14}3922001",
    ]
    for code in attacks:
        response = live.post(f"/api/v1/carts/{cart['id']}/lines", "phone", json={"barcode": code})
        assert _error(response, 422)["code"] == "embedded_measure_not_allowed", code
        response = live.get(f"/api/v1/products/by-barcode/{code}", "phone")
        assert _error(response, 422)["code"] == "embedded_measure_not_allowed", code
    cart = live.ok(live.get(f"/api/v1/carts/{cart['id']}", "phone"))
    assert cart["lines"] == []
    cart = scan(live, cart["id"], f"]d201{GTIN14}", role="phone")  # a plain GS1 DataMatrix
    assert cart["totals"]["total"] == 1250


def test_a_price_too_large_to_fit_money_is_refused_not_stored(live: Live) -> None:
    # 15 digits of price, and a GS1 code carrying a price in an AI the store cannot represent.
    cart = new_cart(live)
    for code in (f"(01){GTIN14}(3922)999999999999999", f"(01){GTIN14}(3925)1"):
        response = live.post(f"/api/v1/carts/{cart['id']}/lines", "kiosk", json={"barcode": code})
        assert response.status_code == 422
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["lines"] == []


def test_an_approval_for_one_beer_does_not_cover_fifty(live: Live) -> None:
    cart = scan(live, new_cart(live)["id"], BAIJIU_CODE)
    line = cart["lines"][0]["id"]
    live.ok(live.post(f"/api/v1/carts/{cart['id']}/approvals", "tablet", json={}))
    cart = live.ok(
        live.patch(f"/api/v1/carts/{cart['id']}/lines/{line}", "kiosk", json={"quantity": 50})
    )
    assert cart["approval"]["approved"] is False
    pay = [{"method": "cash", "amount": cart["totals"]["total"]}]
    assert _error(checkout(live, cart["id"], pay), 409)["code"] == "approval_required"


def test_free_text_with_control_or_direction_characters_is_refused(live: Live) -> None:
    cart = scan(live, new_cart(live)["id"], BAIJIU_CODE)
    for note in ("ID\x00seen", "ID \u202eneeS", "line\nbreak"):
        response = live.post(f"/api/v1/carts/{cart['id']}/approvals", "tablet", json={"note": note})
        error = _error(response, 422)
        assert error["details"]["fields"][0]["field"] == "note"
    response = live.post(
        "/api/v1/stock/movements",
        "handheld",
        json={"sku": "MILK1L", "quantity": -1, "kind": "shrink", "reason": "bro\u2066ken"},
    )
    assert _error(response, 422)["details"]["fields"][0]["field"] == "reason"
    # A reason in any script is fine.
    response = live.post(
        "/api/v1/stock/movements",
        "handheld",
        json={"sku": "MILK1L", "quantity": 1, "kind": "shrink", "reason": "破损 damaged"},
        headers={"Idempotency-Key": f"shrink-{time.time_ns()}"},
    )
    assert response.status_code == 201


def test_json_nested_a_hundred_thousand_deep_is_a_400(live: Live) -> None:
    cart = new_cart(live)
    body = "[" * 100_000 + "]" * 100_000
    response = live.post(
        f"/api/v1/carts/{cart['id']}/lines",
        "kiosk",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert _error(response, 400)["code"] == "malformed_json"
    response = live.post(
        f"/api/v1/carts/{cart['id']}/lines",
        "kiosk",
        data='{"barcode": ' + "[" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert _error(response, 400)["code"] == "malformed_json"


def test_a_wrong_method_is_a_405_with_allow(live: Live) -> None:
    response = live.request("PUT", "/api/v1/carts", "kiosk", json={})
    error = _error(response, 405)
    assert response.headers["Allow"] == ", ".join(error["details"]["allowed"])
    assert "POST" in response.headers["Allow"].split(", ")


def test_a_manager_lists_and_revokes_devices_and_a_revoked_token_is_refused_at_once(
    live: Live,
) -> None:
    out = aisle("edge", "pair", "--role", "kiosk", "--name", "kiosk 9", "--config", _config(live))
    device_id, token = out.splitlines()[0].split()[3], out.splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    # Several requests, so both worker processes have served this token before it is revoked.
    for _ in range(6):
        assert (
            live.http.post(
                live.base_url + "/api/v1/carts", json={"channel": "kiosk"}, headers=headers
            ).status_code
            == 201
        )
    devices = live.ok(live.get("/api/v1/devices", "manager"))["devices"]
    mine = next(d for d in devices if d["id"] == device_id)
    assert (mine["role"], mine["name"], mine["status"]) == ("kiosk", "kiosk 9", "active")
    assert "token" not in mine and "token_hash" not in mine
    for role in ("kiosk", "phone", "tablet", "handheld", "exit"):
        assert _error(live.get("/api/v1/devices", role), 403)["code"] == "forbidden"
        response = live.post(f"/api/v1/devices/{device_id}/revoke", role)
        assert _error(response, 403)["code"] == "forbidden"

    revoked = live.ok(live.post(f"/api/v1/devices/{device_id}/revoke", "manager"))
    assert revoked["status"] == "revoked"
    for _ in range(6):
        response = live.http.post(
            live.base_url + "/api/v1/carts", json={"channel": "kiosk"}, headers=headers
        )
        assert _error(response, 401)["code"] == "unauthorized"
    response = live.post("/api/v1/devices/no-such-device/revoke", "manager")
    assert _error(response, 404)["code"] == "unknown_device"


def test_the_command_line_revokes_and_tokens_can_expire(live: Live) -> None:
    out = aisle("edge", "pair", "--role", "handheld", "--config", _config(live))
    device_id, token = out.splitlines()[0].split()[3], out.splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert live.http.get(live.base_url + "/api/v1/stock/MILK1L", headers=headers).ok
    listed = aisle("edge", "devices", "list", "--config", _config(live))
    assert device_id in listed and "active" in listed
    phones = [line for line in listed.splitlines() if line.split()[1:3] == ["phone", "active"]]
    assert phones and f"shoppers' phones in use: {len(phones)}" in listed
    own = aisle("edge", "devices", "list", "--no-phones", "--config", _config(live))
    assert device_id in own and " phone " not in own
    assert "revoked" in aisle("edge", "devices", "revoke", device_id, "--config", _config(live))
    response = live.http.get(live.base_url + "/api/v1/stock/MILK1L", headers=headers)
    assert response.status_code == 401

    out = aisle("edge", "pair", "--role", "handheld", "--ttl", "2s", "--config", _config(live))
    assert "expires in 2s" in out.splitlines()[0]
    headers = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
    assert live.http.get(live.base_url + "/api/v1/stock/MILK1L", headers=headers).ok
    time.sleep(2.5)
    response = live.http.get(live.base_url + "/api/v1/stock/MILK1L", headers=headers)
    assert "expired" in _error(response, 401)["message"]


def test_a_bad_ttl_is_reported_as_the_option(live: Live) -> None:
    import subprocess

    proc = subprocess.run(
        [*AISLE, "edge", "pair", "--role", "kiosk", "--ttl", "soon", "--config", _config(live)],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 2
    assert "--ttl" in proc.stderr


def _config(live: Live) -> str:
    return str(live.data_dir / "edge.toml")
