"""The staff tablet's screen with a kiosk's in a real browser (headless Chromium driven by
Playwright) against a real ``aisle edge serve``: a bottle of baijiu holds the kiosk's payment
until the tablet, driven by the keyboard alone, approves the age check; the kiosk's call for
assistance reaches the tablet and is answered; the tablet looks up and receives stock and
refunds an item by the receipt's number; the link to HQ and the day's figures are shown."""

from __future__ import annotations

import re
from typing import Any

from tests.builders import BAIJIU, MILK
from tests.functional.conftest import Live, aisle
from tests.functional.screens import SHOTS, new_page, pair_page, tab_to, wedge


def _on_hand(live: Live, sku: str) -> int:
    return int(live.ok(live.get(f"/api/v1/stock/{sku}", "manager"))["on_hand"])


def test_the_tablet_approves_answers_restocks_and_refunds(live: Live, browser: Any) -> None:
    tablet_context, tablet, tablet_errors = new_page(browser, 1280, 1400)
    pair_page(tablet, live, "/staff", "tablet")
    tablet.locator("#desk").wait_for(state="visible")
    tablet.locator("#sync dd").first.wait_for()
    assert "not enrolled" in tablet.locator("#sync").inner_text()
    assert tablet.locator("#devices-box").is_hidden()  # a manager's part

    kiosk_context, kiosk, kiosk_errors = new_page(browser)
    pair_page(kiosk, live, "/kiosk", "kiosk")
    kiosk.locator("#till").wait_for(state="visible")
    for product in (MILK, BAIJIU):
        wedge(kiosk, product["barcodes"].split("|")[0])
    kiosk.locator("#age-check").wait_for(state="visible")
    assert kiosk.get_by_role("button", name="Pay by card").is_disabled()
    kiosk.screenshot(path=str(SHOTS / "kiosk-age-check.png"))

    # The bottle reaches the tablet's board; the attendant approves with the keyboard alone.
    tablet.locator("#approvals li").filter(has_text=BAIJIU["name"]).wait_for()
    tablet.screenshot(path=str(SHOTS / "staff-board.png"))
    tablet.locator("body").focus()
    tab_to(tablet, "Approve")
    tablet.keyboard.press("Enter")
    tablet.locator("#message").filter(has_text="Approved").wait_for()
    tablet.locator("#approvals li").first.wait_for(state="detached")

    # The kiosk hears it at its next look, and pays.
    kiosk.locator("#age-check").wait_for(state="hidden")
    kiosk.get_by_role("button", name="Pay by card").click()
    kiosk.locator("#receipt-box").wait_for(state="visible")
    receipt = kiosk.locator("#receipt").inner_text()
    found = re.search(r"\b[A-Z0-9]+-\d{6}\b", receipt)
    assert found, receipt
    number = found.group(0)

    # A call for assistance: on the board until answered.
    kiosk.get_by_role("button", name="Call for assistance").click()
    kiosk.locator("#help-coming").wait_for(state="visible")
    tablet.locator("#calls li").filter(has_text="kiosk 7").wait_for()
    tablet.get_by_role("button", name="Answered").click()
    tablet.locator("#board-empty").wait_for(state="visible")
    kiosk.locator("#help-coming").wait_for(state="hidden")

    # Stock: look up milk, receive a case of twelve.
    before = _on_hand(live, MILK["sku"])
    tablet.get_by_label("SKU").fill(MILK["sku"])
    tablet.get_by_role("button", name="Look up").click()
    tablet.locator("#stock-shown").filter(has_text=f"{before}").wait_for()
    tablet.get_by_label("Quantity (+ in, - out)").fill("12")
    tablet.get_by_label("Reason").first.fill("delivery")
    tablet.get_by_role("button", name="Record movement").click()
    tablet.locator("#stock-shown").filter(has_text=f"{before + 12}").wait_for()
    assert _on_hand(live, MILK["sku"]) == before + 12

    # A return by the receipt's number: the milk comes back.
    tablet.get_by_label("Receipt number").fill(number)
    tablet.get_by_role("button", name="Find sale").click()
    tablet.get_by_label(f"Quantity to return: {MILK['name']}").fill("1")
    tablet.locator("#return-reason").fill("damaged")
    tablet.get_by_role("button", name="Refund").click()
    tablet.locator("#message").filter(has_text="Refunded").wait_for()
    tablet.locator("#day dd").filter(has_text="1 · ").wait_for()
    tablet.screenshot(path=str(SHOTS / "staff-desk.png"), full_page=True)
    assert _on_hand(live, MILK["sku"]) == before + 12 + 1
    report = live.ok(live.get("/api/v1/reports/day", "manager"))
    assert (report["sales"], report["returns"]) == (1, 1)
    assert tablet_errors == [] and kiosk_errors == []
    kiosk_context.close()
    tablet_context.close()


def test_a_manager_signs_in_on_the_tablet_pairs_and_revokes_devices(
    live: Live, browser: Any
) -> None:
    aisle(
        "edge",
        "staff",
        "add",
        "M7",
        "--name",
        "Zhang Min",
        "--role",
        "manager",
        "--pin",
        "135790",
        "--config",
        str(live.data_dir / "edge.toml"),
    )
    context, page, errors = new_page(browser, 1280, 1400)
    pair_page(page, live, "/staff", "tablet")
    page.locator("#desk").wait_for(state="visible")
    assert page.locator("#devices-box").is_hidden()
    # A wrong PIN is refused and said; the right one signs the manager in.
    page.get_by_label("Staff id").fill("M7")
    page.get_by_label("PIN").fill("000000")
    page.get_by_role("button", name="Sign in", exact=False).first.click()
    page.locator("#message").filter(has_text="staff_sign_in_failed").wait_for()
    page.get_by_label("PIN").fill("135790")
    page.get_by_role("button", name="Sign in", exact=False).first.click()
    page.locator("#staff-shown").filter(has_text="Zhang Min").wait_for()
    assert "aisle_staff" not in page.evaluate("document.cookie")  # HttpOnly
    page.locator("#devices-box").wait_for(state="visible")
    page.get_by_label("New device's role").select_option("exit")
    page.locator("#code-name").fill("north door")
    page.get_by_role("button", name="Make a pairing code").click()
    shown = page.locator("#code-shown")
    shown.filter(has_text="exit").wait_for()
    code = shown.inner_text().split()[0]
    assert code.isdigit() and len(code) == 6
    paired = live.post("/api/v1/pairing", json={"code": code})
    assert paired.status_code == 201, paired.text
    page.reload()
    page.get_by_label("Name of north door").fill("north gate")
    page.get_by_role("button", name="Rename north door").click()
    page.locator("#message").filter(has_text="Renamed").wait_for()
    page.get_by_role("button", name="Revoke north gate").click()
    page.locator("#devices tr").filter(has_text="revoked").get_by_label(
        "Name of north gate"
    ).wait_for()
    token = paired.json()["token"]
    refused = live.http.get(
        f"{live.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert refused.status_code == 401
    # Shoppers' phones are counted, not listed (the live store has its paired test phones).
    assert page.locator("#devices tr").filter(has_text="phone").count() == 0
    counted = live.ok(live.get("/api/v1/devices", "manager"))["phones_active"]
    assert counted >= 1
    page.locator("#phones-active").filter(has_text=f"in use: {counted}").wait_for()
    page.screenshot(path=str(SHOTS / "staff-manager.png"), full_page=True)
    # Signed out, the tablet is a tablet again.
    page.get_by_role("button", name="Sign out").click()
    page.locator("#devices-box").wait_for(state="hidden")
    assert errors == []
    context.close()
