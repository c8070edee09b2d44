"""Coupons at the cloud on both databases: campaigns written and pulled, coupons issued and
claimed within their limits with codes a store can check offline, one reservation of a coupon
among many asking at once, a coupon redeemed at two stores offline raising exactly one
exception, a full return giving the coupon back, and a campaign's budget."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from cloud.members import registry
from shared import coupon_codes
from shared.ids import new_id
from sync import contract
from sync.keys import load_public_key_b64
from tests.cloud.harness import T0, Cloud, StoreClient, return_event, sale_event

TEN_OFF_50 = {
    "id": "nov-10-off-50",
    "name": "10 off 50",
    "offer": {"kind": "amount_off", "stage": "coupon", "amount": 1000, "min_spend": 5000},
    "starts": (T0 - timedelta(days=1)).isoformat(),
    "ends": (T0 + timedelta(days=30)).isoformat(),
}


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    return dict(body)


def _error(response: Any, status: int) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    return dict(body["error"])


def _put(cloud: Cloud, *campaigns: dict[str, Any]) -> Any:
    return cloud.hq("/api/v1/campaigns", method="PUT", json={"campaigns": list(campaigns)})


def _member(cloud: Cloud, phone: str) -> str:
    with cloud.ctx.db.write() as uow:
        signed = registry.register(
            uow.session,
            cloud.ctx.members_keyring,
            registry.SignUp(phone=phone, store_id="S001"),
            region="CN",
            now=cloud.clock.now(),
        )
        uow.commit()
    return signed.member.id


def _issue(cloud: Cloud, campaign_id: str, member_id: str) -> Any:
    return cloud.hq(
        f"/api/v1/campaigns/{campaign_id}/coupons", method="POST", json={"member_id": member_id}
    )


def _redeeming(
    seq: int, store_id: str, coupon: dict[str, Any], amount: int, reservation: str | None = None
) -> dict[str, Any]:
    """A sale of ``store_id`` that redeemed ``coupon`` for ``amount``."""
    event = sale_event(seq, store_id)
    event["payload"]["sale"]["coupons"] = [
        {
            "coupon_id": coupon["id"],
            "campaign_id": coupon["campaign_id"],
            "amount": amount,
            "reservation_id": reservation,
        }
    ]
    return event


def _pushed(store: StoreClient, events: list[dict[str, Any]]) -> None:
    answer = _ok(store.push(events))
    assert answer.get("quarantined", []) == [], answer


def _exceptions(cloud: Cloud) -> list[dict[str, Any]]:
    found = _ok(cloud.hq("/api/v1/exceptions?kind=coupon_double_use"))
    return list(found["exceptions"])


def test_hq_writes_campaigns_and_every_store_pulls_them(cloud: Cloud) -> None:
    second = {**TEN_OFF_50, "id": "vip-20pc", "name": "VIP 20%"}
    second["offer"] = {"kind": "percent_off", "stage": "coupon", "percent_bp": 2000}
    saved = _ok(_put(cloud, TEN_OFF_50, second))["campaigns"]
    assert [(c["id"], c["number"]) for c in saved] == [("nov-10-off-50", 1), ("vip-20pc", 2)]
    assert saved[0]["offer"]["id"] == "nov-10-off-50"  # the offer goes by the campaign's id
    # Written again, a campaign keeps its number (codes already issued name it).
    again = _ok(_put(cloud, {**second, "name": "VIP 20% off"}))["campaigns"]
    assert again[0]["number"] == 2
    pulled, _, _ = cloud.store("S001").pull_all("coupon_campaigns")
    assert {k: (v["number"], v["name"]) for k, v in pulled.items()} == {
        "nov-10-off-50": (1, "10 off 50"),
        "vip-20pc": (2, "VIP 20% off"),
    }
    before = _ok(cloud.hq("/api/v1/campaigns"))
    for bad in (
        {**TEN_OFF_50, "offer": {**TEN_OFF_50["offer"], "stage": "line"}},
        {**TEN_OFF_50, "ends": TEN_OFF_50["starts"]},
        {**TEN_OFF_50, "id": "Has Spaces"},
        {**TEN_OFF_50, "offer": {"kind": "amount_off", "amount": 0}},
    ):
        error = _error(_put(cloud, bad), 422)
        assert error["code"] == "validation_error", error
    assert _ok(cloud.hq("/api/v1/campaigns")) == before


def test_coupons_are_issued_within_their_limits_with_codes_a_store_checks(cloud: Cloud) -> None:
    _ok(_put(cloud, {**TEN_OFF_50, "per_member_limit": 1, "cap": 2}))
    store = cloud.store("S001")
    ann, bo, cy = (_member(cloud, p) for p in ("13800000001", "13800000002", "13800000003"))
    coupon = _ok(_issue(cloud, TEN_OFF_50["id"], ann), 201)
    assert coupon["status"] == "issued" and coupon["member_id"] == ann
    # The code verifies with the cloud's public key as the store pinned it, and names the
    # campaign, the member and the dates.
    said = coupon_codes.verify(load_public_key_b64(store.cloud_public_key), coupon["code"])
    assert said.coupon_id == coupon["id"] and said.campaign_number == 1
    assert said.for_member(ann) and not said.for_member(bo)
    assert said.valid_until == T0 + timedelta(days=30)
    # One each: the member's limit.
    limit = _error(_issue(cloud, TEN_OFF_50["id"], ann), 409)
    assert limit["code"] == "coupon_member_limit" and limit["details"] == {"limit": 1, "held": 1}
    # Bo claims one through the store (a claim QR scanned on Bo's phone).
    claimed = _ok(
        store.call(
            "POST", f"/api/v1/store/members/{bo}/coupons", {"campaign_id": TEN_OFF_50["id"]}
        ),
        201,
    )
    assert claimed["member_id"] == bo
    # Two issued: the campaign's cap.
    assert _error(_issue(cloud, TEN_OFF_50["id"], cy), 409)["code"] == "coupon_cap_reached"
    # A typed id, however typed, finds the coupon and its code.
    typed = coupon_codes.show_id(coupon["id"]).lower()
    found = _ok(store.call("GET", f"/api/v1/store/coupons/{typed}"))
    assert found["code"] == coupon["code"]
    assert _error(store.call("GET", "/api/v1/store/coupons/0000000000000000"), 404)["code"] == (
        "unknown_coupon"
    )
    listed = _ok(cloud.hq(f"/api/v1/members/{ann}/coupons"))["coupons"]
    assert [c["id"] for c in listed] == [coupon["id"]]
    qr = _ok(cloud.hq(f"/api/v1/campaigns/{TEN_OFF_50['id']}/claim"))
    assert qr["claim"] == "AISLE-CLAIM:nov-10-off-50" and qr["qr_svg"].startswith("<svg")
    # A campaign that ended issues no more.
    cloud.clock.advance(days=31)
    assert _error(_issue(cloud, TEN_OFF_50["id"], cy), 409)["code"] == "campaign_ended"


def test_many_carts_reserving_one_coupon_at_once_get_it_once(cloud: Cloud) -> None:
    _ok(_put(cloud, TEN_OFF_50))
    stores = [cloud.store(f"S00{n}") for n in range(1, 5)]
    ann = _member(cloud, "13800000001")
    coupon = _ok(_issue(cloud, TEN_OFF_50["id"], ann), 201)
    target = f"/api/v1/store/coupons/{coupon['id']}/reservations"
    start = threading.Barrier(8)
    answers: list[tuple[int, str | None, str]] = []

    def ask(store: StoreClient) -> None:
        reservation = new_id()
        start.wait()
        response = store.call(
            "POST", target, {"reservation_id": reservation, "member_id": ann, "amount": 1000}
        )
        body = response.get_json()
        code = body["error"]["code"] if "error" in body else None
        answers.append((response.status_code, code, reservation))

    threads = [threading.Thread(target=ask, args=(stores[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [a for a in answers if a[0] == 201]
    assert len(won) == 1, answers
    assert sorted(a[1] for a in answers if a[0] != 201) == ["coupon_reserved"] * 7
    # The sale's event turns the reservation into the redemption: the coupon is used.
    winner = stores[[a[2] for a in answers].index(won[0][2]) % 4]
    _pushed(winner, [_redeeming(1, winner.store_id, coupon, 1000, won[0][2])])
    late = stores[0].call(
        "POST", target, {"reservation_id": new_id(), "member_id": ann, "amount": 1000}
    )
    assert _error(late, 409)["code"] == "coupon_used"
    assert _exceptions(cloud) == []
    # Another member's cart cannot reserve it (checked before it is known to be used).
    bo = _member(cloud, "13800000002")
    other = _ok(_issue(cloud, TEN_OFF_50["id"], bo), 201)
    refused = stores[1].call(
        "POST",
        f"/api/v1/store/coupons/{other['id']}/reservations",
        {"reservation_id": new_id(), "member_id": ann, "amount": 1000},
    )
    assert _error(refused, 409)["details"] == {"reason": "other_member"}


def test_a_coupon_redeemed_at_two_stores_offline_raises_exactly_one_exception(
    cloud: Cloud,
) -> None:
    _ok(_put(cloud, TEN_OFF_50))
    north, south = cloud.store("S001"), cloud.store("S002")
    ann = _member(cloud, "13800000001")
    coupon = _ok(_issue(cloud, TEN_OFF_50["id"], ann), 201)
    first = _redeeming(1, "S001", coupon, 1000)
    second = _redeeming(1, "S002", coupon, 1000)
    _pushed(north, [first])
    assert _exceptions(cloud) == []
    _pushed(south, [second])
    _pushed(south, [second])  # sent again: one fact, one exception
    _pushed(north, [first])
    [raised] = _exceptions(cloud)
    assert raised["store_id"] == "S002" and raised["subject_id"] == coupon["id"]
    assert (raised["amount"], raised["unit"]) == (1000, "CNY")
    assert raised["details"]["first_use"]["store_id"] == "S001"
    assert raised["details"]["first_use"]["sale_id"] == first["aggregate_id"]
    assert raised["details"]["member_id"] == ann and raised["details"]["offline"] is True
    # Both sales are kept: the cloud holds each, none is lost for the conflict.
    held = {s["id"] for n in (1, 2) for s in _ok(cloud.hq(f"/api/v1/stores/S00{n}/sales"))["sales"]}
    assert {first["aggregate_id"], second["aggregate_id"]} <= held


def test_a_full_return_gives_the_coupon_back(cloud: Cloud) -> None:
    _ok(_put(cloud, TEN_OFF_50))
    store = cloud.store("S001")
    ann = _member(cloud, "13800000001")
    coupon = _ok(_issue(cloud, TEN_OFF_50["id"], ann), 201)
    sold = _redeeming(1, "S001", coupon, 1000)
    _pushed(store, [sold])
    assert _ok(cloud.hq(f"/api/v1/members/{ann}/coupons"))["coupons"][0]["status"] == "redeemed"
    back = return_event(2, "S001", sold)
    back["payload"]["coupons_back"] = [coupon["id"]]
    back["payload"]["schema_version"] = contract.ReturnCreated.SCHEMA_VERSION
    _pushed(store, [back])
    _pushed(store, [back])
    assert _ok(cloud.hq(f"/api/v1/members/{ann}/coupons"))["coupons"][0]["status"] == "issued"
    # Usable again: reserved and redeemed by another sale with no exception.
    reservation = new_id()
    _ok(
        store.call(
            "POST",
            f"/api/v1/store/coupons/{coupon['id']}/reservations",
            {"reservation_id": reservation, "member_id": ann, "amount": 1000},
        ),
        201,
    )
    _pushed(store, [_redeeming(3, "S001", coupon, 1000, reservation)])
    assert _exceptions(cloud) == []


def test_a_campaigns_budget_bounds_what_its_coupons_reserve(cloud: Cloud) -> None:
    _ok(_put(cloud, {**TEN_OFF_50, "budget": 1500, "per_member_limit": 2}))
    store = cloud.store("S001")
    ann = _member(cloud, "13800000001")
    one, two = (_ok(_issue(cloud, TEN_OFF_50["id"], ann), 201) for _ in range(2))

    def reserve(coupon: dict[str, Any], amount: int) -> Any:
        return store.call(
            "POST",
            f"/api/v1/store/coupons/{coupon['id']}/reservations",
            {"reservation_id": new_id(), "member_id": ann, "amount": amount},
        )

    _ok(reserve(one, 1000), 201)
    refused = _error(reserve(two, 1000), 409)
    assert refused["code"] == "coupon_budget_reached"
    assert refused["details"] == {"budget": 1500, "spent": 1000, "asked": 1000}
    _ok(reserve(two, 500), 201)  # what is left of the budget
    # A reservation that lapses gives its share back.
    cloud.clock.advance(seconds=cloud.ctx.settings.members.hold_ttl_s + 1)
    _ok(reserve(two, 1500), 201)


def test_a_store_cannot_reserve_for_an_unknown_coupon_or_release_anothers(cloud: Cloud) -> None:
    _ok(_put(cloud, TEN_OFF_50))
    north, south = cloud.store("S001"), cloud.store("S002")
    ann = _member(cloud, "13800000001")
    coupon = _ok(_issue(cloud, TEN_OFF_50["id"], ann), 201)
    unknown = north.call(
        "POST",
        "/api/v1/store/coupons/0000000000000000/reservations",
        {"reservation_id": new_id(), "amount": 1},
    )
    assert _error(unknown, 404)["code"] == "unknown_coupon"
    reservation = new_id()
    _ok(
        north.call(
            "POST",
            f"/api/v1/store/coupons/{coupon['id']}/reservations",
            {"reservation_id": reservation, "amount": 1000},
        ),
        201,
    )
    refused = south.call("DELETE", f"/api/v1/store/coupon-reservations/{reservation}")
    assert _error(refused, 403)["code"] == "wrong_store"
    released = north.call("DELETE", f"/api/v1/store/coupon-reservations/{reservation}")
    assert _ok(released) == {"released": True}


SPRING = {
    **TEN_OFF_50,
    "id": "spring-public",
    "name": "Spring 10 off",
    "public_code": "Spring20",
    "cap": 40,
}


def _quotas(cloud: Cloud, campaign_id: str) -> dict[str, Any]:
    return _ok(cloud.hq(f"/api/v1/campaigns/{campaign_id}/quotas"))


def _public_use(seq: int, store_id: str, campaign_id: str = "spring-public") -> dict[str, Any]:
    """A sale of ``store_id`` that used a public code (each use has its own coupon id)."""
    use = {"id": coupon_codes.new_coupon_id(), "campaign_id": campaign_id}
    return _redeeming(seq, store_id, use, 1000)


def test_a_public_codes_cap_is_split_into_store_quotas_each_store_pulls_its_own(
    cloud: Cloud,
) -> None:
    s1, s2 = cloud.store("S001"), cloud.store("S002")
    _ok(_put(cloud, SPRING))
    # Half the cap is handed out evenly; the rest waits for the stores that use theirs.
    shown = _quotas(cloud, "spring-public")
    assert [(q["store_id"], q["quota"], q["used"]) for q in shown["quotas"]] == [
        ("S001", 10, 0),
        ("S002", 10, 0),
    ]
    assert (shown["cap"], shown["unallocated"]) == (40, 20)
    mine, cursor, _ = s1.pull_all("coupon_quotas")
    assert {k: v["quota"] for k, v in mine.items()} == {"spring-public": 10}
    # A store enrolled later gets its share of what is left.
    s3 = cloud.store("S003")
    assert {k: v["quota"] for k, v in s3.pull_all("coupon_quotas")[0].items()} == {
        "spring-public": 6  # 40 // (2 x 3 stores)
    }
    # S001 uses 8 of its 10: three quarters and more, so it gets half of what is left (14).
    _pushed(s1, [_public_use(seq, "S001") for seq in range(1, 9)])
    shown = _quotas(cloud, "spring-public")
    assert {q["store_id"]: (q["quota"], q["used"]) for q in shown["quotas"]} == {
        "S001": (17, 8),
        "S002": (10, 0),
        "S003": (6, 0),
    }
    assert shown["unallocated"] == 7
    # S001's next pull brings its new quota; S002's has nothing new for it.
    more, _, _ = s1.pull_all("coupon_quotas", cursor)
    assert {k: v["quota"] for k, v in more.items()} == {"spring-public": 17}
    assert s2.pull_all("coupon_quotas")[0]["spring-public"]["quota"] == 10
    # The quotas never add up to more than the cap, however the stores use them.
    _pushed(s1, [_public_use(seq, "S001") for seq in range(9, 18)])
    _pushed(s3, [_public_use(seq, "S003") for seq in range(1, 7)])
    shown = _quotas(cloud, "spring-public")
    assert sum(q["quota"] for q in shown["quotas"]) + shown["unallocated"] == 40
    assert shown["unallocated"] >= 0
    assert {q["store_id"]: q["used"] for q in shown["quotas"]} == {"S001": 17, "S002": 0, "S003": 6}


def test_a_public_campaign_is_typed_not_issued_and_its_code_is_its_own(cloud: Cloud) -> None:
    cloud.store("S001")
    _ok(_put(cloud, SPRING))
    ann = _member(cloud, "13800000001")
    refused = _error(_issue(cloud, "spring-public", ann), 409)
    assert (refused["code"], refused["details"]) == ("campaign_public", {"public_code": "Spring20"})
    # Another campaign may not take the code, however it is cased or spelt (O for 0).
    taken = _error(_put(cloud, {**SPRING, "id": "other", "public_code": "SPRING2O"}), 409)
    assert taken["code"] == "public_code_taken"
    assert taken["details"]["campaign_id"] == "spring-public"
    # A public campaign needs a cap and has no budget.
    assert _error(_put(cloud, {**SPRING, "id": "nocap", "public_code": "NOCAP1", "cap": None}), 422)
    assert _error(
        _put(cloud, {**SPRING, "id": "budget", "public_code": "BUDGET1", "budget": 100}), 422
    )
    # Its poster QR holds the code itself, which goes straight onto a cart.
    assert _ok(cloud.hq("/api/v1/campaigns/spring-public/claim"))["claim"] == "Spring20"
