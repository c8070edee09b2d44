"""The chain's earn rules and the members' tiers, on both databases: HQ sets the rules, stores
pull them by the earn_rules feed, and a member's tier follows their last twelve months' spend,
up at once and down when the spend falls away."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloud.members import ledger
from cloud.members.ledger import Origin
from cloud.members.rules import retier, retier_above_base
from tests.cloud.harness import Cloud

RULES = {
    "points_per_unit": 100,
    "category_multipliers": {"dairy": 20_000},
    "tier_multipliers": {"silver": 15_000},
    "hot_products": {"MILK1L": 5},
    "tiers": [
        {"name": "basic", "min_spend": 0},
        {"name": "silver", "min_spend": 100_000},
        {"name": "gold", "min_spend": 500_000},
    ],
}


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    return dict(body)


def test_hq_sets_the_rules_and_every_store_pulls_them(cloud: Cloud) -> None:
    assert _ok(cloud.hq("/api/v1/earn-rules"))["tiers"] == [{"name": "basic", "min_spend": 0}]
    saved = _ok(cloud.hq("/api/v1/earn-rules", method="PUT", json=RULES))
    assert saved["category_multipliers"] == {"dairy": 20_000}
    assert saved["updated_at"] == cloud.clock.now().isoformat()
    assert _ok(cloud.hq("/api/v1/earn-rules")) == saved
    store = cloud.store("S001")
    seen, cursor, _ = store.pull_all("earn_rules")
    assert seen == {"chain": saved}
    # A change reaches the store's next pull, and only the change.
    cloud.clock.advance(minutes=5)
    changed = _ok(cloud.hq("/api/v1/earn-rules", method="PUT", json={**RULES, "hot_products": {}}))
    again, _, _ = store.pull_all("earn_rules", cursor)
    assert again == {"chain": changed}


def test_bad_rules_are_refused_and_change_nothing(cloud: Cloud) -> None:
    before = _ok(cloud.hq("/api/v1/earn-rules"))
    for bad in (
        {**RULES, "tiers": [{"name": "silver", "min_spend": 10}]},  # no first tier at 0
        {**RULES, "tiers": [{"name": "basic", "min_spend": 0}, {"name": "basic", "min_spend": 9}]},
        {**RULES, "points_per_unit": 0},
        {**RULES, "category_multipliers": {"dairy": -1}},
        {**RULES, "surprise": 1},
    ):
        refused = cloud.hq("/api/v1/earn-rules", method="PUT", json=bad)
        assert refused.status_code == 422, (bad, refused.get_json())
        assert set(refused.get_json()) == {"error"}
    assert _ok(cloud.hq("/api/v1/earn-rules")) == before


def _earn(cloud: Cloud, member_id: str, spend: int, *, origin: str, days_ago: int = 0) -> None:
    with cloud.ctx.db.write() as uow:
        now = cloud.clock.now()
        ledger.earn(
            uow.session,
            member_id,
            points=spend // 100,
            spend=spend,
            origin=Origin("sale", origin),
            store_id="S001",
            at=now - timedelta(days=days_ago),
            expiry=timedelta(days=365),
            now=now,
        )
        retier(uow.session, member_id, now=now)
        uow.commit()


def _tier(cloud: Cloud, member_id: str) -> str:
    return str(_ok(cloud.hq(f"/api/v1/members/{member_id}"))["tier"])


def test_a_tier_follows_the_last_twelve_months_spend(cloud: Cloud) -> None:
    _ok(cloud.hq("/api/v1/earn-rules", method="PUT", json=RULES))
    token = cloud.channel_token()
    member = _ok(
        cloud.channel(token, "/members", method="POST", key="k1", json={"phone": "13800138000"}),
        201,
    )["id"]
    # 400 days ago counts for nothing now; 99,999 this year is still basic; one more is silver.
    _earn(cloud, member, 900_000, origin="old", days_ago=400)
    _earn(cloud, member, 99_999, origin="s1")
    assert _tier(cloud, member) == "basic"
    _earn(cloud, member, 1, origin="s2")
    assert _tier(cloud, member) == "silver"
    # Eleven months on, still silver; a year and a day after, the daily job moves them down.
    cloud.clock.advance(days=330)
    with cloud.ctx.db.write() as uow:
        assert member in retier_above_base(uow.session, now=cloud.clock.now())
        uow.commit()
    assert _tier(cloud, member) == "silver"
    cloud.clock.advance(days=36)
    with cloud.ctx.db.write() as uow:
        retier_above_base(uow.session, now=cloud.clock.now())
        uow.commit()
    assert _tier(cloud, member) == "basic"
