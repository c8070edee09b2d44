"""The day report: what each sale, return, movement and shrink adds to it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.functional.conftest import STORE_ID, Live
from tests.functional.device_api.error_shape import Case, Req, World, assert_error_path, error_code
from tests.functional.helpers import MILK_CODE, RICE_CODE, day_report, sell, stock


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
    assert error_code(live, live.get("/api/v1/reports/day", "kiosk"), 403) == "forbidden"
    assert error_code(live, live.get("/api/v1/reports/day", "handheld"), 403) == "forbidden"


ERRORS = [
    # --- 403: the wrong role ---
    Case("kiosk_reads_day", 403, "forbidden", lambda w: Req("GET", "/api/v1/reports/day", "kiosk")),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
