"""After the demo's run: HQ's page and the stores' screens, open for a person to use, until
Ctrl-C.

For each store the demo makes what a manager would hand out: a six-digit pairing code for a
kiosk, a tablet and an exit gate (good for an hour), and the door's scan-and-go QR for phones.
It prints each page's address with its code, and HQ's with its token, and keeps the servers
running."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from aisle.demo.chain import DemoCloud, DemoStore
from devices.client import AisleClient

CODE_TTL_S = 3600


def screen_links(store: DemoStore) -> list[tuple[str, str, str]]:
    """(page, address, how to pair) for each of ``store``'s screens."""
    with AisleClient(store.base_url, store.tokens["manager"][0], timeout=10) as manager:
        codes = {
            role: manager.pairing_code(role, f"{role} (demo)", ttl_s=CODE_TTL_S)["code"]
            for role in ("kiosk", "tablet", "exit")
        }
        poster = manager.store_qr()
    return [
        ("kiosk", f"{store.base_url}/kiosk", f"pairing code {codes['kiosk']}"),
        ("tablet", f"{store.base_url}/staff", f"pairing code {codes['tablet']}"),
        ("phone", poster["url"], "the door's QR: opens paired"),
        ("exit", f"{store.base_url}/exit", f"pairing code {codes['exit']}"),
    ]


def serve_screens(
    cloud: DemoCloud,
    stores: list[DemoStore],
    plain: list[str],
    restricted: list[str],
    say: Callable[[str], None] = print,
    wait: Callable[[], None] = lambda: time.sleep(3600),
    keep: bool | None = None,
) -> None:
    """Print every store's screens and keep serving until Ctrl-C (``keep``: by default only
    when a person is at the terminal; a script running the demo gets the addresses and its
    exit status)."""
    say("")
    say("The screens (pairing codes last an hour; Ctrl-C stops the demo):")
    say(f"  HQ      {cloud.url}/hq  (sign in with the HQ token {cloud.hq_token})")
    for store in stores:
        say(f"  {store.store_id} {store.name}")
        for page, url, how in screen_links(store):
            say(f"    {page:<7} {url}  ({how})")
    say(f"  Barcodes to type or scan: {', '.join(plain[:3])} (the whole catalog is catalog.csv);")
    if restricted:
        say(f"  {restricted[0]} is age-restricted: the kiosk waits for the tablet's approval.")
    if not (sys.stdin.isatty() if keep is None else keep):
        say("  (not a terminal: the demo stops here; run it in a terminal to use the screens)")
        return
    try:
        while True:
            wait()
    except KeyboardInterrupt:
        say("stopping the demo's servers")
