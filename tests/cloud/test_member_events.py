"""Stores' member events at the cloud, pushed as signed batches: sign-ups (the same phone
offline in two stores makes one member), a sale's points, a return's, an offline overdraft,
and HQ reading it all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cloud.members import ledger
from cloud.members.models import Member, PointsEntry
from shared.member_codes import new_member_code
from sync.contract import SaleMember
from sync.keys import public_key_b64
from tests.cloud.harness import Cloud, return_event, sale_event, signup_event

PHONE = "+8613600136000"


def _key(cloud: Cloud) -> str:
    return public_key_b64(cloud.ctx.cloud_key)


def _member(cloud: Cloud, member_id: str) -> dict[str, Any]:
    response = cloud.hq(f"/api/v1/members/{member_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _applied(answer: Any, count: int) -> None:
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert (body["applied"], body["quarantined"]) == (count, []), body


def test_one_phone_signed_up_offline_in_two_stores_is_one_member(cloud: Cloud) -> None:
    a, b = cloud.store("S001"), cloud.store("S002")
    in_a, in_b = (
        signup_event(1, "S001", PHONE, to=_key(cloud)),
        signup_event(1, "S002", PHONE, to=_key(cloud)),
    )
    first, second = in_a["aggregate_id"], in_b["aggregate_id"]
    _applied(a.push([in_a]), 1)
    # Store B sold to its provisional member before it heard of A's.
    earned_in_b = sale_event(2, "S002", member=SaleMember(id=second, earned=30, spend=3_000))
    _applied(b.push([in_b, earned_in_b]), 2)
    earned_in_a = sale_event(2, "S001", member=SaleMember(id=first, earned=12, spend=1_200))
    _applied(a.push([earned_in_a]), 1)

    with cloud.ctx.db.read() as session:
        rows = {m.id: m for m in session.execute(select(Member)).scalars()}
        assert (rows[first].status, rows[second].status) == ("active", "merged")
        assert rows[second].merged_into == first
        assert ledger.balance(session, first) == 42
        # Every entry kept who it was recorded for; none was lost in the merge.
        recorded = sorted(
            (e.kind, e.points, e.recorded_member_id)
            for e in session.execute(select(PointsEntry)).scalars()
        )
        assert recorded == sorted([("earn", 30, second), ("earn", 12, first), ("merge", 0, first)])
    # HQ finds the one member by phone and by the merged member's id.
    found = cloud.hq("/api/v1/members", query_string={"phone": "136 0013 6000"}).get_json()
    assert [m["id"] for m in found["members"]] == [first]
    assert found["members"][0]["masked_phone"] == "136****6000"
    assert _member(cloud, second)["id"] == first
    assert _member(cloud, first)["balance"] == 42


def test_sales_and_returns_move_points_once_and_an_overdraft_is_raised(cloud: Cloud) -> None:
    store = cloud.store("S001")
    signed = signup_event(1, "S001", PHONE, to=_key(cloud))
    member_id = signed["aggregate_id"]
    earned = sale_event(2, "S001", member=SaleMember(id=member_id, earned=100, spend=10_000))
    # An offline burn beyond the balance: accepted, and raised for HQ.
    burned = sale_event(
        3, "S001", member=SaleMember(id=member_id, burned=130, spend=0, offline=True)
    )
    batch = [signed, earned, burned]
    _applied(store.push(batch), 3)
    assert store.push(batch).get_json()["duplicates"] == 3  # sent again: nothing moves
    assert _member(cloud, member_id)["balance"] == -30

    exceptions = cloud.hq("/api/v1/exceptions").get_json()["exceptions"]
    assert [
        (x["kind"], x["amount"], x["unit"], x["store_id"], x["origin_id"]) for x in exceptions
    ] == [("points_overdraft", 30, "points", "S001", burned["aggregate_id"])]

    # Returns: the first line of the earning sale (half of it) takes back half the points,
    # and a return of the burning sale gives 50 burned points back.
    line_total = earned["payload"]["sale"]["lines"][0]["total"]
    sale_total = earned["payload"]["sale"]["total"]
    _applied(
        store.push(
            [return_event(4, "S001", earned), return_event(5, "S001", burned, points_back=50)]
        ),
        2,
    )
    taken = 100 * min(line_total, 10_000) // 10_000
    assert _member(cloud, member_id)["balance"] == -30 - taken + 50
    assert sale_total >= line_total

    ledger_page = cloud.hq(f"/api/v1/members/{member_id}/ledger").get_json()
    assert [(e["kind"], e["points"]) for e in ledger_page["entries"]] == [
        ("earn", 100),
        ("burn", -130),
        ("earn_reversal", -taken),
        ("burn_refund", 50),
    ]
    assert ledger_page["entries"][0]["origin"] == {"kind": "sale", "id": earned["aggregate_id"]}
    assert ledger_page["balance"] == -30 - taken + 50


def test_a_sale_for_a_member_the_cloud_never_heard_of_is_quarantined(cloud: Cloud) -> None:
    store = cloud.store("S001")
    stray = sale_event(
        1,
        "S001",
        member=SaleMember(
            id=signup_event(0, "S001", PHONE, to=_key(cloud))["aggregate_id"], earned=5, spend=500
        ),
    )
    body = store.push([stray, sale_event(2, "S001")]).get_json()
    assert body["applied"] == 1
    assert [q["seq"] for q in body["quarantined"]] == [1]
    assert "unknown_member" in body["quarantined"][0]["reason"]


def test_a_sign_up_beside_a_refused_event_is_applied_once(cloud: Cloud) -> None:
    """A batch that fails as a whole is applied again event by event: the sign-up and the
    sales for its member that were undone with the batch go in then, and only the sale for
    a member nobody signed up is quarantined."""
    store = cloud.store("S001")
    signed = signup_event(1, "S001", PHONE, to=_key(cloud))
    member_id = signed["aggregate_id"]
    stray = signup_event(0, "S001", "+8613600136001", to=_key(cloud))["aggregate_id"]
    body = store.push(
        [
            signed,
            sale_event(2, "S001", member=SaleMember(id=member_id, earned=40, spend=4_000)),
            sale_event(3, "S001", member=SaleMember(id=stray, earned=5, spend=500)),
            sale_event(4, "S001", member=SaleMember(id=member_id, burned=15, earned=2, spend=200)),
        ]
    ).get_json()
    assert body["applied"] == 3, body
    assert [q["seq"] for q in body["quarantined"]] == [3]
    assert _member(cloud, member_id)["balance"] == 40 - 15 + 2
    with cloud.ctx.db.read() as s:
        assert s.execute(select(Member.id).where(Member.id == member_id)).scalar_one() == member_id


def test_a_second_sign_up_of_a_phone_beside_a_refused_event_is_folded_in(cloud: Cloud) -> None:
    """The same, for a sign-up that merges into the phone's member: undone with the batch,
    it is folded in again when the batch is applied event by event."""
    a, b = cloud.store("S001"), cloud.store("S002")
    in_a, in_b = (
        signup_event(1, "S001", PHONE, to=_key(cloud)),
        signup_event(1, "S002", PHONE, to=_key(cloud)),
    )
    _applied(a.push([in_a]), 1)
    stray = signup_event(0, "S002", "+8613600136001", to=_key(cloud))["aggregate_id"]
    second = in_b["aggregate_id"]
    body = b.push(
        [
            in_b,
            sale_event(2, "S002", member=SaleMember(id=second, earned=30, spend=3_000)),
            sale_event(3, "S002", member=SaleMember(id=stray, earned=5, spend=500)),
        ]
    ).get_json()
    assert body["applied"] == 2, body
    assert [q["seq"] for q in body["quarantined"]] == [3]
    assert _member(cloud, in_a["aggregate_id"])["balance"] == 30


def test_hq_adjusts_points_once_per_key_with_a_reason(cloud: Cloud) -> None:
    store = cloud.store("S001")
    signed = signup_event(1, "S001", PHONE, to=_key(cloud))
    _applied(store.push([signed]), 1)
    url = f"/api/v1/members/{signed['aggregate_id']}/adjustments"
    headers = {"Idempotency-Key": "goodwill-1"}
    first = cloud.hq(
        url, method="POST", json={"points": 20, "reason": "late delivery"}, headers=headers
    )
    assert first.status_code == 201, first.get_json()
    again = cloud.hq(
        url, method="POST", json={"points": 20, "reason": "late delivery"}, headers=headers
    )
    assert again.get_json() == first.get_json()
    other = cloud.hq(
        url, method="POST", json={"points": 25, "reason": "late delivery"}, headers=headers
    )
    assert (other.status_code, other.get_json()["error"]["code"]) == (409, "idempotency_key_reused")
    no_reason = cloud.hq(
        url, method="POST", json={"points": 20, "reason": ""}, headers={"Idempotency-Key": "k2"}
    )
    assert no_reason.status_code == 422
    no_key = cloud.hq(url, method="POST", json={"points": 20, "reason": "x"})
    assert no_key.get_json()["error"]["code"] == "idempotency_key_required"
    assert _member(cloud, signed["aggregate_id"])["balance"] == 20
    unknown = cloud.hq("/api/v1/members", query_string={"code": new_member_code()})
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "unknown_member")
    malformed = cloud.hq("/api/v1/members", query_string={"phone": "12345"})
    assert (malformed.status_code, malformed.get_json()["error"]["code"]) == (422, "bad_phone")


def test_an_adjustment_takes_any_key_the_header_allows(cloud: Cloud) -> None:
    # Keys are up to 128 characters; the ledger's origin ids up to 64.
    store = cloud.store("S001")
    signed = signup_event(1, "S001", PHONE, to=_key(cloud))
    _applied(store.push([signed]), 1)
    url = f"/api/v1/members/{signed['aggregate_id']}/adjustments"
    long_keys = ["k" * 128, "k" * 127 + "j"]
    answers = []
    for key in [*long_keys, long_keys[0]]:
        answer = cloud.hq(
            url,
            method="POST",
            json={"points": 5, "reason": "goodwill"},
            headers={"Idempotency-Key": key},
        )
        assert answer.status_code == 201, answer.get_json()
        answers.append(answer.get_json())
    entries = [a["entry_id"] for a in answers]
    assert entries[2] == entries[0] != entries[1]
    assert _member(cloud, signed["aggregate_id"])["balance"] == 10
