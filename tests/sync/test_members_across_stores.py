"""One member, one balance, across two store servers and the cloud, all real processes on real
sockets: a member signs up and earns in store A while A is cut off from the cloud, spends
points online in store B under a cloud hold, and returns the first purchase in store A; every
store and the cloud then agree on the balance, and the ledger says why.

Store A reaches the cloud through a fault proxy whose answer the test sets: ``pass``, or
``unavailable`` (a 503 of its own: the cloud cannot be reached) or ``delay`` (the answer comes
after the store's short member timeout).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.sync.fault_proxy import FaultProxy, Link
from tests.sync.harness import CODES, CloudProcess, EdgeProcess, enrolled, wait_for

PHONE = "13912345678"
SYNC_ENV = {
    "AISLE_SYNC__PUSH_INTERVAL_S": "0.5",
    "AISLE_SYNC__PULL_INTERVAL_S": "1",
    # The tests cut and heal links at will: a store asks the cloud at every member call
    # (tests/integration/test_member_cloud_quiet.py checks the quiet time after a failure).
    "AISLE_MEMBERS__ONLINE_RETRY_S": "0",
}


def _ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()


def _cart(edge: EdgeProcess, *codes: str) -> dict[str, Any]:
    cart = _ok(edge.call("POST", "/api/v1/carts", json={"channel": "kiosk"}), 201)
    for code in codes:
        scanned = edge.call("POST", f"/api/v1/carts/{cart['id']}/lines", json={"barcode": code})
        cart = _ok(scanned, scanned.status_code if scanned.status_code in (200, 201) else 201)
    return cart


def _attach(edge: EdgeProcess, cart: dict[str, Any], who: str) -> dict[str, Any]:
    return _ok(edge.call("PUT", f"/api/v1/carts/{cart['id']}/member", json={"member_code": who}))


def _pay_cash(edge: EdgeProcess, cart: dict[str, Any]) -> dict[str, Any]:
    payments = [{"method": "cash", "amount": cart["due"]}] if cart["due"] else []
    return _ok(
        edge.call(
            "POST",
            f"/api/v1/carts/{cart['id']}/checkout",
            json={"payments": payments},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ),
        201,
    )


def _cloud_member(cloud: CloudProcess, member_id: str) -> dict[str, Any]:
    return dict(cloud.get(f"/api/v1/members/{member_id}"))


@pytest.fixture
def stores(cloud: CloudProcess, tmp: Path, store_id: str) -> Iterator[tuple[Any, ...]]:
    """Store A (behind a proxy the test sets) and store B, serving and syncing; B's proxy is
    the fixture's last item."""
    link, link_b = Link(), Link()
    with (
        FaultProxy(cloud.port, link, delay_s=2.0) as proxy,
        FaultProxy(cloud.port, link_b) as proxy_b,
    ):
        a = enrolled(cloud, tmp, f"{store_id}A", via=proxy.url)
        b = enrolled(cloud, tmp, f"{store_id}B", via=proxy_b.url)
        edge_a = EdgeProcess(a, env=SYNC_ENV).start()
        edge_b = EdgeProcess(b, env=SYNC_ENV).start()
        try:
            yield link, edge_a, edge_b, link_b
        finally:
            edge_a.stop()
            edge_b.stop()


