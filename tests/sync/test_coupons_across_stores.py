"""One coupon, two store servers and the cloud, all real processes on real sockets.

A member claims a coupon with a campaign's claim QR at store A. While both stores reach the
cloud, a cart in A reserves it at the cloud and B's cart is refused it until A lets it go. With
both links cut, A takes it and refuses it a second time, and B, which cannot know, takes it
too: once the links heal, the cloud holds both sales and exactly one ``coupon_double_use``
exception, for whichever redemption reached it second, with the amount that sale took off. A
public code is taken at B offline within B's quota and refused beyond it, and the cloud raises
B's quota when B's sales arrive, which B pulls. HQ's page at the cloud, in headless Chromium,
then lists the exception and both stores' sales of the day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.functional.screens import SHOTS
from tests.sync.fault_proxy import FaultProxy, Link
from tests.sync.harness import CloudProcess, EdgeProcess, enrolled, wait_for

PHONE = "13712345678"
SYNC_ENV = {
    "AISLE_SYNC__PUSH_INTERVAL_S": "0.5",
    "AISLE_SYNC__PULL_INTERVAL_S": "1",
    "AISLE_MEMBERS__ONLINE_RETRY_S": "0",  # the test cuts and heals the links at will
}


def _campaigns() -> list[dict[str, Any]]:
    dates = {
        "starts": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "ends": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    return [
        {
            "id": "poster-3-off",
            "name": "3 off",
            "offer": {"kind": "amount_off", "amount": 300},
            **dates,
        },
        {
            "id": "public-1-off",
            "name": "1 off for everyone",
            "offer": {"kind": "amount_off", "amount": 100},
            "public_code": "EVERY1",
            "cap": 4,
            **dates,
        },
    ]


def _ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()


def _cart(edge: EdgeProcess, member: str | None) -> dict[str, Any]:
    cart = edge.open_cart(items=2)
    if member is not None:
        cart = _ok(
            edge.call("PUT", f"/api/v1/carts/{cart['id']}/member", json={"member_code": member})
        )
    return cart


def _apply(edge: EdgeProcess, cart: dict[str, Any], code: str) -> requests.Response:
    return edge.call("POST", f"/api/v1/carts/{cart['id']}/coupons", json={"code": code})


def _error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, str(response.json().get("error", {}).get("code"))


def _pay(edge: EdgeProcess, cart: dict[str, Any]) -> dict[str, Any]:
    cart = _ok(edge.call("GET", f"/api/v1/carts/{cart['id']}"))
    body = {"payments": [{"method": "cash", "amount": cart["due"]}]}
    return dict(
        _ok(
            edge.call(
                "POST",
                f"/api/v1/carts/{cart['id']}/checkout",
                json=body,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ),
            201,
        )["sale"]
    )


@pytest.fixture
def stores(cloud: CloudProcess, tmp: Path, store_id: str) -> Iterator[tuple[Any, ...]]:
    """Stores A and B serving and syncing, each behind a link the test cuts."""
    link_a, link_b = Link(), Link()
    with FaultProxy(cloud.port, link_a) as proxy_a, FaultProxy(cloud.port, link_b) as proxy_b:
        a = enrolled(cloud, tmp, f"{store_id}A", via=proxy_a.url)
        b = enrolled(cloud, tmp, f"{store_id}B", via=proxy_b.url)
        answer = requests.put(
            cloud.url + "/api/v1/campaigns",
            json={"campaigns": _campaigns()},
            headers={"Authorization": f"Bearer {cloud.hq_token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        edge_a = EdgeProcess(a, env=SYNC_ENV).start()
        edge_b = EdgeProcess(b, env=SYNC_ENV).start()
        try:
            yield edge_a, edge_b, link_a, link_b
        finally:
            edge_a.stop()
            edge_b.stop()


def test_one_coupon_at_two_stores(
    cloud: CloudProcess, stores: tuple[Any, ...], browser: Any
) -> None:
    a, b, link_a, link_b = stores
    phone = {"Authorization": f"Bearer {a.store.tokens['phone']}"}
    member = _ok(a.call("POST", "/api/v1/members", json={"phone": PHONE}, headers=phone), 201)
    poster = cloud.get("/api/v1/campaigns/poster-3-off/claim")
    coupon = _ok(
        a.call(
            "POST",
            f"/api/v1/members/{member['id']}/coupons",
            json={"claim": poster["claim"]},
            headers={**phone, "Idempotency-Key": uuid.uuid4().hex},
        ),
        201,
    )
    # Online: A's cart reserves it at the cloud (once A has pulled the campaign), and B's cart
    # hears from the cloud that it is on another cart.
    cart_a = _cart(a, member["code"])
    wait_for(
        lambda: _apply(a, cart_a, coupon["code"]).status_code == 200,
        timeout=30,
        what="store A pulling the campaign",
    )
    assert _ok(a.call("GET", f"/api/v1/carts/{cart_a['id']}"))["coupons"][0]["reserved"] is True
    cart_b = _cart(b, PHONE)  # B finds the member at the cloud and keeps them
    wait_for(
        lambda: _error(_apply(b, cart_b, coupon["code"])) == (409, "coupon_reserved"),
        timeout=30,
        what="store B pulling the campaign and hearing the cloud's reservation",
    )
    # A takes it off: its reservation goes back, and B may reserve it.
    _ok(a.call("DELETE", f"/api/v1/carts/{cart_a['id']}/coupons/{coupon['id']}"))
    _ok(_apply(b, cart_b, coupon["code"]))
    _ok(b.call("DELETE", f"/api/v1/carts/{cart_b['id']}/coupons/{coupon['id']}"))

    # Both links cut: A takes it and then refuses it; B cannot know and takes it too.
    link_a.fault = link_b.fault = "unavailable"
    cart_a = _cart(a, member["code"])
    taken_a = _ok(_apply(a, cart_a, coupon["code"]))
    assert taken_a["coupons"][0]["reserved"] is False
    sale_a = _pay(a, cart_a)
    assert _error(_apply(a, _cart(a, member["code"]), coupon["code"])) == (409, "coupon_used")
    cart_b = _cart(b, member["code"])
    assert _ok(_apply(b, cart_b, coupon["code"]))["coupons"][0]["reserved"] is False
    sale_b = _pay(b, cart_b)
    assert [c["amount"] for c in sale_b["coupons"]] == [300]
    # The public code at B, offline: B's quota (one of the cap of four) and no more.
    first = _cart(b, None)
    _ok(_apply(b, first, "every1"))
    public_sale = _pay(b, first)
    refused = _apply(b, _cart(b, None), "EVERY1")
    assert _error(refused) == (409, "coupon_quota_reached")
    assert refused.json()["error"]["details"]["quota"] == 1

    # A's kiosk screen, meanwhile, says the store is offline from HQ where it matters.
    _kiosk_says_offline(a, browser)

    # The links heal: both sales reach the cloud, and one exception says what slipped through.
    link_a.fault = link_b.fault = "pass"

    def exceptions() -> list[dict[str, Any]]:
        found = cloud.get("/api/v1/exceptions?kind=coupon_double_use")["exceptions"]
        return [e for e in found if e["subject_id"] == coupon["id"]]

    wait_for(lambda: exceptions() != [], timeout=60, what="the double use at the cloud")
    wait_for(
        lambda: (
            {s["id"] for s in cloud.sales_of(b.store.settings.store.id)}
            >= {sale_b["id"], public_sale["id"]}
        ),
        timeout=60,
        what="store B's sales at the cloud",
    )
    [raised] = exceptions()
    # The exception is the redemption that reached the cloud second (either store's), with
    # what that sale took off; its details name the first.
    first_use = raised["details"]["first_use"]
    uses = {
        a.store.settings.store.id: sale_a["id"],
        b.store.settings.store.id: sale_b["id"],
    }
    assert {raised["store_id"], first_use["store_id"]} == set(uses)
    assert first_use["sale_id"] == uses[first_use["store_id"]]
    assert raised["details"]["sale_id"] == uses[raised["store_id"]]
    assert raised["amount"] == 300 and raised["details"]["offline"] is True
    # The cloud raised B's quota of the public code; B pulls it and takes the code again.
    quotas = {
        q["store_id"]: q for q in cloud.get("/api/v1/campaigns/public-1-off/quotas")["quotas"]
    }
    assert (
        quotas[b.store.settings.store.id]["used"] == 1
        and quotas[b.store.settings.store.id]["quota"] > 1
    )
    assert sum(q["quota"] for q in quotas.values()) <= 4
    again = _cart(b, None)
    wait_for(
        lambda: _apply(b, again, "EVERY1").status_code == 200,
        timeout=30,
        what="store B pulling its raised quota",
    )
    # Nothing more slipped through: still exactly one exception.
    assert len(exceptions()) == 1

    # HQ's page lists the exception, and both stores' sales of the day.
    _hq_page_shows(
        cloud, browser, coupon["id"], [a.store.settings.store.id, b.store.settings.store.id]
    )


def _hq_page_shows(cloud: CloudProcess, browser: Any, coupon_id: str, store_ids: list[str]) -> None:
    """HQ signs in at ``/hq`` in a real browser (headless Chromium) and sees the double use."""
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{cloud.url}/hq")
    page.get_by_label("HQ token").fill(cloud.hq_token)
    page.get_by_role("button", name="Sign in").click()
    row = page.locator("#exceptions tbody tr").filter(has_text="coupon_double_use")
    row.filter(has_text=coupon_id).wait_for()
    for store_id in store_ids:
        page.locator("#daily tbody tr").filter(has_text=store_id).first.wait_for()
        page.locator("#stores tbody tr").filter(has_text=store_id).filter(has_text="ok").wait_for()
    assert "3.00 CNY" in row.inner_text()
    page.screenshot(path=str(SHOTS / "hq.png"), full_page=True)
    # The token lives in an HttpOnly cookie: the page's scripts cannot read it.
    assert cloud.hq_token not in page.evaluate("document.cookie")
    assert errors == []
    context.close()


def _kiosk_says_offline(edge: EdgeProcess, browser: Any) -> None:
    manager = {"Authorization": f"Bearer {edge.store.tokens['manager']}"}
    code = _ok(
        edge.call("POST", "/api/v1/pairing-codes", json={"role": "kiosk"}, headers=manager), 201
    )["code"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{edge.url}/kiosk")
    page.get_by_label("The manager's six-digit code").fill(code)
    page.keyboard.press("Enter")
    page.locator("#offline").wait_for(state="visible", timeout=40_000)
    page.screenshot(path=str(SHOTS / "kiosk-offline.png"))
    context.close()
