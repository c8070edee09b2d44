"""Every error of the cloud, whatever its source, has the one JSON shape."""

from __future__ import annotations

import pytest


def _shape(response) -> dict:
    assert response.is_json, response.get_data()
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("GET", "/api/v1/enroll", {}, 405, "method_not_allowed"),
        ("DELETE", "/api/v1/sync/push", {}, 405, "method_not_allowed"),
        ("POST", "/api/v1/enroll", {"data": b"{nope"}, 400, "malformed_json"),
        ("POST", "/api/v1/enroll", {"data": b"[1]"}, 400, "malformed_json"),
        ("POST", "/api/v1/enroll", {"json": {"code": 5}}, 422, "validation_error"),
        ("POST", "/api/v1/enroll", {"json": {"code": "ABCD", "x": 1}}, 422, "validation_error"),
        ("POST", "/api/v1/sync/push", {"data": b"x" * 3_000_000}, 413, "batch_too_large"),
        ("POST", "/api/v1/sync/push", {}, 401, "unsigned_request"),
        ("GET", "/api/v1/sync/pull", {}, 401, "unsigned_request"),
        ("GET", "/api/v1/stores", {}, 401, "unauthorized"),
    ],
)
def test_error_paths_share_one_shape(cloud, method, path, kwargs, status, code):
    response = cloud.client.open(path, method=method, **kwargs)
    assert response.status_code == status
    error = _shape(response)
    assert error["code"] == code
    if status == 405:
        assert error["details"]["allowed"]


def test_healthz(cloud):
    response = cloud.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["ok"] is True
    assert response.headers["X-Aisle-Protocol"] == "1"
