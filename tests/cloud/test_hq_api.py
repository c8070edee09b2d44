"""HQ's read API: sales in keyset pages (each sale exactly once), sync state, stores, quarantine."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.cloud.harness import sales


def _follow(cloud, url: str) -> list[dict]:
    seen = []
    while url:
        parts = urlsplit(url)
        response = cloud.hq(parts.path + (f"?{parts.query}" if parts.query else ""))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        seen.extend(body["sales"])
        url = body["next"]
    return seen


def test_sales_pages_return_each_sale_once_in_store_order(cloud):
    store = cloud.store()
    events = sales("S001", range(1, 24))
    store.push(events[:10])
    first = cloud.hq("/api/v1/stores/S001/sales?limit=7").get_json()
    assert [s["number"] for s in first["sales"]] == [f"S001-{i:06d}" for i in range(1, 8)]
    assert first["next"].startswith("http://localhost/api/v1/stores/S001/sales?")
    sale = first["sales"][0]
    assert {"id", "number", "total", "currency", "lines", "payments", "created_at"} <= set(sale)
    assert sale["total"] == sum(line["total"] for line in sale["lines"])
    # More sales arrive while HQ is paging: they show up at the end, nothing repeats.
    store.push(events[10:])
    rest = _follow(cloud, first["next"])
    numbers = [s["number"] for s in first["sales"] + rest]
    assert numbers == [f"S001-{i:06d}" for i in range(1, 24)]
    assert len(set(numbers)) == 23


def test_the_last_page_has_no_next(cloud):
    store = cloud.store()
    store.push(sales("S001", range(1, 4)))
    body = cloud.hq("/api/v1/stores/S001/sales?limit=3").get_json()
    assert len(body["sales"]) == 3
    assert body["next"] is None
    assert cloud.hq("/api/v1/stores/S001/sales").get_json()["next"] is None


def test_sync_state_reports_the_stream(cloud):
    store = cloud.store()
    store.push(sales("S001", range(1, 5)))
    bad = sales("S001", [5])[0] | {"type": "nope"}
    store.push([bad])
    state = cloud.hq("/api/v1/stores/S001/sync-state").get_json()
    assert state["store_id"] == "S001"
    assert state["high_water_seq"] == 5
    assert state["events_applied"] == 4
    assert state["quarantined"] == 1
    assert state["last_seen_at"] == cloud.clock.now().isoformat()
    assert state["clock_skew_s"] == 0
    assert state["diverged"] is False


def test_stores_and_quarantine_lists(cloud):
    store = cloud.store("S001")
    cloud.add_store("S002", format="online")
    store.push([sales("S001", [1])[0] | {"type": "nope"}])
    stores = cloud.hq("/api/v1/stores").get_json()["stores"]
    assert [(s["id"], s["high_water_seq"], s["enrolled_at"] is not None) for s in stores] == [
        ("S001", 1, True),
        ("S002", 0, False),
    ]
    quarantined = cloud.hq("/api/v1/quarantine").get_json()["quarantined"]
    assert [(q["store_id"], q["seq"], q["type"]) for q in quarantined] == [("S001", 1, "nope")]
    assert quarantined[0]["event"]["type"] == "nope"
    assert cloud.hq("/api/v1/quarantine?store=S002").get_json()["quarantined"] == []


def test_hq_routes_need_an_hq_token(cloud):
    cloud.store()
    for path in (
        "/api/v1/stores",
        "/api/v1/stores/S001/sales",
        "/api/v1/stores/S001/sync-state",
        "/api/v1/quarantine",
    ):
        assert cloud.client.get(path).status_code == 401
        response = cloud.client.get(path, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_unknown_stores_are_404(cloud):
    for path in ("/api/v1/stores/NOPE/sales", "/api/v1/stores/NOPE/sync-state"):
        response = cloud.hq(path)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "unknown_store"
