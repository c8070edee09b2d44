"""Who is calling: a request without a valid device token is refused, read or write."""

from __future__ import annotations

import pytest

from tests.functional.device_api.error_shape import Case, Req, World, add_line, assert_error_path
from tests.functional.helpers import MILK_CODE

ERRORS = [
    # --- 401: who is calling? ---
    Case(
        "no_token", 401, "unauthorized", lambda w: Req("GET", f"/api/v1/carts/{w.open_cart}", None)
    ),
    Case(
        "no_token_write",
        401,
        "unauthorized",
        lambda w: add_line(w, {"barcode": MILK_CODE}, role=None),
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
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
