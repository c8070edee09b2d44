"""The demo's coupons: a poster's QR, a coupon used offline, the same coupon at two stores, and a
public code within a store's quota.

HQ imports two campaigns before the stores start, so both stores pull them. A shopper's phone
at the first store scans the personal campaign's poster QR and claims a coupon (online). Then
both stores lose their link to the cloud: the coupon works at a kiosk of the first store and is
refused there a second time; the second store, which cannot know, accepts it too. Meanwhile the
public code is taken at the second store up to its quota, and refused beyond. When the links
come back, the cloud must hold exactly one double-use exception for the coupon, and must have
handed the second store more of the public code's cap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from aisle.demo.chain import CATCH_UP_TIMEOUT_S, DemoCloud, DemoStore, pay_cash, wait_until_synced
from aisle.demo.processes import aisle
from aisle.demo.relay import Relay
from devices.client import AisleClient, AisleHTTPError
from shared.money import format_amount

PHONE = "13900139000"
PERSONAL = "demo-5-off"
PUBLIC = "demo-public"
PUBLIC_CODE = "DEMO20"
PUBLIC_CAP = 8  # two stores: two each at first, the rest for whoever uses theirs


@dataclass
class CouponOutcome:
    #: The coupon sales' totals at each store, which the stores' day reports count.
    sales: dict[str, list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def write_campaigns(path: Path, now: datetime) -> Path:
    """The demo's campaigns as HQ's import file: a personal coupon (5.00 off a basket of 10.00
    or more, one per member) and a public code with a cap of eight."""
    dates = {
        "starts": (now - timedelta(days=1)).isoformat(),
        "ends": (now + timedelta(days=30)).isoformat(),
    }
    campaigns = [
        {
            "id": PERSONAL,
            "name": "5 off 10 (poster)",
            "offer": {"kind": "amount_off", "amount": 500, "min_spend": 1000},
            **dates,
        },
        {
            "id": PUBLIC,
            "name": "2 off with DEMO20",
            "offer": {"kind": "amount_off", "amount": 200, "min_spend": 1000},
            "public_code": PUBLIC_CODE,
            "cap": PUBLIC_CAP,
            **dates,
        },
    ]
    path.write_text(json.dumps({"campaigns": campaigns}, ensure_ascii=False, indent=2))
    return path


def _hq(cloud: DemoCloud, path: str) -> dict[str, Any]:
    answer = requests.get(
        cloud.url + path, headers={"Authorization": f"Bearer {cloud.hq_token}"}, timeout=10
    )
    answer.raise_for_status()
    return dict(answer.json())


def _basket(kiosk: AisleClient, barcodes: Sequence[str], member: str | None) -> dict[str, Any]:
    cart = kiosk.create_cart("kiosk")
    for code in barcodes:
        cart = kiosk.add_line(cart["id"], code)
        if cart["totals"]["total"] >= 2000:
            break
    if member is not None:
        cart = kiosk.attach_member(cart["id"], member)
    return cart


def _refusal(kiosk: AisleClient, cart_id: str, code: str) -> AisleHTTPError | None:
    try:
        kiosk.apply_coupon(cart_id, code)
    except AisleHTTPError as exc:
        return exc
    return None


def _money(amount: int, currency: str) -> str:
    return f"{format_amount(amount, currency)} {currency}"


def coupon_journey(
    stores: Sequence[DemoStore],
    cloud: DemoCloud,
    relays: Sequence[Relay],
    barcodes: Sequence[str],
    root: Path,
) -> CouponOutcome:
    """See the module docstring; ``relays`` are the stores' links, in the stores' order."""
    out = CouponOutcome()
    first, second = stores[0], stores[-1]
    poster = _hq(cloud, f"/api/v1/campaigns/{PERSONAL}/claim")
    (root / "poster.svg").write_text(poster["qr_svg"])
    with AisleClient(first.base_url, first.tokens["phone"][0], timeout=10) as phone:
        member = phone.sign_up_member(PHONE, "Coupon Shopper")
        coupon = phone.claim_coupon(str(member["id"]), poster["claim"])
    print(
        f"  a phone at {first.store_id} scanned the poster's QR ({root / 'poster.svg'}): coupon "
        f"{coupon['typed_id']} for member {member['masked_phone']}"
    )
    # The second store sees the member once while online (it keeps the members it needs).
    with AisleClient(second.base_url, second.tokens["kiosk"][0], timeout=10) as kiosk:
        cart_id = kiosk.create_cart("kiosk")["id"]
        for attempt in range(4):
            try:
                kiosk.attach_member(cart_id, PHONE)
                break
            except AisleHTTPError as exc:
                # The store's first lookup at the cloud may miss its short deadline (a cold
                # worker); a shopper would show the phone number again.
                if exc.status != 404 or attempt == 3:
                    raise
                time.sleep(1.0)
    for relay in relays:
        relay.cut()
    try:
        with AisleClient(first.base_url, first.tokens["kiosk"][0], timeout=10) as kiosk:
            cart = kiosk.apply_coupon(_basket(kiosk, barcodes, PHONE)["id"], coupon["code"])
            [on] = cart["coupons"]
            sale = pay_cash(kiosk, cart)["sale"]
            out.sales.setdefault(first.store_id, []).append(int(sale["total"]))
            currency = str(sale["currency"])
            print(
                f"  both stores offline: {first.store_id}'s kiosk took the coupon off "
                f"({_money(int(on['amount']), currency)}, reserved at the cloud: "
                f"{on['reserved']}) and sold"
            )
            again = _refusal(kiosk, _basket(kiosk, barcodes, PHONE)["id"], coupon["code"])
            print(f"  the same coupon again at {first.store_id}: {again and again.code}")
            if again is None or again.code != "coupon_used":
                out.problems.append(f"the coupon's second use at {first.store_id}: {again}")
        with AisleClient(second.base_url, second.tokens["kiosk"][0], timeout=10) as kiosk:
            cart = kiosk.apply_coupon(_basket(kiosk, barcodes, PHONE)["id"], coupon["code"])
            sale = pay_cash(kiosk, cart)["sale"]
            out.sales.setdefault(second.store_id, []).append(int(sale["total"]))
            print(
                f"  {second.store_id}, offline too, cannot know: it took the same coupon "
                f"({_money(int(cart['coupons'][0]['amount']), currency)})"
            )
            taken = 0
            refused: AisleHTTPError | None = None
            while refused is None and taken < PUBLIC_CAP:
                cart = _basket(kiosk, barcodes, None)
                refused = _refusal(kiosk, cart["id"], PUBLIC_CODE.lower())
                if refused is None:
                    sale = pay_cash(kiosk, kiosk.get_cart(cart["id"]))["sale"]
                    out.sales[second.store_id].append(int(sale["total"]))
                    taken += 1
            quota = None if refused is None else refused.details.get("quota")
            print(
                f"  public code {PUBLIC_CODE} at {second.store_id}, offline: taken {taken} "
                f"times, then {refused and refused.code} (its quota: {quota})"
            )
            if refused is None or refused.code != "coupon_quota_reached" or taken != quota:
                out.problems.append(f"the public code at {second.store_id}: {taken}, {refused}")
    finally:
        for relay in relays:
            relay.restore()
    wait_until_synced(stores)
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    found: list[dict[str, Any]] = []
    raised: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = _hq(cloud, "/api/v1/exceptions?kind=coupon_double_use")["exceptions"]
        raised = {
            q["store_id"]: q["quota"]
            for q in _hq(cloud, f"/api/v1/campaigns/{PUBLIC}/quotas")["quotas"]
        }
        if found and raised.get(second.store_id, 0) > (quota or 0):
            break
        time.sleep(0.5)
    mine = [e for e in found if e["subject_id"] == coupon["id"]]
    for e in mine:
        print(
            f"  cloud: {e['kind']} of coupon {coupon['typed_id']} at {e['store_id']}, amount at "
            f"risk {_money(int(e['amount']), str(e['unit']))} (first used at "
            f"{e['details']['first_use']['store_id']})"
        )
    if len(mine) != 1:
        out.problems.append(f"{len(mine)} double-use exceptions for the coupon, not one")
    print(f"  cloud: quotas of {PUBLIC_CODE} now {raised} of a cap of {PUBLIC_CAP}")
    if raised.get(second.store_id, 0) <= (quota or 0) or sum(raised.values()) > PUBLIC_CAP:
        out.problems.append(f"the public code's quotas after the sales: {raised}")
    return out


def import_campaigns(root: Path, config: str) -> str:
    """HQ's import of the demo's campaigns; what the command said."""
    path = write_campaigns(root / "campaigns.json", datetime.now(UTC))
    return "; ".join(aisle("cloud", "campaigns", "import", str(path), "--config", config))
