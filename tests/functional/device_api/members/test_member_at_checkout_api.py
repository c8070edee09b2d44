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
    # Read back, and sent to the cloud with the sale (at the current schema version, 4).
    again = live.ok(live.get(f"/api/v1/sales/{done['sale']['id']}", "kiosk"))
    assert again["points"] == done["sale"]["points"]
    event = _last_sale_event(live)
    assert event["schema_version"] == 4
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


def _give_balance(live: Live, member_id: str, points: int) -> None:
    """The balance the cloud last gave this store for the member (as a lookup would keep it)."""
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute("UPDATE members SET balance = ? WHERE id = ?", (points, member_id))


def test_a_shoppers_device_spends_points_only_for_a_member_who_showed_their_code(
    enrolled: Live,
) -> None:
    live = enrolled
    member = live.ok(live.post("/api/v1/members", "tablet", json={"phone": "13655550010"}), 201)
    _give_balance(live, member["id"], 500)
    cart = new_cart(live)
    scan(live, cart["id"], MILK_CODE, 2)
    member_url, points_url = (f"/api/v1/carts/{cart['id']}/{part}" for part in ("member", "points"))
    # Anyone may say a phone number: it earns points, it does not spend them at a kiosk.
    by_phone = live.ok(live.put(member_url, "kiosk", json={"member_code": "136 5555 0010"}))
    assert by_phone["member"]["id"] == member["id"]
    refused = live.ok(live.put(points_url, "kiosk", json={"points": 10}), 403)
    assert refused["error"]["code"] == "member_code_required"
    assert live.ok(live.get(f"/api/v1/carts/{cart['id']}", "kiosk"))["points"] is None
    # The code their own app shows proves them.
    live.ok(live.put(member_url, "kiosk", json={"member_code": member["code"]}))
    spent = live.ok(live.put(points_url, "kiosk", json={"points": 10}))
    assert spent["points"]["points"] == 10
    # Said by phone again: the points already set stay, new ones are refused.
    live.ok(live.put(member_url, "kiosk", json={"member_code": "13655550010"}))
    again = live.ok(live.put(points_url, "kiosk", json={"points": 20}), 403)
    assert again["error"]["code"] == "member_code_required"
    assert live.ok(live.delete(points_url, "kiosk"))["points"] is None
    # At the staffed tablet, the attendant checks who is paying: a phone number will do.
    staffed = new_cart(live, "tablet")
    scan(live, staffed["id"], MILK_CODE, 2, role="tablet")
    live.ok(
        live.put(
            f"/api/v1/carts/{staffed['id']}/member", "tablet", json={"member_code": "13655550010"}
        )
    )
    paid = live.ok(live.put(f"/api/v1/carts/{staffed['id']}/points", "tablet", json={"points": 5}))
    assert paid["points"]["points"] == 5


def test_signing_up_a_known_phone_on_a_shoppers_device_does_not_give_its_code(
    enrolled: Live,
) -> None:
    live = enrolled
    phone = {"phone": "13655550011"}
    first = live.ok(live.post("/api/v1/members", "tablet", json=phone), 201)
    for role in ("kiosk", "phone"):
        known = live.ok(live.post("/api/v1/members", role, json=phone), 200)
        assert (known["id"], known["masked_phone"]) == (first["id"], "136****0011")
        assert known["code"] is None, role
    assert (
        live.ok(live.post("/api/v1/members", "manager", json=phone), 200)["code"] == first["code"]
    )


def test_a_members_ledger_is_read_on_their_own_phone_and_by_staff(enrolled: Live) -> None:
    live = enrolled
    member = live.ok(live.post("/api/v1/members", "phone", json={"phone": "13655550012"}), 201)
    url = f"/api/v1/members/{member['id']}/ledger"
    # The ledger is the cloud's, which this store cannot reach: 503, with what the store knows.
    offline = live.ok(live.get(url, "phone"), 503)
    assert offline["error"]["code"] == "cloud_unavailable"
    assert offline["error"]["details"] == {"member_id": member["id"], "balance": 0}
    assert live.ok(live.get(url, "tablet"), 503)["error"]["code"] == "cloud_unavailable"
    # Another shopper's phone does not see it, and a kiosk anyone stands at may not read it.
    assert live.ok(live.get(url, "phone2"), 404)["error"]["code"] == "unknown_member"
    assert live.ok(live.get(url, "kiosk"), 403)["error"]["code"] == "forbidden"
    # Typing the member's phone number on a cart proves nothing; showing their code does.
    cart = new_cart(live, "phone2", "scan_to_buy")
    cart_member = f"/api/v1/carts/{cart['id']}/member"
    live.ok(live.put(cart_member, "phone2", json={"member_code": "13655550012"}))
    assert live.ok(live.get(url, "phone2"), 404)["error"]["code"] == "unknown_member"
    live.ok(live.put(cart_member, "phone2", json={"member_code": member["code"]}))
    assert live.ok(live.get(url, "phone2"), 503)["error"]["code"] == "cloud_unavailable"
    bad = live.ok(live.get(url + "?limit=0", "phone"), 422)
    assert bad["error"]["details"]["fields"][0]["field"] == "limit"