def test_earn_offline_in_a_spend_online_in_b_return_in_a_one_balance_everywhere(
    cloud: CloudProcess, stores: tuple[Any, ...]
) -> None:
    link, a, b, _ = stores
    # A is cut off: the sign-up and the sale are A's own, and its cart says the balance is
    # A's word, not the cloud's.
    link.fault = "unavailable"
    member = _ok(a.call("POST", "/api/v1/members", json={"phone": PHONE, "name": "Li Lei"}), 201)
    assert member["provisional"] is True
    cart = _cart(a, *CODES, *CODES)
    cart = _attach(a, cart, member["code"])
    assert cart["member"]["offline"] is True
    first = _pay_cash(a, cart)
    earned_a = first["sale"]["total"] // 100
    assert first["sale"]["points"] == {"earned": earned_a, "burned": 0, "balance_after": earned_a}

    # A is back: its events reach the cloud, which now holds the member and the points.
    link.fault = "pass"
    wait_for(
        lambda: _cloud_balance(cloud, member["id"]) == earned_a,
        timeout=60,
        what="store A's offline sign-up and sale at the cloud",
    )

    # In B, found at the cloud by phone (B never saw them), with A's points.
    cart_b = _attach(b, _cart(b, CODES[1], CODES[1]), PHONE)
    assert cart_b["member"]["id"] == member["id"]
    assert cart_b["member"]["offline"] is False
    assert cart_b["member"]["balance"] == earned_a
    # To spend at the kiosk, they show the code in their app (a phone number proves nothing).
    cart_b = _attach(b, cart_b, member["code"])
    spend = earned_a // 2
    cart_b = _ok(b.call("PUT", f"/api/v1/carts/{cart_b['id']}/points", json={"points": spend}))
    assert cart_b["points"] == {"points": spend, "value": spend, "held": True}
    assert cart_b["due"] == cart_b["totals"]["total"] - spend
    # Held at the cloud: what is free to spend elsewhere went down at once.
    assert _cloud_member(cloud, member["id"])["available"] == earned_a - spend
    second = _pay_cash(b, cart_b)
    earned_b = (second["sale"]["total"] - spend) // 100
    assert second["sale"]["points"]["burned"] == spend
    assert second["sale"]["points"]["earned"] == earned_b
    points_tender = [p for p in second["sale"]["payments"] if p["method"] == "points"]
    assert [p["amount"] for p in points_tender] == [spend]
    assert second["sale"]["member"]["hold_id"] is not None
    wait_for(
        lambda: _cloud_balance(cloud, member["id"]) == earned_a - spend + earned_b,
        timeout=60,
        what="store B's spend and earn at the cloud",
    )

    # Back in A, the first purchase comes back whole: its points go back out.
    refund = _ok(
        a.call(
            "POST",
            f"/api/v1/sales/{first['sale']['id']}/returns",
            json={
                "lines": [
                    {"line_id": line["id"], "quantity": line["quantity"]}
                    for line in first["sale"]["lines"]
                ],
                "reason": "changed mind",
            },
            headers={
                "Authorization": f"Bearer {a.store.tokens['tablet']}",
                "Idempotency-Key": uuid.uuid4().hex,
            },
        ),
        201,
    )
    assert refund["return"]["refund_total"] == first["sale"]["total"]
    final = earned_b - spend
    wait_for(
        lambda: _cloud_balance(cloud, member["id"]) == final,
        timeout=60,
        what="store A's return at the cloud",
    )

    # One member, one balance: the cloud, A and B say the same, and the ledger adds up.
    ledger = cloud.get(f"/api/v1/members/{member['id']}/ledger")
    assert sum(e["points"] for e in ledger["entries"]) == ledger["balance"] == final
    kinds = sorted(e["kind"] for e in ledger["entries"])
    assert kinds == sorted(["earn", "earn", "burn", "earn_reversal"]), kinds
    for store in (a, b):
        seen = _attach(store, _cart(store, CODES[0]), PHONE)["member"]
        assert (seen["id"], seen["balance"], seen["offline"]) == (member["id"], final, False)

    # The member reads the same ledger on their own phone in B, once they showed their code
    # there; a store cut off from the cloud says so rather than show part of it.
    phone = {"Authorization": f"Bearer {b.store.tokens['phone']}"}
    own = b.call("GET", f"/api/v1/members/{member['id']}/ledger", headers=phone)
    assert own.status_code == 404, own.text
    on_phone = _ok(
        b.call("POST", "/api/v1/carts", json={"channel": "scan_to_buy"}, headers=phone), 201
    )
    _ok(
        b.call(
            "PUT",
            f"/api/v1/carts/{on_phone['id']}/member",
            json={"member_code": member["code"]},
            headers=phone,
        )
    )
    through_b = _ok(b.call("GET", f"/api/v1/members/{member['id']}/ledger", headers=phone))
    assert through_b == ledger
    link.fault = "unavailable"
    staff = {"Authorization": f"Bearer {a.store.tokens['tablet']}"}
    cut_off = a.call("GET", f"/api/v1/members/{member['id']}/ledger", headers=staff)
    assert (cut_off.status_code, cut_off.json()["error"]["details"]["balance"]) == (503, final)
    link.fault = "pass"


