"""The kiosk's and the exit's screens in a real browser (headless Chromium driven by
Playwright) against a real ``aisle edge serve``: a manager's code pairs the kiosk, a scanner's
keystrokes (digits and Enter) fill the cart, a refusal is shown, the card pays and the receipt
shows. At the exit, a phone's scan-and-go pass typed in by the gate's scanner passes once.
Screenshots of each step go to ``tests/screenshots/``.

The page holds no token: pairing sets an HttpOnly cookie, and a write from a page without the
CSRF header is refused."""

from __future__ import annotations

import sqlite3

import requests

from tests.builders import MILK, RICE, SOAP
from tests.functional.conftest import Live
from tests.functional.screens import SHOTS, pair_page, pairing_code, wedge


def test_a_kiosk_pairs_scans_and_pays(live: Live, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        (kiosk_carts,) = conn.execute(
            "SELECT count(*) FROM carts WHERE channel = 'kiosk'"
        ).fetchone()
    pair_page(page, live, "/kiosk", "kiosk", shot="kiosk-pairing.png")
    page.locator("#till").wait_for(state="visible")
    # The token is in an HttpOnly cookie the page's scripts cannot read.
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["aisle_device"]["httpOnly"] is True
    assert cookies["aisle_device"]["sameSite"] == "Strict"
    assert "aisle_device" not in page.evaluate("document.cookie")
    # A member shown before the first scan opens the cart for them; one the store does not
    # know (this store is not enrolled with a cloud) opens nothing, and the page says so.
    page.get_by_label("Member phone or code").fill("13912340001")
    page.get_by_role("button", name="会员 Member", exact=True).click()
    page.locator("#message").filter(has_text="unknown_member").wait_for()
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM carts WHERE channel = 'kiosk'").fetchone() == (
            kiosk_carts,
        )
    page.get_by_label("Scan or type a barcode").focus()
    # Three scans by keyboard wedge, typed one after another as a scanner does (the page queues
    # them; the field keeps the focus). No wait_for_function: its polling evaluates a string,
    # which the page's CSP forbids.
    for product in (MILK, RICE, MILK, SOAP):
        wedge(page, product["barcodes"].split("|")[0])
    rows = page.locator("#lines tbody tr")
    rows.nth(2).wait_for()
    texts = rows.all_inner_texts()
    assert len(texts) == 3, texts
    assert any(MILK["name"] in t and "\t2\t" in t for t in texts), texts
    # A phone the store does not know (this store is not enrolled with a cloud): the page says so.
    page.get_by_label("Member phone or code").fill("13912340000")
    page.get_by_role("button", name="会员 Member", exact=True).click()
    page.locator("#message").filter(has_text="unknown_member").wait_for()
    page.screenshot(path=str(SHOTS / "kiosk-cart.png"))
    page.get_by_role("button", name="Pay by card").click()
    page.locator("#receipt-box").wait_for(state="visible")
    receipt = page.locator("#receipt").inner_text()
    assert MILK["name"][:10] in receipt
    page.screenshot(path=str(SHOTS / "kiosk-receipt.png"))
    assert errors == []
    # The sale is the store's: its day report counts it.
    report = live.ok(live.get("/api/v1/reports/day", "manager"))
    assert report["sales"] >= 1
    context.close()


def test_the_exit_checks_a_phones_pass_once(live: Live, browser: object) -> None:
    cart = live.ok(live.post("/api/v1/carts", "phone", json={"channel": "scan_to_buy"}), 201)
    cart = live.ok(
        live.post(f"/api/v1/carts/{cart['id']}/lines", "phone", json={"barcode": RICE["barcodes"]})
    )
    paid = live.ok(
        live.post(
            f"/api/v1/carts/{cart['id']}/checkout",
            "phone",
            json={"payments": [{"method": "card", "amount": cart["due"]}]},
            headers={"Idempotency-Key": "exit-screen-1"},
        ),
        201,
    )
    token = paid["exit_pass"]["token"]
    context = browser.new_context(viewport={"width": 1024, "height": 700})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    pair_page(page, live, "/exit", "exit")
    page.locator("#gate").wait_for(state="visible")
    wedge(page, token)
    verdict = page.locator("#verdict")
    verdict.wait_for(state="visible")
    assert verdict.get_attribute("data-kind") in ("valid", "audit")
    assert paid["sale"]["number"] in page.locator("#verdict-detail").inner_text()
    page.screenshot(path=str(SHOTS / "exit-valid.png"))
    # The same pass again: used.
    wedge(page, token)
    page.locator("#verdict[data-kind='invalid']").wait_for()
    page.screenshot(path=str(SHOTS / "exit-used.png"))
    assert errors == []
    context.close()


def test_a_pages_write_needs_its_csrf_token(live: Live) -> None:
    session = requests.Session()
    paired = session.post(
        f"{live.base_url}/api/v1/pairing",
        json={"code": pairing_code(live), "cookie": True},
        timeout=10,
    )
    assert paired.status_code == 201, paired.text
    assert paired.json()["token"] is None
    assert "HttpOnly" in paired.headers["Set-Cookie"]
    # Reads go with the cookie alone; a write without the CSRF header is refused.
    assert session.get(f"{live.base_url}/api/v1/me", timeout=10).json()["role"] == "kiosk"
    refused = session.post(f"{live.base_url}/api/v1/carts", json={"channel": "kiosk"}, timeout=10)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "csrf_failed")
    forged = session.post(
        f"{live.base_url}/api/v1/carts",
        json={"channel": "kiosk"},
        headers={"X-CSRF-Token": "guessed"},
        timeout=10,
    )
    assert forged.status_code == 403
    made = session.post(
        f"{live.base_url}/api/v1/carts",
        json={"channel": "kiosk"},
        headers={"X-CSRF-Token": session.cookies["aisle_csrf"]},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    # Every answer carries the security headers; the page itself holds no token.
    page = session.get(f"{live.base_url}/kiosk", timeout=10)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert session.cookies["aisle_device"] not in page.text
