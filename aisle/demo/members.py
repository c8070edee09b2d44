"""The demo's member: one shopper with one balance across both stores and the cloud.

The shopper signs up at the store that has lost its link to the cloud and earns points there;
once the link is back, they shop at the other store, which finds them at the cloud by phone,
and pay part of the basket in points under a cloud hold. At the end the cloud, both stores and
the ledger must agree on one balance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from aisle.demo.chain import CATCH_UP_TIMEOUT_S, DemoCloud, DemoStore, pay_cash, wait_until_synced
from aisle.demo.relay import Relay
from devices.client import AisleClient

PHONE = "13800138000"


@dataclass
class MemberOutcome:
    member_id: str
    earned_offline: int
    spent_online: int
    earned_online: int
    cloud_balance: int | None
    ledger_sum: int | None
    store_balances: dict[str, int]
    #: The member's sales at each store (their totals), which the stores' day reports count.
    sales: dict[str, list[int]]

    @property
    def expected(self) -> int:
        return self.earned_offline - self.spent_online + self.earned_online

    def problems(self) -> list[str]:
        seen = {self.cloud_balance, self.ledger_sum, *self.store_balances.values()}
        if seen != {self.expected}:
            return [
                f"member balances disagree: expected {self.expected}, cloud "
                f"{self.cloud_balance}, ledger {self.ledger_sum}, stores {self.store_balances}"
            ]
        return []


def _basket(kiosk: AisleClient, barcodes: Sequence[str], items: int) -> dict[str, Any]:
    cart = kiosk.create_cart("kiosk")
    for code in barcodes[:items]:
        cart = kiosk.add_line(cart["id"], code)
    return cart


def _cloud(cloud: DemoCloud, path: str) -> dict[str, Any] | None:
    answer = requests.get(
        cloud.url + path, headers={"Authorization": f"Bearer {cloud.hq_token}"}, timeout=10
    )
    return answer.json() if answer.status_code == 200 else None


def member_journey(
    stores: Sequence[DemoStore], cloud: DemoCloud, relay: Relay, barcodes: Sequence[str]
) -> MemberOutcome:
    """One member across both stores (see the module docstring); the last store is the one
    whose link ``relay`` cuts."""
    online_store, cut_store = stores[0], stores[-1]
    relay.cut()
    with AisleClient(cut_store.base_url, cut_store.tokens["kiosk"][0], timeout=10) as kiosk:
        member = kiosk.sign_up_member(PHONE, "Demo Shopper")
        cart = kiosk.attach_member(_basket(kiosk, barcodes, 6)["id"], PHONE)
        sale = pay_cash(kiosk, cart)["sale"]
        totals = {cut_store.store_id: [int(sale["total"])]}
        earned_offline = int(sale["points"]["earned"])
    print(
        f"  member {member['masked_phone']}: signed up at {cut_store.store_id} while it was "
        f"offline (provisional: {member['provisional']}), earned {earned_offline} points there"
    )
    relay.restore()
    wait_until_synced([cut_store])
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _cloud(cloud, f"/api/v1/members/{member['id']}")
        if found is not None and found["balance"] == earned_offline:
            break
        time.sleep(0.5)
    with AisleClient(online_store.base_url, online_store.tokens["kiosk"][0], timeout=10) as kiosk:
        cart = kiosk.attach_member(_basket(kiosk, barcodes[6:], 4)["id"], PHONE)
        # Found by phone through the cloud; to spend points they show the code in their app.
        cart = kiosk.attach_member(cart["id"], str(member["code"]))
        spend = min(int(cart["member"]["balance"]), int(cart["totals"]["total"])) // 2
        cart = kiosk.spend_points(cart["id"], spend)
        sale = pay_cash(kiosk, cart)["sale"]
        totals.setdefault(online_store.store_id, []).append(int(sale["total"]))
        earned_online = int(sale["points"]["earned"])
    print(
        f"  member found at {online_store.store_id} by phone through the cloud; showed their "
        f"member code and paid {spend} points under a cloud hold, earned {earned_online}"
    )
    wait_until_synced([online_store])
    expected = earned_offline - spend + earned_online
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    found = None
    while time.monotonic() < deadline:
        found = _cloud(cloud, f"/api/v1/members/{member['id']}")
        if found is not None and found["balance"] == expected:
            break
        time.sleep(0.5)
    ledger = _cloud(cloud, f"/api/v1/members/{member['id']}/ledger")
    balances: dict[str, int] = {}
    while True:  # each store finds the member as the cloud has them, once its link is back
        for store in stores:
            with AisleClient(store.base_url, store.tokens["kiosk"][0], timeout=10) as kiosk:
                seen = kiosk.attach_member(kiosk.create_cart("kiosk")["id"], PHONE)
                balances[store.store_id] = int(seen["member"]["balance"])
        if set(balances.values()) == {expected} or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    return MemberOutcome(
        member_id=str(member["id"]),
        earned_offline=earned_offline,
        spent_online=spend,
        earned_online=earned_online,
        cloud_balance=None if found is None else int(found["balance"]),
        ledger_sum=None if ledger is None else sum(int(e["points"]) for e in ledger["entries"]),
        store_balances=balances,
        sales=totals,
    )
