"""Scan and go in a real browser (headless Chromium driven by Playwright) against a real
``aisle edge serve``: the tablet makes the door's QR, a phone opens it and joins, types two
codes (no camera here), pays in the app and shows its exit pass, which the exit's screen takes
once. The join token never stays in the phone's address bar."""

from __future__ import annotations

from typing import Any

from tests.builders import MILK, RICE
from tests.functional.conftest import Live
from tests.functional.screens import SHOTS, new_page, pair_page, wedge


def test_a_phone_joins_by_the_door_qr_scans_pays_and_leaves(live: Live, browser: Any) -> None:
    tablet_context, tablet, tablet_errors = new_page(browser, 1280, 1400)
    pair_page(tablet, live, "/staff", "tablet")
    tablet.locator("#desk").wait_for(state="visible")
    tablet.get_by_role("button", name="Make the door's QR").click()
    link = tablet.locator("#poster-link")
    link.wait_for(state="visible")
    url = link.get_attribute("href")
    assert url is not None and "/go#join=" in url
    assert tablet.locator("#poster-qr svg").bounding_box()["width"] > 100

    phone_context, phone, phone_errors = new_page(browser, 412, 915)
    phone.goto(url)
    phone.locator("#shop").wait_for(state="visible")
    assert "#join=" not in phone.url
    cookies = {c["name"]: c for c in phone_context.cookies()}
    assert cookies["aisle_device"]["httpOnly"] is True
    me = phone.evaluate("fetch('/api/v1/me').then(r => r.json())")
    assert me["role"] == "phone"
    for product in (MILK, RICE):
        wedge(phone, product["barcodes"].split("|")[0])
    phone.locator("#lines tbody tr").nth(1).wait_for()
    phone.screenshot(path=str(SHOTS / "go-cart.png"))
    phone.get_by_role("button", name="Pay in the app").click()
    phone.locator("#pass-box").wait_for(state="visible")
    assert phone.locator("#pass-qr svg").bounding_box()["width"] > 100  # drawn, not just there
    token = phone.locator("#pass-token").inner_text().strip()
    phone.screenshot(path=str(SHOTS / "go-exit-pass.png"), full_page=True)

    gate_context, gate, gate_errors = new_page(browser, 1024, 700)
    pair_page(gate, live, "/exit", "exit")
    gate.locator("#gate").wait_for(state="visible")
    wedge(gate, token)
    gate.locator("#verdict[data-kind='valid'], #verdict[data-kind='audit']").wait_for()
    wedge(gate, token)
    gate.locator("#verdict[data-kind='invalid']").wait_for()
    assert "used" in gate.locator("#verdict-detail").inner_text()
    assert tablet_errors == [] and phone_errors == [] and gate_errors == []
    for context in (gate_context, phone_context, tablet_context):
        context.close()
