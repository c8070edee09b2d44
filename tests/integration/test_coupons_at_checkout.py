"""Coupons at a store's checkout while the cloud cannot be reached, on a real migrated SQLite
file through the services: a coupon whose signature, dates and member hold is accepted offline
and prices the cart at the coupon stage; every forgery is refused; each refusal says why; the
sale redeems it and carries it to the cloud; the store refuses it a second time; a full return
gives it back. A campaign's public code is taken within this store's quota, offline included."""

from __future__ import annotations

import base64
import json
import socket
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from edge.auth.service import Principal
from edge.checkout import carts, returns, sales
from edge.checkout.payment_rules import PaymentRequest
from edge.coupons import at_checkout
from edge.coupons.service import apply_campaign_items, apply_quota_items
from edge.members.points import change_member
from edge.members.service import sign_up
from edge.sync_client.models import CloudLink
from shared import coupon_codes
from shared.errors import ApiError
from sync.contract import CampaignItem, CouponQuotaItem
from sync.keys import generate_private_key, public_key_b64
from tests.builders import MILK, T0, make_store

CLOUD_KEY = generate_private_key()
TEN_OFF_50 = {
    "id": "nov-10-off-50",
    "number": 1,
    "name": "10 off 50",
    "offer": {"kind": "amount_off", "amount": 1000, "min_spend": 5000},
    "starts": (T0 - timedelta(days=1)).isoformat(),
    "ends": (T0 + timedelta(days=30)).isoformat(),
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def store(tmp_path):
    store = make_store(tmp_path / "S001")
    with store.db.write() as uow:
        # Enrolled with a cloud that does not answer (nothing listens on its port).
        uow.session.add(
            CloudLink(
                id=1,
                cloud_url=f"http://127.0.0.1:{_closed_port()}",
                store_id="S001",
                cloud_public_key=public_key_b64(CLOUD_KEY),
                protocol_version=1,
                max_batch_events=100,
                max_batch_bytes=1 << 20,
                enrolled_at=T0,
            )
        )
        apply_campaign_items(
            uow.session, [CampaignItem.model_validate(TEN_OFF_50)], store.clock.now()
        )
        uow.commit()
    return store


def _kiosk(store) -> Principal:
    return Principal(store.devices["kiosk"], "kiosk")


def _member(store, phone: str) -> str:
    member, _ = sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone=phone,
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
    )
    return str(member.id)


def _code(member_id: str | None, *, key=CLOUD_KEY, number: int = 1, **dates: Any) -> str:
    return coupon_codes.sign(
        key,
        coupon_id=coupon_codes.new_coupon_id(),
        campaign_number=number,
        member_id=member_id,
        valid_from=dates.get("valid_from", T0 - timedelta(days=1)),
        valid_until=dates.get("valid_until", T0 + timedelta(days=30)),
    )


