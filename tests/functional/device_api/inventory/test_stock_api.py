"""Stock levels and movements (receive, shrink, adjust), and weighed sales moving stock in grams."""

from __future__ import annotations

import pytest

from tests.builders import weighed_code
from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import (
    Case,
    Req,
    World,
    assert_error_path,
    error_code,
    move,
)
from tests.functional.helpers import APPLE_PLU, sell, stock


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
        assert error_code(live, live.get("/api/v1/stock/MILK1L", role), 403) == "forbidden"
        response = live.post(url, role, json={"sku": "MILK1L", "quantity": 1, "kind": "receive"})
        assert error_code(live, response, 403) == "forbidden"
    assert stock(live, "MILK1L") == on_hand
    assert live.outbox_pending() == pending + 4


def test_weighed_sales_move_stock_in_grams(live: Live) -> None:
    before = stock(live, "APPLE")
    sell(live, [(weighed_code(APPLE_PLU, 1234), 1), (weighed_code(APPLE_PLU, 790), 1)])
    # 1234 / 15.80 per kg = 781 g; 790 / 15.80 = 500 g
    assert stock(live, "APPLE") == before - 781 - 500


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "kiosk_moves_stock",
        403,
        "forbidden",
        lambda w: move({"sku": "MILK1L", "quantity": 1, "kind": "receive"}, "kiosk"),
    ),
    Case(
        "phone_reads_stock", 403, "forbidden", lambda w: Req("GET", "/api/v1/stock/SOAP", "phone")
    ),
    # --- 404: no such thing ---
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
        lambda w: move({"sku": "NOPE", "quantity": 1, "kind": "receive"}),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "shrink_without_reason",
        422,
        "reason_required",
        lambda w: move({"sku": "MILK1L", "quantity": 2, "kind": "shrink"}),
        field="reason",
    ),
    Case(
        "shrink_blank_reason",
        422,
        "reason_required",
        lambda w: move({"sku": "MILK1L", "quantity": 2, "kind": "shrink", "reason": "  "}),
        field="reason",
    ),
    Case(
        "movement_kind_unknown",
        422,
        "validation_error",
        lambda w: move({"sku": "MILK1L", "quantity": 2, "kind": "steal"}),
        field="kind",
    ),
    Case(
        "receive_zero",
        422,
        "bad_quantity",
        lambda w: move({"sku": "MILK1L", "quantity": 0, "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "receive_negative",
        422,
        "bad_quantity",
        lambda w: move({"sku": "MILK1L", "quantity": -5, "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "adjust_zero",
        422,
        "bad_quantity",
        lambda w: move({"sku": "MILK1L", "quantity": 0, "kind": "adjust", "reason": "count"}),
        field="quantity",
    ),
    Case(
        "movement_quantity_string",
        422,
        "validation_error",
        lambda w: move({"sku": "MILK1L", "quantity": "5", "kind": "receive"}),
        field="quantity",
    ),
    Case(
        "movement_sku_missing",
        422,
        "validation_error",
        lambda w: move({"quantity": 5, "kind": "receive"}),
        field="sku",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
