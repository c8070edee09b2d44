"""Scan-to-buy and the exit gate: a paid phone cart's exit pass is valid once, and forged
passes are refused."""

from __future__ import annotations

import base64
import re
import struct
from datetime import datetime

import pytest

from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import Case, World, assert_error_path, error_code, post
from tests.functional.helpers import MILK_CODE, SOAP_CODE, checkout, new_cart, scan


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


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
    assert error_code(live, other, 404) == "unknown_sale"

    verify = "/api/v1/exit-passes/verify"
    # only the gate or staff may use up a pass
    for role in ("kiosk", "phone"):
        assert error_code(live, live.post(verify, role, json={"token": token}), 403) == (
            "forbidden"
        )
    assert error_code(live, live.post(verify, json={"token": token}), 401) == "unauthorized"

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


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "kiosk_verifies_exit_pass",
        403,
        "forbidden",
        lambda w: post("/api/v1/exit-passes/verify", {"token": "x.y"}, "kiosk"),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "exit_token_empty",
        422,
        "validation_error",
        lambda w: post("/api/v1/exit-passes/verify", {"token": ""}, "exit"),
        field="token",
    ),
    Case(
        "exit_token_missing",
        422,
        "validation_error",
        lambda w: post("/api/v1/exit-passes/verify", {}, "exit"),
        field="token",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