def test_the_cloud_holds_points_so_two_stores_cannot_spend_them_at_once(
    cloud: CloudProcess, stores: tuple[Any, ...]
) -> None:
    link, a, b, _ = stores
    member = _ok(b.call("POST", "/api/v1/members", json={"phone": "13912340001"}), 201)
    assert member["provisional"] is False  # registered at the cloud at once
    earned = _pay_cash(b, _attach(b, _cart(b, *CODES, *CODES, *CODES), member["code"]))["sale"][
        "points"
    ]["earned"]
    wait_for(
        lambda: _cloud_balance(cloud, member["id"]) == earned,
        timeout=60,
        what="the earn at the cloud",
    )
    cart_b = _attach(b, _cart(b, *CODES), member["code"])
    _ok(b.call("PUT", f"/api/v1/carts/{cart_b['id']}/points", json={"points": earned}))
    cart_a = _attach(a, _cart(a, *CODES), member["code"])
    refused = a.call("PUT", f"/api/v1/carts/{cart_a['id']}/points", json={"points": 1})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "points_insufficient"
    assert refused.json()["error"]["details"]["available"] == 0
    # B takes its points off the cart: the hold is given back and A may spend them.
    _ok(b.call("DELETE", f"/api/v1/carts/{cart_b['id']}/points"))
    cart_a = _ok(a.call("PUT", f"/api/v1/carts/{cart_a['id']}/points", json={"points": earned}))
    assert cart_a["points"]["held"] is True

    # A slow cloud (its answer after the store's 0.3 s member timeout) does not hold up the
    # checkout: A carries on with its own copy, and says so.
    link.fault = "delay"
    slow = _attach(a, _cart(a, CODES[0]), member["code"])
    assert slow["member"]["offline"] is True
    assert slow["member"]["id"] == member["id"]
    # Offline, A lets the member spend no more than the balance it knows, less what its other
    # carts set aside offline (the open cart above holds its points at the cloud, not here).
    over = a.call("PUT", f"/api/v1/carts/{slow['id']}/points", json={"points": earned + 1})
    assert over.status_code == 409
    error = over.json()["error"]
    assert error["code"] == "points_offline_limit"
    assert error["details"]["limit"] == earned


def _cloud_balance(cloud: CloudProcess, member_id: str) -> int | None:
    response = requests.get(
        f"{cloud.url}/api/v1/members/{member_id}",
        headers={"Authorization": f"Bearer {cloud.hq_token}"},
        timeout=10,
    )
    return int(response.json()["balance"]) if response.status_code == 200 else None


def test_one_phone_signed_up_offline_in_two_stores_is_one_member_everywhere(
    cloud: CloudProcess, stores: tuple[Any, ...]
) -> None:
    link_a, a, b, link_b = stores
    phone = "13912340002"
    link_a.fault = link_b.fault = "unavailable"
    in_a = _ok(a.call("POST", "/api/v1/members", json={"phone": phone}), 201)
    in_b = _ok(b.call("POST", "/api/v1/members", json={"phone": phone}), 201)
    assert in_a["id"] != in_b["id"]
    earned_a = _pay_cash(a, _attach(a, _cart(a, *CODES), phone))["sale"]["points"]["earned"]
    earned_b = _pay_cash(b, _attach(b, _cart(b, *CODES, *CODES), phone))["sale"]["points"]["earned"]
    # A reaches the cloud first: its member is the chain's; B's sign-up then folds into it.
    link_a.fault = "pass"
    wait_for(lambda: _cloud_balance(cloud, in_a["id"]) == earned_a, timeout=60, what="A's member")
    link_b.fault = "pass"
    wait_for(
        lambda: _cloud_balance(cloud, in_a["id"]) == earned_a + earned_b,
        timeout=60,
        what="B's sign-up merged into A's member, with its points",
    )
    # B's id answers the survivor at the cloud, and the ledger keeps every entry.
    assert _cloud_member(cloud, in_b["id"])["id"] == in_a["id"]
    ledger = cloud.get(f"/api/v1/members/{in_a['id']}/ledger")
    assert sum(e["points"] for e in ledger["entries"]) == earned_a + earned_b
    assert {e["recorded_for"] for e in ledger["entries"] if e["kind"] == "earn"} == {
        in_a["id"],
        in_b["id"],
    }

    # B learns the merge by pull: cut off again, it finds the member by phone under the
    # surviving id and code, so its next sales name the survivor.
    def b_knows_survivor() -> bool:
        link_b.fault = "unavailable"
        seen = _attach(b, _cart(b, CODES[0]), phone)["member"]
        link_b.fault = "pass"
        return bool(seen["id"] == in_a["id"])

    wait_for(b_knows_survivor, timeout=60, what="store B pulled the merge")
    offline = _attach(b, _cart(b, CODES[0]), in_a["code"])
    assert offline["member"]["id"] == in_a["id"]


