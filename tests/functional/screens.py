"""What the screen tests share: a manager's pairing code, a USB scanner's keystrokes, a page
paired as a device, keyboard-only moves, and where screenshots go (the ``browser`` fixture,
Debian's Chromium driven by Playwright, is in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.functional.conftest import Live

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pairing_code(live: Live, role: str = "kiosk") -> str:
    made = live.ok(
        live.post("/api/v1/pairing-codes", "manager", json={"role": role, "name": f"{role} 7"}),
        201,
    )
    return str(made["code"])


def wedge(page: Any, barcode: str) -> None:
    """What a USB scanner does: type the digits into the focused field, then Enter."""
    page.keyboard.type(barcode, delay=5)
    page.keyboard.press("Enter")


def pair_page(page: Any, live: Live, path: str, role: str, shot: str | None = None) -> None:
    """Open ``path`` and pair it with a manager's code for ``role`` (``shot``: a screenshot of
    the pairing form, filled in)."""
    page.goto(f"{live.base_url}{path}")
    page.get_by_label("The manager's six-digit code").fill(pairing_code(live, role))
    if shot is not None:
        page.screenshot(path=str(SHOTS / shot))
    page.get_by_role("button", name="Pair").click()


def new_page(browser: Any, width: int = 1280, height: int = 900) -> tuple[Any, Any, list[str]]:
    """A page in a context of its own (its own cookies: its own device), and the errors its
    scripts raise."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def tab_to(page: Any, name: str, most: int = 80) -> None:
    """Press Tab until the focused control's text holds ``name`` (keyboard only)."""
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e && e.matches('button, input, select, a, textarea') ? e.innerText : ''; })()"
        )
        if name in (focused or ""):
            return
    raise AssertionError(f"no control holding {name!r} is reached by Tab")
