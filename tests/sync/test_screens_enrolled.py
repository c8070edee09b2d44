"""The kiosk's screen in a real browser (headless Chromium driven by Playwright) on a store
enrolled with a real cloud, both real processes: three items scanned by keyboard wedge, the
member attached by the code their app shows, a coupon they claimed from a poster applied, and
the card payment made with the keyboard alone; the receipt shows the coupon and the member's
points, and the cloud then holds the sale with the coupon redeemed once. Then the member's own
phone, joined by the door's QR, shows their points, ledger and coupons, and a second poster's
QR scanned on it lands a new coupon there."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.builders import MILK, RICE, SOAP
from tests.functional.screens import SHOTS, tab_to, wedge
from tests.sync.harness import CloudProcess, EdgeProcess, enrolled, wait_for

PHONE = "13712345679"
SYNC_ENV = {"AISLE_SYNC__PUSH_INTERVAL_S": "0.5", "AISLE_SYNC__PULL_INTERVAL_S": "1"}


@pytest.fixture
def edge(cloud: CloudProcess, tmp: Path, store_id: str) -> Iterator[EdgeProcess]:
    store = enrolled(cloud, tmp, store_id)
    dates = {
        "starts": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "ends": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
    }
    campaigns = [
        {"id": "poster-3-off", "name": "3 off", "offer": {"kind": "amount_off", "amount": 300}},
        {"id": "poster-5-off", "name": "5 off", "offer": {"kind": "amount_off", "amount": 500}},
    ]
    answer = requests.put(
        cloud.url + "/api/v1/campaigns",
        json={"campaigns": [{**c, **dates} for c in campaigns]},
        headers={"Authorization": f"Bearer {cloud.hq_token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    served = EdgeProcess(store, env=SYNC_ENV).start()
    try:
        yield served
    finally:
        served.stop()


def _as(edge: EdgeProcess, role: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {edge.store.tokens[role]}", **extra}


def _ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()


def test_a_member_and_their_coupon_at_the_kiosk(
    cloud: CloudProcess, edge: EdgeProcess, browser: Any
) -> None:
    phone = _as(edge, "phone")
    member = _ok(edge.call("POST", "/api/v1/members", json={"phone": PHONE}, headers=phone), 201)
    poster = cloud.get("/api/v1/campaigns/poster-3-off/claim")
    coupon = _ok(
        edge.call(
            "POST",
            f"/api/v1/members/{member['id']}/coupons",
            json={"claim": poster["claim"]},
            headers={**phone, "Idempotency-Key": uuid.uuid4().hex},
        ),
        201,
    )

    def pulled() -> bool:
        with sqlite3.connect(f"file:{edge.store.settings.database_path}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM coupon_campaigns").fetchone()[0] == 2

    wait_for(pulled, timeout=30, what="the store pulling the campaign")
    # The member earned points at an earlier visit (through the API), which the cloud holds.
    earlier = edge.open_cart(items=2)
    earlier = _ok(
        edge.call(
            "PUT", f"/api/v1/carts/{earlier['id']}/member", json={"member_code": member["code"]}
        )
    )
    _ok(edge.pay(earlier, uuid.uuid4().hex), 201)

    def balance() -> int:
        return int(cloud.get(f"/api/v1/members/{member['id']}")["balance"])

    wait_for(lambda: balance() > 10, timeout=60, what="the earlier visit's points at the cloud")
    code = _ok(
        edge.call(
            "POST",
            "/api/v1/pairing-codes",
            json={"role": "kiosk", "name": "kiosk 1"},
            headers=_as(edge, "manager"),
        ),
        201,
    )["code"]

    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{edge.url}/kiosk")
    page.get_by_label("The manager's six-digit code").fill(code)
    page.keyboard.press("Enter")
    page.locator("#till").wait_for(state="visible")
    for product in (MILK, RICE, SOAP):
        wedge(page, product["barcodes"].split("|")[0])
    page.locator("#lines tbody tr").nth(2).wait_for()
    page.get_by_label("Member phone or code").fill(member["code"])
    page.keyboard.press("Enter")
    page.locator("#member-shown").filter(has_text=member["masked_phone"]).wait_for()
    # They spend ten points: the form shows once the member has some.
    page.get_by_label("Points to spend").fill("10")
    page.keyboard.press("Enter")
    page.locator("#member-shown").filter(has_text="using 10").wait_for()
    assert page.locator("#offline").is_hidden()  # the store reaches HQ
    page.get_by_label("Coupon code").fill(coupon["code"])
    page.keyboard.press("Enter")
    page.locator("#discounts li").filter(has_text="3 off").wait_for()
    page.screenshot(path=str(SHOTS / "kiosk-member-coupon.png"))
    # Pay with the keyboard alone.
    tab_to(page, "Pay by card")
    page.keyboard.press("Enter")
    page.locator("#receipt-box").wait_for(state="visible")
    receipt = page.locator("#receipt").inner_text()
    assert "3 off" in receipt, receipt
    assert "3.00" in receipt
    page.screenshot(path=str(SHOTS / "kiosk-member-receipt.png"))
    context.close()

    # The cloud holds the sale, for the member, with the coupon redeemed once.
    store_id = edge.store.settings.store.id

    def at_cloud() -> list[dict[str, Any]]:
        return cloud.sales_of(store_id)

    wait_for(lambda: len(at_cloud()) == 2, timeout=60, what="the sales at the cloud")
    coupons = cloud.get(f"/api/v1/members/{member['id']}/coupons")["coupons"]
    assert [(c["id"], c["status"]) for c in coupons] == [(coupon["id"], "redeemed")]
    earned = cloud.get(f"/api/v1/members/{member['id']}")["balance"]
    assert earned > 0

    # The member's own phone: joined by the door's QR, the member page by their code, then the
    # other poster's QR scanned: the coupon lands in their coupons.
    door = _ok(
        edge.call(
            "POST",
            "/api/v1/store-qr",
            headers=_as(edge, "manager", **{"Idempotency-Key": uuid.uuid4().hex}),
        ),
        201,
    )
    context = browser.new_context(viewport={"width": 412, "height": 915})
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(door["url"])
    page.locator("#shop").wait_for(state="visible")
    page.get_by_label("Member code (from your member QR)").fill(member["code"])
    page.get_by_role("button", name="Use my membership").click()
    page.locator("#member-shown").filter(has_text=f"points {earned}").wait_for()
    page.locator("#ledger li").first.wait_for()
    page.locator("#my-coupons li").filter(has_text="3 off").filter(has_text="redeemed").wait_for()
    other = cloud.get("/api/v1/campaigns/poster-5-off/claim")["claim"]
    page.get_by_label("Type a barcode").fill(other)
    page.keyboard.press("Enter")
    page.locator("#my-coupons li").filter(has_text="5 off").wait_for()
    page.screenshot(path=str(SHOTS / "go-member.png"), full_page=True)
    # They shop: the cart their code opened is theirs, and so is the next one, opened with
    # their code by the first scan after they paid.
    wedge(page, MILK["barcodes"].split("|")[0])
    page.locator("#lines tbody tr").first.wait_for()
    page.get_by_role("button", name="Pay in the app").click()
    page.locator("#pass-box").wait_for(state="visible")
    page.get_by_role("button", name="Shop again").click()
    wedge(page, RICE["barcodes"].split("|")[0])
    page.locator("#lines tbody tr").filter(has_text=RICE["name"][:10]).wait_for()
    with sqlite3.connect(edge.store.settings.data_dir / "edge.sqlite3") as conn:
        carts = conn.execute(
            "SELECT status, member_id, member_by_code FROM carts WHERE channel = 'scan_to_buy' "
            "ORDER BY created_at"
        ).fetchall()
    assert carts == [("checked_out", member["id"], 1), ("open", member["id"], 1)]
    assert errors == []
    context.close()
    coupons = cloud.get(f"/api/v1/members/{member['id']}/coupons")["coupons"]
    assert sorted((c["campaign_id"], c["status"]) for c in coupons) == [
        ("poster-3-off", "redeemed"),
        ("poster-5-off", "issued"),
    ]
