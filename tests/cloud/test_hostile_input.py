"""Hostile bodies, headers and query strings get the error shape at the cloud, never a 500."""

from __future__ import annotations

import gzip

import pytest

from tests.cloud.harness import sales


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data()[:300]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def test_a_batch_nested_beyond_any_depth_is_a_bad_batch_not_a_crash(cloud):
    # 5 MB of '[' once escaped as RecursionError and a 500.
    store = cloud.store()
    body = gzip.compress(b"[" * 5_000_000)
    error = _error(store.signed("POST", "/api/v1/sync/push", body), 400)
    assert error["code"] == "bad_batch"


@pytest.mark.parametrize("limit", ["²", "\u0661\u0662", "\uff11\uff12", "-1", "1e3", " ", "9" * 40])
def test_a_limit_that_is_not_ascii_digits_is_a_422(cloud, limit):
    store = cloud.store()
    store.push(sales("S001", [1]))
    for path in ("/api/v1/stores/S001/sales", "/api/v1/quarantine"):
        response = cloud.hq(path, query_string={"limit": limit})
        assert _error(response, 422)["details"]["field"] == "limit"
    response = store.pull("catalog", limit=limit)  # type: ignore[arg-type]
    assert _error(response, 422)["details"]["field"] == "limit"


@pytest.mark.parametrize("value", ["²", "\uff11", "-5", ""])
def test_signature_headers_with_odd_digits_are_refused_cleanly(cloud, value):
    store = cloud.store()
    response = store.signed(
        "POST",
        "/api/v1/sync/push",
        store.batch(sales("S001", [1])),
        headers={"X-Aisle-Timestamp": value},
    )
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unsigned_request"


def test_a_wrong_method_names_the_allowed_ones_in_allow(cloud):
    response = cloud.client.delete("/api/v1/sync/push")
    error = _error(response, 405)
    assert response.headers["Allow"] == ", ".join(error["details"]["allowed"])
    assert "POST" in response.headers["Allow"]
