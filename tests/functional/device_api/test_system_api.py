"""The routes every device may call: the health check and the OpenAPI document, which must
describe every route as the server really serves it."""

from __future__ import annotations

import re
from typing import Any

from tests.functional.conftest import STORE_ID, Live


def test_healthz(live: Live) -> None:
    body = live.ok(live.get("/healthz"))
    assert body == {"status": "ok", "store_id": STORE_ID, "database": "ok"}


# Core routes of the contract (DESIGN.md section 5) and the edge's own additions; path parameter
# names are not part of the contract, so they are compared as "{}". Member, coupon and points
# routes belong to later roadmap capabilities and are not served yet.
CONTRACT_OPERATIONS = {
    ("get", "/healthz"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/products/by-barcode/{}"),
    ("post", "/api/v1/carts"),
    ("get", "/api/v1/carts/{}"),
    ("post", "/api/v1/carts/{}/lines"),
    ("patch", "/api/v1/carts/{}/lines/{}"),
    ("delete", "/api/v1/carts/{}/lines/{}"),
    ("post", "/api/v1/carts/{}/approvals"),
    ("post", "/api/v1/carts/{}/checkout"),
    ("post", "/api/v1/exit-passes/verify"),
    ("get", "/api/v1/sales/{}"),
    ("get", "/api/v1/sales/{}/receipt"),
    ("post", "/api/v1/sales/{}/returns"),
    ("get", "/api/v1/stock/{}"),
    ("post", "/api/v1/stock/movements"),
    ("get", "/api/v1/sync/status"),
    ("get", "/api/v1/reports/day"),
}


CONNECTIVITY = {"offline", "online_only", "offline_bounded"}


ALL_ROLES = {"kiosk", "phone", "handheld", "tablet", "manager", "exit"}


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_describes_every_route(live: Live) -> None:
    doc = live.ok(live.get("/api/v1/openapi.json"))
    assert re.fullmatch(r"3\.\d+\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, f"dangling $ref {ref}"

    operations = {}
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        template = re.sub(r"\{[^}]+\}", "{}", path)
        names = re.findall(r"\{([^}]+)\}", path)
        for method, op in item.items():
            assert method in HTTP_METHODS, (path, method)
            operations[(method, template)] = (path, op)
            operation_ids.append(op["operationId"])
            assert op["summary"]
            assert op["x-connectivity"] in CONNECTIVITY, (path, method)
            assert isinstance(op["x-roles"], list)
            assert set(op["x-roles"]) <= ALL_ROLES, (path, method)
            assert op["responses"], (path, method)
            for status, response in op["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5]\d\d", status)
                assert response["description"]
            path_params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert sorted(path_params) == sorted(names), (path, method)
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
            # Authenticated operations say so; public ones do not.
            assert bool(op.get("security")) == bool(op["x-roles"]), (path, method)
            if method in ("post", "patch", "put") and "requestBody" in op:
                assert "application/json" in op["requestBody"]["content"]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    missing = CONTRACT_OPERATIONS - set(operations)
    assert not missing, f"contract routes missing from the document: {sorted(missing)}"
    assert operations[("post", "/api/v1/carts/{}/checkout")][1]["parameters"][-1]["name"] == (
        "Idempotency-Key"
    )

    # The document is honest: every operation is served, and x-roles is what the server enforces.
    for (method, _), (path, op) in sorted(operations.items()):
        url = re.sub(r"\{[^}]+\}", "doc-check-0", path)
        roles = set(op["x-roles"])
        body = {} if method in ("post", "patch", "put") else None
        anonymous = live.request(method.upper(), url, json=body) if body is not None else None
        if anonymous is None:
            anonymous = live.request(method.upper(), url)
        if not roles:
            # Served to anyone: a read answers, a write (pairing) refuses only the empty body.
            expected = 200 if body is None else 422
            assert anonymous.status_code == expected, (method, path, anonymous.text)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        for role in sorted(ALL_ROLES):
            kw: dict[str, Any] = {"json": body} if body is not None else {}
            response = live.request(method.upper(), url, role, **kw)
            assert response.status_code not in (401, 405, 500), (method, path, role)
            if role in roles:
                assert response.status_code != 403 or (
                    # the one service-level rule: phones open scan_to_buy carts only
                    response.json()["error"]["code"] == "forbidden" and role == "phone"
                ), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                details = response.json()["error"]["details"]
                assert details == {"role": role, "allowed": sorted(roles)}
