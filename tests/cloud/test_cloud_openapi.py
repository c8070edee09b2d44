"""The cloud's OpenAPI document: valid OpenAPI 3.1, one operation per route Flask serves (a
route added without a declaration fails here), and real answers match their declared schemas."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from schemathesis.specs.openapi.definitions import OPENAPI_31

from cloud.app import all_routes
from cloud.hq import PAGES
from sync.protocol import BATCH_CONTENT_TYPE
from tests.cloud.harness import Cloud, StoreClient, catalog_csv, sales


def _document(cloud: Cloud) -> dict[str, Any]:
    response = cloud.client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.get_json()
    return doc


def _conforms(doc: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """``body`` is valid against the schema ``doc`` declares for that answer."""
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, (method, path, status, sorted(responses))
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": doc["components"]})
    errors = [str(e) for e in validator.iter_errors(body)]
    assert not errors, (method, path, errors)


def test_the_document_is_valid_openapi_3(cloud: Cloud) -> None:
    doc = _document(cloud)
    assert doc["openapi"].startswith("3.1.")
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert not errors, errors[:5]
    for name in doc["components"]["schemas"]:
        # Each component is a valid JSON Schema whose references resolve.
        ref = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema_rs.Draft202012Validator(ref)


def test_every_route_flask_serves_is_declared_and_documented(cloud: Cloud) -> None:
    doc = _document(cloud)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in cloud.app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((method, path))
    # HQ's pages are shells whose scripts call the documented API; they are not API routes.
    assert served - set(PAGES) == documented
    declared = {(r.method, r.path) for r in all_routes()}
    assert declared == served - set(PAGES)
    endpoints = {r.endpoint for r in all_routes()}
    flask_endpoints = {
        r.endpoint for r in cloud.app.url_map.iter_rules() if not r.endpoint.endswith("static")
    }
    assert endpoints == flask_endpoints - {"hq_pages.hq"}


def test_callers_bodies_and_the_push_batch_are_described(cloud: Cloud) -> None:
    doc = _document(cloud)
    paths = doc["paths"]
    push = paths["/api/v1/sync/push"]["post"]
    assert list(push["requestBody"]["content"]) == [BATCH_CONTENT_TYPE]
    assert push["requestBody"]["content"][BATCH_CONTENT_TYPE]["schema"]["contentEncoding"] == "gzip"
    assert push["security"] == [{"storeSignature": []}]
    assert paths["/api/v1/sync/pull"]["get"]["security"] == [{"storeSignature": []}]
    assert paths["/api/v1/stores"]["get"]["security"] == [{"hqToken": []}]
    enroll = paths["/api/v1/enroll"]["post"]
    assert enroll["x-caller"] == "enrolling"
    assert enroll["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EnrollBody"
    }
    assert "security" not in paths["/healthz"]["get"]
    for path, ops in paths.items():
        for method, op in ops.items():
            if op["x-caller"] in ("hq", "channel", "store"):
                assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_real_answers_match_their_declared_schemas(cloud: Cloud) -> None:
    doc = _document(cloud)
    cloud.import_catalog(catalog_csv(3))
    code = cloud.add_store("S001", name="Riverside")

    client = StoreClient(cloud, "S001")
    enrolled = client.enroll(code)
    _conforms(doc, "post", "/api/v1/enroll", enrolled.status_code, enrolled.get_json())

    pushed = client.push(sales("S001", range(1, 4)))
    _conforms(doc, "post", "/api/v1/sync/push", pushed.status_code, pushed.get_json())

    pulled = client.pull("products")
    _conforms(doc, "get", "/api/v1/sync/pull", pulled.status_code, pulled.get_json())

    events = client.signed("GET", "/api/v1/sync/events?after=0")
    _conforms(doc, "get", "/api/v1/sync/events", events.status_code, events.get_json())

    for path, doc_path in [
        ("/api/v1/stores", "/api/v1/stores"),
        ("/api/v1/stores/S001/sync-state", "/api/v1/stores/{store_id}/sync-state"),
        ("/api/v1/stores/S001/sales?limit=2", "/api/v1/stores/{store_id}/sales"),
        ("/api/v1/quarantine", "/api/v1/quarantine"),
        ("/api/v1/recoveries", "/api/v1/recoveries"),
        (
            "/api/v1/reports/recruitment?from=2026-11-01&to=2026-11-30",
            "/api/v1/reports/recruitment",
        ),
        (
            "/api/v1/reports/recruitment?from=2026-11-30&to=2026-11-01",
            "/api/v1/reports/recruitment",
        ),
    ]:
        answer = cloud.hq(path)
        _conforms(doc, "get", doc_path, answer.status_code, answer.get_json())

    refused = cloud.client.get("/api/v1/stores")
    _conforms(doc, "get", "/api/v1/stores", refused.status_code, refused.get_json())
    health = cloud.client.get("/healthz")
    _conforms(doc, "get", "/healthz", health.status_code, health.get_json())


def test_the_channel_api_is_described_and_answers_as_declared(cloud: Cloud) -> None:
    doc = _document(cloud)
    paths = doc["paths"]
    assert doc["components"]["securitySchemes"]["channelToken"]["scheme"] == "bearer"
    channel_ops = {
        (method, path): op
        for path, ops in paths.items()
        for method, op in ops.items()
        if op["x-caller"] == "channel"
    }
    assert {path for _, path in channel_ops} == {
        "/api/v1/channel/members",
        "/api/v1/channel/members/{member_id}",
        "/api/v1/channel/members/{member_id}/ledger",
        "/api/v1/channel/members/{member_id}/earn",
        "/api/v1/channel/members/{member_id}/burn",
        "/api/v1/channel/members/{member_id}/holds",
        "/api/v1/channel/members/{member_id}/holds/{hold_id}",
    }
    for (method, path), op in channel_ops.items():
        assert op["security"] == [{"channelToken": []}], (method, path)
        headers = [p["name"] for p in op["parameters"] if p["in"] == "header"]
        if method in ("post", "delete"):
            assert headers == ["Idempotency-Key"], (method, path)
            assert {"409", "422"} <= set(op["responses"]), (method, path)
        else:
            assert headers == [], (method, path)
    assert {"200", "201"} <= set(paths["/api/v1/channel/members"]["post"]["responses"])
    adjust = paths["/api/v1/members/{member_id}/adjustments"]["post"]
    assert [p["name"] for p in adjust["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]

    token = cloud.channel_token("shop")
    signed_up = cloud.channel(
        token, "/members", method="POST", key="s", json={"phone": "13800138000"}
    )
    _conforms(doc, "post", "/api/v1/channel/members", 201, signed_up.get_json())
    member_id = signed_up.get_json()["id"]
    known = cloud.channel(token, "/members", method="POST", key="s2", json={"phone": "13800138000"})
    _conforms(doc, "post", "/api/v1/channel/members", known.status_code, known.get_json())
    member = "/api/v1/channel/members/{member_id}"
    answers = [
        ("get", "/api/v1/channel/members", cloud.channel(token, "/members?phone=13800138000")),
        ("get", member, cloud.channel(token, f"/members/{member_id}")),
        (
            "post",
            f"{member}/earn",
            cloud.channel(
                token,
                f"/members/{member_id}/earn",
                method="POST",
                key="e",
                json={"order_id": "O1", "points": 50, "spend": 5_000},
            ),
        ),
    ]
    held = cloud.channel(
        token, f"/members/{member_id}/holds", method="POST", key="h", json={"points": 20}
    )
    answers.append(("post", f"{member}/holds", held))
    hold_id = held.get_json()["hold_id"]
    answers += [
        (
            "post",
            f"{member}/burn",
            cloud.channel(
                token,
                f"/members/{member_id}/burn",
                method="POST",
                key="b",
                json={"order_id": "O2", "points": 20, "hold_id": hold_id},
            ),
        ),
        (
            "post",
            f"{member}/burn",
            cloud.channel(
                token,
                f"/members/{member_id}/burn",
                method="POST",
                key="b2",
                json={"order_id": "O3", "points": 31},
            ),
        ),
        (
            "delete",
            f"{member}/holds/{{hold_id}}",
            cloud.channel(token, f"/members/{member_id}/holds/{hold_id}", method="DELETE", key="r"),
        ),
        ("get", f"{member}/ledger", cloud.channel(token, f"/members/{member_id}/ledger")),
    ]
    statuses = []
    for method, path, answer in answers:
        statuses.append(answer.status_code)
        _conforms(doc, method, path, answer.status_code, answer.get_json())
    # Successes and refusals alike (the burn beyond what is free, the release of a spent hold).
    assert statuses == [200, 200, 201, 201, 201, 409, 409, 200], statuses
