"""Every route whose success writes an outbox event says so (``writes_events=True``), and the
app kicks the sync after exactly those.

Each write route of the store is called here once, successfully, in process; the outbox's last
seq before and after tells which wrote an event. A new write route fails the test until it is
exercised here, so a route cannot write events without declaring it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from edge.auth.staff import add_staff
from edge.coupons.service import apply_campaign_items
from edge.route_table import all_specs
from edge.sync_client.models import CloudLink
from shared import coupon_codes
from sync.contract import CampaignItem
from sync.keys import generate_private_key, public_key_b64
from tests.builders import BAIJIU, MILK, make_app_for, make_store

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CAMPAIGN = {
    "id": "ten-off",
    "number": 1,
    "name": "1.00 off",
    "offer": {"kind": "amount_off", "amount": 100},
    "starts": "2026-01-01T00:00:00+00:00",
    "ends": "2027-01-01T00:00:00+00:00",
}


class Kicks:
    """Stands in for the sync scheduler: counts the kicks."""

    def __init__(self) -> None:
        self.count = 0

    def kick(self) -> None:
        self.count += 1


def test_routes_that_write_outbox_events_declare_it(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    app = make_app_for(store)
    kicks = Kicks()
    app.extensions["aisle_sync"] = kicks
    client = app.test_client()
    declared = {s.endpoint for s in all_specs() if s.writes_events}
    seen: dict[str, bool] = {}

    def last_seq() -> int:
        with store.db.read() as session:
            return int(session.execute(text("SELECT COALESCE(MAX(seq), 0) FROM outbox")).scalar())

    def call(
        method: str, path: str, role: str, body: Any = None, expect: int = 0, **headers: str
    ) -> Any:
        before, kicked = last_seq(), kicks.count
        headers["Authorization"] = f"Bearer {store.tokens[role]}"
        response = client.open(path, method=method, json=body, headers=headers)
        if expect:
            assert response.status_code == expect, (method, path, response.get_json())
        else:
            assert response.status_code < 300, (method, path, response.get_json())
        endpoint = app.url_map.bind("").match(path, method=method)[0]
        wrote = last_seq() > before
        seen[endpoint] = seen.get(endpoint, False) or wrote
        assert (kicks.count > kicked) == (endpoint in declared), endpoint
        return response.get_json()

    def key() -> str:
        return f"test-{uuid.uuid4()}"

    cart = call("POST", "/api/v1/carts", "phone", {"channel": "scan_to_buy"})
    cart_id = cart["id"]
    cart = call("POST", f"/api/v1/carts/{cart_id}/lines", "phone", {"barcode": MILK["barcodes"]})
    line_id = cart["lines"][0]["id"]
    call("PATCH", f"/api/v1/carts/{cart_id}/lines/{line_id}", "phone", {"quantity": 2})
    call("DELETE", f"/api/v1/carts/{cart_id}/lines/{line_id}", "phone")
    call("POST", f"/api/v1/carts/{cart_id}/lines", "phone", {"barcode": MILK["barcodes"]})
    cart = call("POST", f"/api/v1/carts/{cart_id}/lines", "phone", {"barcode": BAIJIU["barcodes"]})
    cart = call(
        "POST", f"/api/v1/carts/{cart_id}/approvals", "manager", {}, **{"Idempotency-Key": key()}
    )
    total = cart["totals"]["total"]
    done = call(
        "POST",
        f"/api/v1/carts/{cart_id}/checkout",
        "phone",
        {"payments": [{"method": "card", "amount": total}]},
        **{"Idempotency-Key": key()},
    )
    sale = done["sale"]
    assert done["exit_pass"] is not None
    call(
        "POST",
        "/api/v1/exit-passes/verify",
        "exit",
        {"token": done["exit_pass"]["token"]},
    )
    call(
        "POST",
        f"/api/v1/sales/{sale['id']}/returns",
        "manager",
        {"lines": [{"line_id": sale["lines"][0]["id"], "quantity": 1}], "reason": "damaged"},
        **{"Idempotency-Key": key()},
    )
    call(
        "POST",
        "/api/v1/stock/movements",
        "handheld",
        {"sku": MILK["sku"], "quantity": 12, "kind": "receive", "reason": "delivery"},
        **{"Idempotency-Key": key()},
    )
    cloud_key, now = generate_private_key(), store.clock.now()
    with store.db.write() as uow:  # members are signed up once the store is enrolled
        uow.session.add(
            CloudLink(
                id=1,
                cloud_url="http://127.0.0.1:9",
                store_id="S001",
                cloud_public_key=public_key_b64(cloud_key),
                protocol_version=1,
                max_batch_events=1000,
                max_batch_bytes=2_097_152,
                enrolled_at=store.clock.now(),
            )
        )
        apply_campaign_items(uow.session, [CampaignItem.model_validate(CAMPAIGN)], now)
        uow.commit()
    member = call("POST", "/api/v1/members", "kiosk", {"phone": "13800138000"})
    other = call("POST", "/api/v1/carts", "kiosk", {"channel": "kiosk"})
    call("PUT", f"/api/v1/carts/{other['id']}/member", "kiosk", {"member_code": member["code"]})
    call("PUT", f"/api/v1/carts/{other['id']}/points", "kiosk", {"points": 0})
    call("DELETE", f"/api/v1/carts/{other['id']}/points", "kiosk")
    call("POST", f"/api/v1/carts/{other['id']}/lines", "kiosk", {"barcode": MILK["barcodes"]})
    code = coupon_codes.sign(
        cloud_key,
        coupon_id=coupon_codes.new_coupon_id(),
        campaign_number=1,
        member_id=member["id"],
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=1),
    )
    cart = call("POST", f"/api/v1/carts/{other['id']}/coupons", "kiosk", {"code": code})
    coupon_id = cart["coupons"][0]["coupon_id"]
    call("DELETE", f"/api/v1/carts/{other['id']}/coupons/{coupon_id}", "kiosk")
    # Claims are the cloud's, which does not answer here.
    call("POST", f"/api/v1/members/{member['id']}/coupons", "tablet", {"claim": "x"}, expect=503)
    call("DELETE", f"/api/v1/carts/{other['id']}/member", "kiosk")
    called = call("POST", "/api/v1/assistance", "kiosk", {"cart_id": other["id"]})
    call("POST", f"/api/v1/assistance/{called['id']}/answer", "tablet")
    add_staff(store.db, staff_id="E1", name="Li", role="attendant", pin="2468", now=now)
    call("POST", "/api/v1/staff/sign-in", "tablet", {"staff_id": "E1", "pin": "2468"})
    call("POST", "/api/v1/staff/sign-out", "tablet")
    poster = call("POST", "/api/v1/store-qr", "tablet")
    call("POST", "/api/v1/pairing", "exit", {"join": poster["url"].split("#join=")[1]})
    made = call("POST", "/api/v1/pairing-codes", "manager", {"role": "exit"})
    call("POST", "/api/v1/pairing", "exit", {"code": made["code"]})
    call("PATCH", f"/api/v1/devices/{store.devices['kiosk']}", "manager", {"name": "kiosk 9"})
    call("POST", f"/api/v1/devices/{store.devices['kiosk']}/revoke", "manager")

    writes = {s.endpoint for s in all_specs() if s.method in WRITE_METHODS}
    assert writes <= set(seen), f"exercise these write routes here: {sorted(writes - set(seen))}"
    writers = {endpoint for endpoint, wrote in seen.items() if wrote}
    assert writers == declared, (
        f"write an outbox event but are not declared writes_events=True: "
        f"{sorted(writers - declared)}; declared but wrote none: {sorted(declared - writers)}"
    )
