"""The store's sync status: what an unenrolled store says of its link, and what each sale,
return and movement adds to its outbox."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Live
from tests.functional.device_api.error_shape import Case, Req, World, assert_error_path, error_code
from tests.functional.helpers import MILK_CODE, new_cart, scan, sell


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
    assert error_code(live, live.get("/api/v1/sync/status", "phone"), 403) == "forbidden"

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


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "phone_reads_sync_status",
        403,
        "forbidden",
        lambda w: Req("GET", "/api/v1/sync/status", "phone"),
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