def _cart(store, member_id: str | None, milk: int) -> str:
    cart_id = carts.create_cart(
        store.db, _kiosk(store), channel="kiosk", currency="CNY", now=store.clock.now()
    ).cart.id
    for _ in range(milk):
        carts.add_line(
            store.db,
            _kiosk(store),
            cart_id,
            barcode=MILK["barcodes"],
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    if member_id is not None:
        change_member(
            store.db, None, _kiosk(store), cart_id, member_id, shop=store.ctx.shop,
            now=store.clock.now(),
        )  # fmt: skip
    return cart_id


def _apply(store, cart_id: str, code: str) -> carts.CartView:
    return at_checkout.apply_coupon(
        store.db,
        store.ctx.coupon_cloud,
        _kiosk(store),
        cart_id,
        code,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )


def _refused(store, cart_id: str, code: str) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(ApiError) as refused:
        _apply(store, cart_id, code)
    return refused.value.status, refused.value.code, dict(refused.value.details)


def _tampered(code: str, at: int) -> str:
    """``code`` with one bit of byte ``at`` flipped, written back as a code."""
    raw = bytearray(base64.b32decode(code.translate(str.maketrans(
        "0123456789ABCDEFGHJKMNPQRSTVWXYZ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    ))))  # fmt: skip
    raw[at] ^= 0x01
    return base64.b32encode(bytes(raw)).decode().translate(str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    ))  # fmt: skip


def test_a_coupon_accepted_offline_prices_the_cart_and_the_sale_redeems_it(store) -> None:
    ann = _member(store, "13800000001")
    code = _code(ann)
    cart_id = _cart(store, ann, milk=4)  # 4 x 12.50 = 50.00: the coupon's minimum spend
    view = _apply(store, cart_id, code.lower())  # however the scanner cases it
    shown = view.to_dict()
    assert view.totals.total == 5000 - 1000
    [coupon] = shown["coupons"]
    assert (coupon["name"], coupon["amount"], coupon["reserved"]) == ("10 off 50", 1000, False)
    assert [(d["name"], d["stage"], d["amount"]) for d in shown["discounts"]] == [
        ("10 off 50", "coupon", 1000)
    ]
    done = sales.checkout(
        store.ctx,
        _kiosk(store),
        cart_id,
        payments=[PaymentRequest("card", view.due)],
        idempotency_key="k-coupon",
    )
    coupon_id = coupon_codes.verify(CLOUD_KEY.public_key(), code).coupon_id
    assert done.sale["coupons"] == [
        {
            "coupon_id": coupon_id,
            "campaign_id": "nov-10-off-50",
            "amount": 1000,
            "reservation_id": None,
        }
    ]
    assert [(o["name"], o["amount"]) for o in done.receipt["offers"]] == [("10 off 50", 1000)]
    with store.db.read() as s:
        payload = s.execute(
            text("SELECT payload FROM outbox WHERE type = 'sale.completed'")
        ).scalar_one()
    sent = json.loads(payload)
    assert sent["schema_version"] == 4
    assert sent["sale"]["coupons"][0]["coupon_id"] == coupon_id
    # The store saw it used: another cart, here, offline, is refused it.
    again = _cart(store, ann, milk=4)
    assert _refused(store, again, code)[:2] == (409, "coupon_used")
    # Every line back: the coupon comes back (its campaign says so), here and, by the return's
    # event, at the cloud.
    returned = returns.create_return(
        store.ctx,
        _kiosk(store),
        done.sale["id"],
        lines=[
            returns.ReturnRequestLine(line["id"], line["quantity"]) for line in done.sale["lines"]
        ],
        reason="changed mind",
    )
    assert returned["refund_total"] == 4000
    with store.db.read() as s:
        back = json.loads(
            s.execute(text("SELECT payload FROM outbox WHERE type = 'return.created'")).scalar_one()
        )
    assert back["coupons_back"] == [coupon_id]
    assert _apply(store, again, code).totals.total == 4000


def test_every_forged_code_is_refused(store) -> None:
    ann = _member(store, "13800000001")
    cart_id = _cart(store, ann, milk=4)
    code = _code(ann)
    payload_bytes = 31
    forged = {
        "one bit of the coupon id": _tampered(code, 3),
        "one bit of the member": _tampered(code, 16),
        "one bit of the expiry": _tampered(code, 29),
        "one bit of the signature": _tampered(code, payload_bytes + 10),
        "another key": _code(ann, key=generate_private_key()),
    }
    # A stretched expiry: the payload of a real code with a later date, its signature kept.
    real = coupon_codes.verify(CLOUD_KEY.public_key(), code)
    stretched = _code(ann, valid_until=real.valid_until + timedelta(days=365))
    forged["a stretched expiry"] = (
        stretched[: payload_bytes * 8 // 5] + code[payload_bytes * 8 // 5 :]
    )
    for what, bad in forged.items():
        assert bad != code, what
        status, error, _ = _refused(store, cart_id, bad)
        assert (status, error) == (422, "coupon_invalid"), what
    assert _refused(store, cart_id, "HELLO")[:2] == (422, "coupon_invalid")
    # Nothing was put on the cart by any of them.
    view = carts.get_cart(store.db, _kiosk(store), cart_id, shop=store.ctx.shop)
    assert view.coupons == () and view.totals.total == 5000


def test_each_refusal_says_why(store) -> None:
    ann, bo = _member(store, "13800000001"), _member(store, "13800000002")
    cart_id = _cart(store, ann, milk=4)
    assert _refused(store, cart_id, _code(bo)) == (
        409,
        "coupon_not_eligible",
        {"reason": "other_member"},
    )
    anonymous = _cart(store, None, milk=4)
    assert _refused(store, anonymous, _code(ann))[2] == {"reason": "no_member"}
    small = _cart(store, ann, milk=2)  # 25.00 of the 50.00 the coupon needs
    assert _refused(store, small, _code(ann)) == (
        409,
        "coupon_not_eligible",
        {"reason": "min_spend", "min_spend": 5000, "short_by": 2500},
    )
    status, error, details = _refused(
        store, cart_id, _code(ann, valid_until=T0 - timedelta(minutes=1))
    )
    assert (status, error) == (409, "coupon_expired")
    assert details == {"valid_until": (T0 - timedelta(minutes=1)).isoformat()}
    later = _code(ann, valid_from=T0 + timedelta(days=2))
    assert _refused(store, cart_id, later)[:2] == (409, "coupon_not_yet_valid")
    assert _refused(store, cart_id, _code(ann, number=9))[:2] == (409, "coupon_unknown_campaign")
    typed = coupon_codes.show_id(coupon_codes.new_coupon_id())
    assert _refused(store, cart_id, typed)[:2] == (409, "coupon_needs_scan")
    first, second = _code(ann), _code(ann)
    _apply(store, cart_id, first)
    assert _refused(store, cart_id, first)[:2] == (409, "coupon_in_cart")
    assert _refused(store, cart_id, second)[:2] == (409, "campaign_in_cart")
    # The same coupon on another open cart of this store is refused there.
    other = _cart(store, ann, milk=4)
    assert _refused(store, other, first)[:2] == (409, "coupon_reserved")
    # Taken off, the cart's price comes back, and the coupon may go on the other cart.
    off = at_checkout.remove_coupon(
        store.db,
        None,
        _kiosk(store),
        cart_id,
        coupon_codes.verify(CLOUD_KEY.public_key(), first).coupon_id,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    assert off.totals.total == 5000 and off.coupons == ()
    assert _apply(store, other, first).totals.total == 4000
    # A withdrawn campaign's coupons are refused.
    with store.db.write() as uow:
        apply_campaign_items(
            uow.session,
            [CampaignItem.model_validate({**TEN_OFF_50, "active": False})],
            store.clock.now(),
        )
        uow.commit()
    assert _refused(store, cart_id, _code(ann))[:2] == (409, "coupon_withdrawn")


SPRING = {
    **TEN_OFF_50,
    "id": "spring-public",
    "number": 2,
    "name": "Spring 10 off",
    "public_code": "SPRING20",
    "cap": 100,
}


def _quota(store, quota: int) -> None:
    with store.db.write() as uow:
        apply_quota_items(
            uow.session,
            [CouponQuotaItem(campaign_id="spring-public", quota=quota)],
            store.clock.now(),
        )
        uow.commit()


def _sell(store, cart_id: str, key: str) -> dict[str, Any]:
    view = carts.get_cart(store.db, _kiosk(store), cart_id, shop=store.ctx.shop)
    return sales.checkout(
        store.ctx,
        _kiosk(store),
        cart_id,
        payments=[PaymentRequest("card", view.due)],
        idempotency_key=key,
    ).sale


def test_a_public_code_is_taken_offline_within_this_stores_quota(store) -> None:
    with store.db.write() as uow:
        apply_campaign_items(uow.session, [CampaignItem.model_validate(SPRING)], store.clock.now())
        uow.commit()
    # No quota pulled yet: the store cannot know its share, so it takes none.
    first = _cart(store, None, milk=4)
    assert _refused(store, first, "spring20") == (
        409,
        "coupon_quota_reached",
        {"campaign_id": "spring-public", "quota": 0, "used": 0},
    )
    _quota(store, 2)
    # Typed in any case, with O for 0: anonymous shoppers may use it.
    view = _apply(store, first, "Spring2O")
    assert view.totals.total == 4000
    [coupon] = view.to_dict()["coupons"]
    assert (coupon["campaign_id"], coupon["reserved"]) == ("spring-public", False)
    assert _refused(store, first, "SPRING20")[:2] == (409, "coupon_in_cart")
    # An open cart holds its use: the second cart takes the last one, the third is refused.
    second = _cart(store, None, milk=4)
    _apply(store, second, "SPRING20")
    third = _cart(store, None, milk=4)
    assert _refused(store, third, "SPRING20") == (
        409,
        "coupon_quota_reached",
        {"campaign_id": "spring-public", "quota": 2, "used": 2},
    )
    # The sales redeem them, each under its own coupon id; the quota stays spent.
    sold = [_sell(store, first, "k-p1"), _sell(store, second, "k-p2")]
    ids = {s["coupons"][0]["coupon_id"] for s in sold}
    assert len(ids) == 2 and all(coupon_codes.is_coupon_id(i) for i in ids)
    assert _refused(store, third, "SPRING20")[2]["used"] == 2
    # The cloud raises the quota: the next pull lets the third cart have it.
    _quota(store, 5)
    assert _apply(store, third, "spring20").totals.total == 4000


def test_a_members_uses_of_a_public_code_here_are_limited(store) -> None:
    with store.db.write() as uow:
        apply_campaign_items(uow.session, [CampaignItem.model_validate(SPRING)], store.clock.now())
        uow.commit()
    _quota(store, 10)
    ann = _member(store, "13800000001")
    cart_id = _cart(store, ann, milk=4)
    _apply(store, cart_id, "SPRING20")
    _sell(store, cart_id, "k-ann")
    again = _cart(store, ann, milk=4)
    assert _refused(store, again, "SPRING20") == (
        409,
        "coupon_member_limit",
        {"limit": 1, "used": 1},
    )
    # Another shopper still may; a withdrawn campaign's code is refused saying so.
    assert _apply(store, _cart(store, None, milk=4), "SPRING20").totals.total == 4000
    with store.db.write() as uow:
        apply_campaign_items(
            uow.session,
            [CampaignItem.model_validate({**SPRING, "active": False})],
            store.clock.now(),
        )
        uow.commit()
    assert _refused(store, _cart(store, None, milk=4), "SPRING20")[:2] == (409, "coupon_withdrawn")
