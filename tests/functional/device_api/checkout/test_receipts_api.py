"""A sale read back, and its receipt as JSON and as text that fits the paper."""

from __future__ import annotations

import pytest
from wcwidth import wcswidth

from edge.checkout.receipts import display_width
from tests.builders import weighed_code
from tests.functional.conftest import STORE_ID, STORE_NAME, Live
from tests.functional.device_api.error_shape import NO_SUCH, Case, Req, World, assert_error_path
from tests.functional.helpers import APPLE_PLU, MILK_CODE, RICE_CODE, sell


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


ERRORS = [
    # --- 403: the wrong role ---
    Case(
        "exit_reads_sale", 403, "forbidden", lambda w: Req("GET", f"/api/v1/sales/{w.sale}", "exit")
    ),
    # --- 404: no such thing ---
    Case("unknown_sale", 404, "unknown_sale", lambda w: Req("GET", f"/api/v1/sales/{NO_SUCH}")),
    Case(
        "unknown_sale_receipt",
        404,
        "unknown_sale",
        lambda w: Req("GET", f"/api/v1/sales/{NO_SUCH}/receipt", params={"format": "text"}),
    ),
    # --- 422: well-formed JSON that does not make sense ---
    Case(
        "receipt_width",
        422,
        "validation_error",
        lambda w: Req(
            "GET", f"/api/v1/sales/{w.sale}/receipt", params={"format": "text", "width": "40"}
        ),
        field="width",
    ),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
