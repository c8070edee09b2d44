"""A member at the checkout, over HTTP against a real store server: attached to a cart by the
code their phone shows or by their phone number, earning points on the sale, shown on the sale
and the receipt, and sent to the cloud with the sale's event."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest

from sync.keys import generate_private_key, public_key_b64
from tests.functional.conftest import Live
from tests.functional.helpers import MILK_CODE, checkout, new_cart, scan


@pytest.fixture(scope="module")
def enrolled(live: Live) -> Iterator[Live]:
    """The package's store, linked to a cloud (members are signed up once it is enrolled)."""
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute(
            "INSERT OR REPLACE INTO cloud_link (id, cloud_url, store_id, cloud_public_key, "
            "protocol_version, max_batch_events, max_batch_bytes, enrolled_at) "
            "VALUES (1, 'http://127.0.0.1:9', 'S001', ?, 1, 1000, 2097152, "
            "'2026-11-27 08:00:00.000000')",
            (public_key_b64(generate_private_key()),),
        )
    yield live
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute("DELETE FROM cloud_link")


def _last_sale_event(live: Live) -> dict:
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        row = conn.execute(
            "SELECT payload FROM outbox WHERE type = 'sale.completed' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    return json.loads(row[0])


def test_a_member_attached_by_code_earns_points_on_the_sale(enrolled: Live) -> None:
    live = enrolled
    member = live.ok(live.post("/api/v1/members", "kiosk", json={"phone": "13655550001"}), 201)
    cart = new_cart(live)
    scan(live, cart["id"], MILK_CODE, 3)
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["member"] is None
    attached = live.ok(
        live.put(
            f"/api/v1/carts/{cart['id']}/member", "kiosk", json={"member_code": member["code"]}
        )
    )
    assert attached["member"] == {
        "id": member["id"],
        "masked_phone": "136****0001",
        "balance": 0,
        "tier": "basic",
        "offline": True,
    }
    total = attached["totals"]["total"]
    done = live.ok(checkout(live, cart["id"], [{"method": "cash", "amount": total}]), 201)
    earned = total // 100  # one point per yuan, the store's setting
    assert done["sale"]["points"] == {"earned": earned, "burned": 0, "balance_after": earned}
    assert done["sale"]["member"]["id"] == member["id"]
    assert done["receipt"]["points"] == {"earned": earned, "burned": 0, "balance_after": earned}
    assert f"+{earned}" in done["receipt"]["text"] and "Points balance" in done["receipt"]["text"]
    # Read back, and sent to the cloud with the sale (schema version 2).
    again = live.ok(live.get(f"/api/v1/sales/{done['sale']['id']}", "kiosk"))
    assert again["points"] == done["sale"]["points"]
    event = _last_sale_event(live)
    assert event["schema_version"] == 2
    assert event["sale"]["member"] == {
        "id": member["id"],
        "earned": earned,
        "burned": 0,
        "spend": total,
        "hold_id": None,
        "offline": True,
    }

    # The next cart, attached by phone number: the balance the store knows now.
    cart = new_cart(live)
    attached = live.ok(
        live.put(
            f"/api/v1/carts/{cart['id']}/member", "kiosk", json={"member_code": "136 5555 0001"}
        )
    )
    assert attached["member"]["balance"] == earned
    detached = live.ok(live.delete(f"/api/v1/carts/{cart['id']}/member", "kiosk"))
    assert detached["member"] is None


def test_attaching_refuses_an_unknown_member_a_bad_phone_and_a_paid_cart(enrolled: Live) -> None:
    live = enrolled
    cart = new_cart(live)
    url = f"/api/v1/carts/{cart['id']}/member"
    unknown = live.ok(live.put(url, "kiosk", json={"member_code": "13655559999"}), 404)
    assert unknown["error"]["code"] == "unknown_member"
    bad = live.ok(live.put(url, "kiosk", json={"member_code": "12"}), 422)
    assert bad["error"]["code"] == "bad_phone"
    member = live.ok(live.post("/api/v1/members", "kiosk", json={"phone": "13655550002"}), 201)
    scan(live, cart["id"], MILK_CODE, 1)
    total = live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["totals"]["total"]
    live.ok(checkout(live, cart["id"], [{"method": "cash", "amount": total}]), 201)
    closed = live.ok(live.put(url, "kiosk", json={"member_code": member["code"]}), 409)
    assert closed["error"]["code"] == "cart_closed"
    # Another device's cart is not there for this one.
    other = new_cart(live)
    hidden = live.ok(
        live.put(
            f"/api/v1/carts/{other['id']}/member", "phone", json={"member_code": member["code"]}
        ),
        404,
    )
    assert hidden["error"]["code"] == "unknown_cart"