def _carts_of(live: Live, device_role: str) -> int:
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        return conn.execute(
            "SELECT count(*) FROM carts JOIN devices ON devices.id = carts.device_id "
            "WHERE devices.role = ?",
            (device_role,),
        ).fetchone()[0]


def test_a_cart_opened_with_the_members_code_is_theirs_from_the_first_scan(
    enrolled: Live,
) -> None:
    live = enrolled
    member = live.ok(live.post("/api/v1/members", "tablet", json={"phone": "13655550020"}), 201)
    _give_balance(live, member["id"], 300)
    key = {"Idempotency-Key": "open-for-member-20"}
    body = {"channel": "kiosk", "member_code": member["code"]}
    cart = live.ok(live.post("/api/v1/carts", "kiosk", json=body, headers=key), 201)
    assert cart["member"] == {
        "id": member["id"],
        "masked_phone": "136****0020",
        "balance": 300,
        "tier": "basic",
        "offline": True,
    }
    # A retry of the same opening is the same cart, not a second one.
    again = live.ok(live.post("/api/v1/carts", "kiosk", json=body, headers=key), 201)
    assert again["id"] == cart["id"]
    # Opened by the code their app shows: the kiosk may spend their points on it.
    scan(live, cart["id"], MILK_CODE, 2)
    spent = live.ok(live.put(f"/api/v1/carts/{cart['id']}/points", "kiosk", json={"points": 10}))
    assert spent["points"]["points"] == 10
    total = spent["totals"]["total"]
    done = live.ok(checkout(live, cart["id"], [{"method": "cash", "amount": total}]), 201)
    assert done["sale"]["member"]["id"] == member["id"]
    assert done["sale"]["points"]["burned"] == 10
    # Opened by phone number: the member earns, but a shopper's kiosk may not spend for them.
    by_phone = live.ok(
        live.post(
            "/api/v1/carts", "kiosk", json={"channel": "kiosk", "member_code": "136-5555-0020"}
        ),
        201,
    )
    assert by_phone["member"]["id"] == member["id"]
    scan(live, by_phone["id"], MILK_CODE, 1)
    refused = live.ok(
        live.put(f"/api/v1/carts/{by_phone['id']}/points", "kiosk", json={"points": 1}), 403
    )
    assert refused["error"]["code"] == "member_code_required"


def test_a_phone_that_opens_a_cart_with_its_members_code_may_read_their_ledger(
    enrolled: Live,
) -> None:
    live = enrolled
    member = live.ok(live.post("/api/v1/members", "tablet", json={"phone": "13655550021"}), 201)
    url = f"/api/v1/members/{member['id']}/ledger"
    assert live.ok(live.get(url, "phone2"), 404)["error"]["code"] == "unknown_member"
    cart = live.ok(
        live.post(
            "/api/v1/carts",
            "phone2",
            json={"channel": "scan_to_buy", "member_code": member["code"]},
        ),
        201,
    )
    assert cart["member"]["id"] == member["id"]
    assert live.ok(live.get(url, "phone2"), 503)["error"]["code"] == "cloud_unavailable"


def test_no_cart_opens_for_an_unknown_member_or_a_bad_phone(enrolled: Live) -> None:
    live = enrolled
    before = _carts_of(live, "kiosk")
    unknown = live.ok(
        live.post(
            "/api/v1/carts", "kiosk", json={"channel": "kiosk", "member_code": "13655559998"}
        ),
        404,
    )
    assert unknown["error"]["code"] == "unknown_member"
    bad = live.ok(
        live.post("/api/v1/carts", "kiosk", json={"channel": "kiosk", "member_code": "12"}), 422
    )
    assert bad["error"]["code"] == "bad_phone"
    empty = live.ok(
        live.post("/api/v1/carts", "kiosk", json={"channel": "kiosk", "member_code": ""}), 422
    )
    assert empty["error"]["details"]["fields"][0]["field"] == "member_code"
    assert _carts_of(live, "kiosk") == before
    # A phone still opens scan-to-buy carts only, member or not.
    wrong = live.ok(
        live.post("/api/v1/carts", "phone", json={"channel": "kiosk", "member_code": "136"}), 403
    )
    assert wrong["error"]["code"] == "forbidden"
