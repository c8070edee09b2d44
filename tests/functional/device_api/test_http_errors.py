"""What the HTTP layer refuses before any capability sees the request: bodies that are not a
JSON object, unknown routes, wrong methods, oversized bodies."""

from __future__ import annotations

import pytest

from tests.functional.device_api.error_shape import (
    Case,
    Req,
    World,
    allows,
    assert_error_path,
    post,
    raw,
)
from tests.functional.helpers import key

ERRORS = [
    # --- 400: the body is not a JSON object ---
    Case("malformed_json", 400, "malformed_json", lambda w: raw("/api/v1/carts", "{")),
    Case("json_list", 400, "malformed_json", lambda w: raw("/api/v1/carts", "[1, 2]")),
    Case("json_null", 400, "malformed_json", lambda w: raw("/api/v1/carts", "null")),
    Case("json_string", 400, "malformed_json", lambda w: raw("/api/v1/carts", '"kiosk"')),
    Case(
        "json_not_utf8",
        400,
        "malformed_json",
        lambda w: raw("/api/v1/carts", b'{"channel": "\xff"}'),
    ),
    Case(
        "malformed_json_on_lines",
        400,
        "malformed_json",
        lambda w: raw(f"/api/v1/carts/{w.open_cart}/lines", "{'barcode': 1}"),
    ),
    Case(
        "malformed_json_on_checkout",
        400,
        "malformed_json",
        lambda w: raw(
            f"/api/v1/carts/{w.open_cart}/checkout", "{", headers={"Idempotency-Key": key()}
        ),
    ),
    # --- 404: no such thing ---
    Case("unknown_route", 404, "not_found", lambda w: Req("GET", "/api/v1/nope", "manager")),
    Case("unknown_route_anonymous", 404, "not_found", lambda w: Req("GET", "/nope", None)),
    Case("unknown_route_trailing_slash", 404, "not_found", lambda w: post("/api/v1/carts/", {})),
    # --- 405: the wrong method ---
    Case(
        "put_carts",
        405,
        "method_not_allowed",
        lambda w: Req("PUT", "/api/v1/carts", json={"channel": "kiosk"}),
        then=allows("POST"),
    ),
    Case(
        "delete_healthz",
        405,
        "method_not_allowed",
        lambda w: Req("DELETE", "/healthz", None),
        then=allows("GET"),
    ),
    Case(
        "get_checkout",
        405,
        "method_not_allowed",
        lambda w: Req("GET", f"/api/v1/carts/{w.open_cart}/checkout"),
        then=allows("POST"),
    ),
    Case(
        "delete_cart",
        405,
        "method_not_allowed",
        lambda w: Req("DELETE", f"/api/v1/carts/{w.open_cart}"),
        then=allows("GET"),
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
]


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_error_path_has_the_error_shape_and_writes_nothing(
    case: Case, world: World, request: pytest.FixtureRequest
) -> None:
    assert_error_path(case, world, request)
