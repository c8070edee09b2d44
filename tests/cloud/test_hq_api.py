"""HQ's read API: sales in keyset pages (each sale exactly once), sync state, stores, quarantine."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from tests.cloud.harness import T0, sale_event, sales


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
    # Each row carries what the store's own sync-state read says: HQ's page reads the chain once.
    assert stores[0]["sync"] == cloud.hq("/api/v1/stores/S001/sync-state").get_json()
    assert stores[0]["sync"]["quarantined"] == 1
    assert stores[1]["sync"] is None
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


def test_daily_sales_count_on_each_stores_own_calendar(cloud):
    shanghai = cloud.store("S001")
    london = cloud.store("S002", timezone="Europe/London")
    # 09:30 UTC is 17:30 in Shanghai; 16:30 UTC is 00:30 the next day there, still the 25th in
    # London.
    late = T0 + timedelta(hours=7)
    shanghai.push([sale_event(1, "S001", at=T0), sale_event(2, "S001", lines=1, at=late)])
    london.push([sale_event(1, "S002", lines=3, at=late)])
    cloud.clock.advance(days=1)
    days = cloud.hq("/api/v1/reports/daily-sales?days=7").get_json()["days"]
    assert [(d["store_id"], d["date"], d["sales"], d["total"]) for d in days] == [
        ("S001", "2026-11-26", 1, 1001),
        ("S002", "2026-11-25", 1, 1001 + 1002 + 1003),
        ("S001", "2026-11-25", 1, 1001 + 1002),
    ]
    assert {d["currency"] for d in days} == {"CNY"}
    # Older than the days asked for: not counted.
    cloud.clock.advance(days=2)
    assert cloud.hq("/api/v1/reports/daily-sales?days=1").get_json()["days"] == []
    assert cloud.hq("/api/v1/reports/daily-sales?days=0").status_code == 422
    assert cloud.client.get("/api/v1/reports/daily-sales").status_code == 401


def test_hqs_page_signs_in_with_its_token_kept_in_a_cookie(cloud):
    cloud.store()
    cloud.hq("/api/v1/stores")  # makes the HQ token
    page = cloud.app.test_client()  # a browser: cookies only, no Authorization header
    assert page.get("/api/v1/stores").status_code == 401
    wrong = page.post("/api/v1/hq/session", json={"token": "not-a-token"})
    assert wrong.status_code == 401
    signed = page.post("/api/v1/hq/session", json={"token": cloud.hq_token})
    assert signed.status_code == 200 and signed.get_json() == {"name": "tests"}
    cookies = signed.headers.getlist("Set-Cookie")
    assert any(c.startswith("aisle_device=") and "HttpOnly" in c for c in cookies)
    assert cloud.hq_token not in signed.get_data(as_text=True)
    assert page.get("/api/v1/stores").status_code == 200
    # A write from the page needs the CSRF token its sign-in set.
    rules = {"points_per_unit": 100}
    refused = page.put("/api/v1/earn-rules", json=rules)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    csrf = page.get_cookie("aisle_csrf").value
    assert (
        page.put("/api/v1/earn-rules", json=rules, headers={"X-CSRF-Token": csrf}).status_code
        == 200
    )
    # A channel's token is not HQ's, cookie or not.
    assert page.post("/api/v1/hq/session", json={"token": cloud.channel_token()}).status_code == 403
    page.post("/api/v1/hq/sign-out")
    assert page.get("/api/v1/stores").status_code == 401
    shell = page.get("/hq")
    assert (
        shell.status_code == 200 and "script-src 'self'" in shell.headers["Content-Security-Policy"]
    )


def test_a_sale_keeps_the_staff_member_who_sold_it_and_older_sales_still_arrive(cloud):
    store = cloud.store()
    with_staff = sale_event(1, "S001")
    with_staff["payload"]["sale"]["staff_id"] = "E100"
    older = sale_event(2, "S001")  # as a store not yet upgraded writes it: version 3
    older["payload"]["schema_version"] = 3
    del older["payload"]["sale"]["staff_id"]
    assert store.push([with_staff, older]).get_json()["applied"] == 2
    sales = cloud.hq("/api/v1/stores/S001/sales").get_json()["sales"]
    assert [s["staff_id"] for s in sales] == ["E100", None]
