"""The members API of the other channels (an online shop, a mini-program), on both databases:
sign-up, lookup, balance, ledger, earn, burn and holds, each write once per Idempotency-Key of
the channel's token, and every refusal a JSON error with nothing written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cloud.errors import Unprocessable
from cloud.members.channels import Channel, earn
from cloud.members.models import ChannelRequest, Member, PointsEntry, PointsHold
from cloud.stores.service import issue_token
from shared.member_codes import new_member_code
from tests.cloud.harness import Cloud

PHONE = "+8613800138000"


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    assert isinstance(body, dict)
    return body


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body


def _counts(cloud: Cloud) -> tuple[int, int, int, int]:
    """(members, ledger entries, holds, kept channel requests): what a refusal must not
    change."""
    with cloud.ctx.db.read() as session:
        return tuple(  # type: ignore[return-value]
            session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Member, PointsEntry, PointsHold, ChannelRequest)
        )


def _sign_up(cloud: Cloud, token: str, phone: str = PHONE, key: str = "signup-1") -> str:
    body = _ok(cloud.channel(token, "/members", method="POST", key=key, json={"phone": phone}), 201)
    member_id: str = body["id"]
    return member_id


def _earn(
    cloud: Cloud, token: str, member_id: str, *, order: str, points: int, spend: int, key: str
) -> Any:
    return cloud.channel(
        token,
        f"/members/{member_id}/earn",
        method="POST",
        key=key,
        json={"order_id": order, "points": points, "spend": spend},
    )


def _burn(cloud: Cloud, token: str, member_id: str, *, order: str, points: int, key: str, **kw):
    return cloud.channel(
        token,
        f"/members/{member_id}/burn",
        method="POST",
        key=key,
        json={"order_id": order, "points": points, **kw},
    )


# -- tokens and callers ------------------------------------------------------------------------


def test_a_channel_token_and_an_hq_token_each_keep_to_their_own_routes(cloud: Cloud) -> None:
    shop = cloud.channel_token("shop")
    member_id = _sign_up(cloud, shop)
    # A channel token on HQ's routes, and HQ's token on a channel's: 403, not 401.
    for path in (f"/api/v1/members/{member_id}", "/api/v1/stores", "/api/v1/exceptions"):
        response = cloud.client.get(path, headers={"Authorization": f"Bearer {shop}"})
        _refused(response, 403, "forbidden")
    cloud.hq("/api/v1/stores")  # issues HQ's token
    hq = {"Authorization": f"Bearer {cloud.hq_token}", "Idempotency-Key": "k1"}
    for method, path in (
        ("GET", f"/api/v1/channel/members/{member_id}"),
        ("POST", "/api/v1/channel/members"),
        ("POST", f"/api/v1/channel/members/{member_id}/earn"),
    ):
        response = cloud.client.open(path, method=method, headers=hq, json={"phone": PHONE})
        _refused(response, 403, "forbidden")
    # No token, or an unknown one: 401.
    _refused(cloud.client.get(f"/api/v1/channel/members/{member_id}"), 401, "unauthorized")
    _refused(cloud.channel("nope", f"/members/{member_id}"), 401, "unauthorized")


def test_a_channel_token_is_named_after_its_channel(cloud: Cloud) -> None:
    now = cloud.clock.now()
    for bad in ("", "Shop", "online shop", "store", "a" * 17, "-shop"):
        with pytest.raises(Unprocessable):
            issue_token(cloud.ctx.db, role="channel", name=bad, now=now)
    with pytest.raises(Unprocessable):
        issue_token(cloud.ctx.db, role="admin", name="x", now=now)
    assert issue_token(cloud.ctx.db, role="channel", name="mini-program", now=now).startswith(
        "aisle_channel_"
    )


# -- sign-up and lookup ------------------------------------------------------------------------


def test_sign_up_records_the_channel_and_a_known_phone_answers_its_member(cloud: Cloud) -> None:
    shop, mini = cloud.channel_token("shop"), cloud.channel_token("mini")
    created = _ok(
        cloud.channel(
            shop, "/members", method="POST", key="a", json={"phone": "138 0013 8000", "name": "Li"}
        ),
        201,
    )
    assert created["masked_phone"] == "138****8000"
    assert (created["balance"], created["available"], created["status"]) == (0, 0, "active")
    # The same phone from another channel (another key): its member, 200, not a second one.
    again = _ok(cloud.channel(mini, "/members", method="POST", key="b", json={"phone": PHONE}))
    assert again["id"] == created["id"]
    with cloud.ctx.db.read() as session:
        member = session.get(Member, created["id"])
        assert member is not None
        assert (member.channel, member.store_id, member.device_id, member.recruited_by) == (
            "shop",
            None,
            None,
            None,
        )
    assert _counts(cloud)[0] == 1


def test_lookup_by_phone_or_code_and_read_the_balance(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    by_phone = _ok(cloud.channel(shop, "/members", query_string={"phone": "13800138000"}))
    assert [m["id"] for m in by_phone["members"]] == [member_id]
    code = by_phone["members"][0]["code"]
    by_code = _ok(cloud.channel(shop, "/members", query_string={"code": code}))
    assert [m["id"] for m in by_code["members"]] == [member_id]
    _refused(
        cloud.channel(shop, "/members", query_string={"phone": "13900139000"}),
        404,
        "unknown_member",
    )
    unknown = cloud.channel(shop, "/members", query_string={"code": new_member_code()})
    _refused(unknown, 404, "unknown_member")
    _refused(cloud.channel(shop, "/members"), 422, "phone_or_code_required")
    _refused(
        cloud.channel(shop, "/members/00000000-0000-7000-8000-000000000000"), 404, "unknown_member"
    )
    read = _ok(cloud.channel(shop, f"/members/{member_id}"))
    assert (read["id"], read["balance"], read["available"]) == (member_id, 0, 0)


def test_a_malformed_phone_is_422_bad_phone_with_nothing_written(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    before = _counts(cloud)
    response = cloud.channel(shop, "/members", method="POST", key="k", json={"phone": "12ab"})
    _refused(response, 422, "bad_phone")
    _refused(
        cloud.channel(shop, "/members", method="POST", key="k", json={}), 422, "validation_error"
    )
    _refused(
        cloud.channel(shop, "/members", method="POST", json={"phone": PHONE}),
        422,
        "idempotency_key_required",
    )
    assert _counts(cloud) == before
    # The key was not spent by the refusal: it signs the member up once the phone is right.
    _ok(cloud.channel(shop, "/members", method="POST", key="k", json={"phone": PHONE}), 201)


# -- points ------------------------------------------------------------------------------------


def test_earn_burn_and_the_ledger(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    earned = _ok(
        _earn(cloud, shop, member_id, order="ORD-1", points=120, spend=12_000, key="e1"), 201
    )
    assert earned["member_id"] == member_id
    assert (earned["kind"], earned["points"], earned["spend"], earned["order_id"]) == (
        "earn",
        120,
        12_000,
        "ORD-1",
    )
    assert (earned["balance"], earned["available"]) == (120, 120)
    burned = _ok(_burn(cloud, shop, member_id, order="ORD-2", points=50, key="b1"), 201)
    assert (burned["kind"], burned["points"], burned["balance"], burned["available"]) == (
        "burn",
        -50,
        70,
        70,
    )
    ledger = _ok(cloud.channel(shop, f"/members/{member_id}/ledger", query_string={"limit": 1}))
    assert ledger["balance"] == 70 and ledger["more"] is True
    assert [(e["kind"], e["points"], e["origin"]) for e in ledger["entries"]] == [
        ("earn", 120, {"kind": "order", "id": "shop:ORD-1"})
    ]
    rest = _ok(
        cloud.channel(
            shop, f"/members/{member_id}/ledger", query_string={"after": ledger["last_id"]}
        )
    )
    assert [(e["kind"], e["points"], e["origin"]["id"]) for e in rest["entries"]] == [
        ("burn", -50, "shop:ORD-2")
    ]
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["balance"] == 70
    # HQ sees the same ledger.
    assert _ok(cloud.hq(f"/api/v1/members/{member_id}"))["balance"] == 70


def test_a_burn_beyond_what_is_free_is_409_with_nothing_written(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    _ok(_earn(cloud, shop, member_id, order="ORD-1", points=100, spend=10_000, key="e1"), 201)
    before = _counts(cloud)
    body = _refused(
        _burn(cloud, shop, member_id, order="ORD-2", points=101, key="b1"),
        409,
        "points_insufficient",
    )
    assert body["error"]["details"] == {"available": 100, "asked": 101}
    assert _counts(cloud) == before
    # The refused key was not spent: the same key burns what is there.
    _ok(_burn(cloud, shop, member_id, order="ORD-2", points=100, key="b1"), 201)


def test_zero_negative_or_fractional_points_are_422(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    _ok(_earn(cloud, shop, member_id, order="ORD-0", points=10, spend=1_000, key="e0"), 201)
    before = _counts(cloud)
    for points in (0, -5, 1.5, "7"):
        for move in (_earn, _burn):
            kw: dict[str, Any] = {"spend": 100} if move is _earn else {}
            response = move(cloud, shop, member_id, order="ORD-1", points=points, key="k", **kw)
            _refused(response, 422, "validation_error")
    _refused(
        _earn(cloud, shop, member_id, order="ORD-1", points=5, spend=-1, key="k"),
        422,
        "validation_error",
    )
    _refused(
        _earn(cloud, shop, member_id, order="", points=5, spend=1, key="k"), 422, "validation_error"
    )
    _refused(
        _earn(cloud, shop, member_id, order="x" * 48, points=5, spend=1, key="k"),
        422,
        "validation_error",
    )
    _refused(
        cloud.channel(
            shop, f"/members/{member_id}/holds", method="POST", key="k", json={"points": 0}
        ),
        422,
        "validation_error",
    )
    assert _counts(cloud) == before


def test_points_for_an_unknown_member_are_404_with_nothing_written(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    before = _counts(cloud)
    nobody = "00000000-0000-7000-8000-000000000000"
    _refused(
        _earn(cloud, shop, nobody, order="O1", points=5, spend=1, key="k"), 404, "unknown_member"
    )
    _refused(_burn(cloud, shop, nobody, order="O1", points=5, key="k"), 404, "unknown_member")
    assert _counts(cloud) == before


# -- idempotency -------------------------------------------------------------------------------


def test_every_write_sent_again_with_its_key_answers_the_first_answer(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    signup = {"phone": PHONE, "name": "Wang"}
    first = cloud.channel(shop, "/members", method="POST", key="s", json=signup)
    member_id = _ok(first, 201)["id"]
    again = cloud.channel(shop, "/members", method="POST", key="s", json=signup)
    assert (again.status_code, again.get_json()) == (201, first.get_json())

    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("e", f"/members/{member_id}/earn", {"order_id": "O1", "points": 80, "spend": 8_000}),
        ("h", f"/members/{member_id}/holds", {"points": 30}),
        ("b", f"/members/{member_id}/burn", {"order_id": "O2", "points": 20}),
    ]
    answers = {}
    for key, path, body in writes:
        answers[key] = _ok(cloud.channel(shop, path, method="POST", key=key, json=body), 201)
    hold_id = answers["h"]["hold_id"]
    released = _ok(
        cloud.channel(shop, f"/members/{member_id}/holds/{hold_id}", method="DELETE", key="r")
    )
    assert released["status"] == "released"
    counted = _counts(cloud)
    # A retried earn counts once, and each write answers exactly what it answered first.
    for key, path, body in writes:
        retry = cloud.channel(shop, path, method="POST", key=key, json=body)
        assert (retry.status_code, retry.get_json()) == (201, answers[key])
    retry = cloud.channel(shop, f"/members/{member_id}/holds/{hold_id}", method="DELETE", key="r")
    assert (retry.status_code, retry.get_json()) == (200, released)
    assert _counts(cloud) == counted
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["balance"] == 60


def test_a_key_used_again_for_another_request_is_409(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop, key="k")
    _ok(_earn(cloud, shop, member_id, order="O1", points=10, spend=1_000, key="e"), 201)
    before = _counts(cloud)
    # The sign-up's key for another phone, the earn's for another amount or another route.
    other_phone = cloud.channel(
        shop, "/members", method="POST", key="k", json={"phone": "13900139000"}
    )
    _refused(other_phone, 409, "idempotency_key_reused")
    _refused(
        _earn(cloud, shop, member_id, order="O1", points=11, spend=1_000, key="e"),
        409,
        "idempotency_key_reused",
    )
    _refused(
        _burn(cloud, shop, member_id, order="O1", points=10, key="e"), 409, "idempotency_key_reused"
    )
    assert _counts(cloud) == before
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["balance"] == 10


def test_keys_are_each_tokens_own(cloud: Cloud) -> None:
    shop, mini = cloud.channel_token("shop"), cloud.channel_token("mini")
    member_id = _sign_up(cloud, shop, key="same")
    # The other channel's same key is another request: it applies.
    _ok(_earn(cloud, mini, member_id, order="O1", points=7, spend=700, key="same"), 201)
    _ok(_earn(cloud, shop, member_id, order="O1", points=5, spend=500, key="e"), 201)
    # Orders are each channel's own too: both O1s earned.
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["balance"] == 12


def test_an_order_earns_and_burns_once_whatever_the_key(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    first = _ok(_earn(cloud, shop, member_id, order="O1", points=10, spend=1_000, key="e1"), 201)
    # The same order's earn under a new key (the shop lost its key): the entry already made.
    same = _ok(_earn(cloud, shop, member_id, order="O1", points=10, spend=1_000, key="e2"))
    assert same["entry_id"] == first["entry_id"]
    before = _counts(cloud)
    other = _earn(cloud, shop, member_id, order="O1", points=99, spend=1_000, key="e3")
    _refused(other, 409, "order_already_recorded")
    _ok(_burn(cloud, shop, member_id, order="O1", points=4, key="b1"), 201)
    _ok(_burn(cloud, shop, member_id, order="O1", points=4, key="b2"))
    _refused(
        _burn(cloud, shop, member_id, order="O1", points=5, key="b3"), 409, "order_already_recorded"
    )
    assert _counts(cloud)[1] == before[1] + 1
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["balance"] == 6


# -- holds -------------------------------------------------------------------------------------


def test_a_hold_sets_points_aside_until_its_burn_or_release(cloud: Cloud) -> None:
    shop, mini = cloud.channel_token("shop"), cloud.channel_token("mini")
    member_id = _sign_up(cloud, shop)
    _ok(_earn(cloud, shop, member_id, order="O1", points=100, spend=10_000, key="e"), 201)
    hold = _ok(
        cloud.channel(
            shop, f"/members/{member_id}/holds", method="POST", key="h", json={"points": 70}
        ),
        201,
    )
    assert (hold["points"], hold["status"], hold["available"]) == (70, "held", 30)
    # Another channel cannot spend the held points meanwhile.
    _refused(
        _burn(cloud, mini, member_id, order="M1", points=31, key="m"), 409, "points_insufficient"
    )
    _refused(
        cloud.channel(
            mini, f"/members/{member_id}/holds", method="POST", key="m", json={"points": 31}
        ),
        409,
        "points_insufficient",
    )
    # Nor burn or release the shop's hold, which it does not see.
    _refused(
        _burn(cloud, mini, member_id, order="M1", points=70, key="m2", hold_id=hold["hold_id"]),
        404,
        "unknown_hold",
    )
    _refused(
        cloud.channel(
            mini, f"/members/{member_id}/holds/{hold['hold_id']}", method="DELETE", key="m3"
        ),
        404,
        "unknown_hold",
    )
    # The shop burns its hold: the held points are its to spend.
    burned = _ok(
        _burn(cloud, shop, member_id, order="O2", points=70, key="b", hold_id=hold["hold_id"]), 201
    )
    assert (burned["balance"], burned["available"]) == (30, 30)
    with cloud.ctx.db.read() as session:
        row = session.get(PointsHold, hold["hold_id"])
        assert row is not None and row.status == "burned"
    # A burned hold is spent: not burned again, nor released.
    _refused(
        _burn(cloud, shop, member_id, order="O3", points=10, key="b2", hold_id=hold["hold_id"]),
        409,
        "hold_not_live",
    )
    _refused(
        cloud.channel(
            shop, f"/members/{member_id}/holds/{hold['hold_id']}", method="DELETE", key="r"
        ),
        409,
        "hold_not_live",
    )
    # A released hold frees its points.
    second = _ok(
        cloud.channel(
            shop, f"/members/{member_id}/holds", method="POST", key="h2", json={"points": 30}
        ),
        201,
    )
    assert second["available"] == 0
    _ok(
        cloud.channel(
            shop, f"/members/{member_id}/holds/{second['hold_id']}", method="DELETE", key="r2"
        )
    )
    assert _ok(cloud.channel(shop, f"/members/{member_id}"))["available"] == 30


def test_one_key_sent_twice_at_once_is_applied_once(cloud: Cloud) -> None:
    shop = cloud.channel_token()
    member_id = _sign_up(cloud, shop)
    with cloud.ctx.db.read() as session:
        token_id = session.execute(
            select(ChannelRequest.token_id).where(ChannelRequest.key == "signup-1")
        ).scalar_one()
    channel = Channel(name="shop", token_id=token_id)
    start = threading.Barrier(4)

    def send() -> tuple[dict[str, Any], int]:
        start.wait()
        return earn(
            cloud.ctx.db,
            cloud.ctx.members_keyring,
            channel,
            member_id,
            order_id="O1",
            points=10,
            spend=1_000,
            key="same",
            now=cloud.clock.now(),
            expiry=timedelta(days=365),
        )

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: send(), range(4)))
    assert {status for _, status in answers} == {201}
    assert len({body["entry_id"] for body, _ in answers}) == 1
    with cloud.ctx.db.read() as session:
        earns = session.execute(
            select(func.count()).select_from(PointsEntry).where(PointsEntry.kind == "earn")
        ).scalar_one()
        assert earns == 1