def test_the_chains_earn_rules_and_an_online_shops_earn_reach_the_store(
    cloud: CloudProcess, stores: tuple[Any, ...], tmp: Path
) -> None:
    _, _, b, _ = stores
    rules = tmp / "earn-rules.json"
    rules.write_text(
        json.dumps(
            {
                "points_per_unit": 100,
                "tier_multipliers": {"silver": 20_000},
                "hot_products": {"MILK1L": 7},
                "tiers": [{"name": "basic", "min_spend": 0}, {"name": "silver", "min_spend": 1}],
            }
        )
    )
    cloud.cli("members", "earn-rules", str(rules))
    member = _ok(b.call("POST", "/api/v1/members", json={"phone": "13912340003"}), 201)
    # The online shop earns the member points (and a year's spend: silver).
    shop = cloud.cli("token", "--role", "channel", "--name", "shop").stdout.split()[-1]
    earned = requests.post(
        f"{cloud.url}/api/v1/channel/members/{member['id']}/earn",
        json={"order_id": "ORD-1", "points": 50, "spend": 5_000},
        headers={"Authorization": f"Bearer {shop}", "Idempotency-Key": "ord-1-earn"},
        timeout=10,
    )
    assert earned.status_code == 201, earned.text
    # The store's next lookup shows them.
    cart = _attach(b, _cart(b, CODES[0]), member["code"])
    assert (cart["member"]["balance"], cart["member"]["tier"]) == (50, "silver")
    # Once the store has pulled the rules, a sale earns by them: 1,250 for the milk, doubled
    # for silver (25 points), and 7 more for the hot product.
    wait_for(lambda: _pulled_rules(b), timeout=30, what="the store pulled the chain's earn rules")
    sale = _pay_cash(b, cart)["sale"]
    assert sale["total"] == 1_250
    assert sale["points"]["earned"] == 25 + 7
    assert sale["points"]["balance_after"] == 50 + 32


def _pulled_rules(edge: EdgeProcess) -> bool:
    with sqlite3.connect(edge.store.settings.database_path) as conn:
        row = conn.execute("SELECT value FROM store_settings WHERE key = 'earn_rules'").fetchone()
    return row is not None and "MILK1L" in row[0]


def test_hqs_promotions_reach_the_stores_and_price_their_carts(
    cloud: CloudProcess, stores: tuple[Any, ...], tmp: Path
) -> None:
    """HQ imports a promotion with the command line; the store's scheduler pulls it and its
    kiosks price carts by it; a withdrawal reaches it the same way."""
    _, _, b, _ = stores
    soap = CODES[2]  # 3.33 a piece; no other test here scans it
    offer = tmp / "promotions.toml"

    def write(active: bool) -> None:
        offer.write_text(
            "[[promotions]]\n"
            'id = "soap-3-for-2"\nname = "Soap: buy 2, get 1 free"\nkind = "buy_x_get_y"\n'
            f"buy = 2\nget = 1\npercent_bp = 10000\nactive = {str(active).lower()}\n"
            'target = {skus = ["SOAP"]}\n'
        )
        cloud.cli("promotions", "import", str(offer))

    write(active=True)
    wait_for(
        lambda: _cart(b, soap, soap, soap)["totals"]["discount"] == 333,
        timeout=30,
        what="the store priced soap by the pulled promotion",
    )
    cart = _cart(b, soap, soap, soap)
    assert [(d["name"], d["amount"]) for d in cart["discounts"]] == [
        ("Soap: buy 2, get 1 free", 333)
    ]
    sale = _pay_cash(b, cart)["sale"]
    assert (sale["total"], sale["discount"]) == (666, 333)
    assert sale["discounts"][0]["lines"] == [{"line_id": sale["lines"][0]["id"], "amount": 333}]
    write(active=False)
    wait_for(
        lambda: _cart(b, soap, soap, soap)["totals"]["discount"] == 0,
        timeout=30,
        what="the store pulled the withdrawal",
    )
