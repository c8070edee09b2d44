"""Putting a coupon on a cart and taking it off, and a member claiming one by a campaign's QR
(the rules are :mod:`edge.coupons.service`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge.auth.service import Principal
from edge.checkout.carts import CartLineRow, CartView, load_cart, require_open, view_of
from edge.coupons import service
from edge.coupons.online import CouponCloud
from edge.db import Database, to_sql_time
from edge.errors import CloudUnavailable, Conflict, NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.members.service import enrolled_link, may_act_for
from edge.pricing.store_promotions import Shop
from shared import coupon_codes
from shared.ids import new_id
from shared.promotions import Promotion
from shared.qr import qr_svg


def _touch(tx: Any, cart_id: str, now: datetime) -> None:
    tx.run("UPDATE carts SET updated_at = ? WHERE id = ?", (to_sql_time(now), cart_id))


def _worth(lines: Sequence[CartLineRow], offer: Promotion) -> int:
    """What the cart's lines that ``offer`` looks at come to, at shelf prices."""
    items = [line.item() for line in lines]
    return sum(i.subtotal for i in items if offer.target.covers(i.sku, i.category))


def apply_coupon(
    db: Database,
    cloud: CouponCloud | None,
    principal: Principal,
    cart_id: str,
    typed: str,
    *,
    shop: Shop,
    now: datetime,
    retry: Retryable | None = None,
) -> CartView:
    """Put the coupon ``typed`` (its code or its id) on the cart; see the module docstring of
    :mod:`edge.coupons.service` for the checks and their errors."""
    with db.raw_read() as tx:
        cart = load_cart(tx, principal, cart_id)
    require_open(cart)
    checked = service.read_code(db, cloud, typed, now=now)
    coupon_id = checked.coupon_id
    # The cart priced with the coupon too: what it would take off the cart as it is.
    trial = service.OnCart.of(coupon_id, checked.campaign, None)
    with db.raw_read() as tx:
        priced = view_of(tx, cart, shop, extra_coupons=(trial,))
        service.check_here(
            tx, checked, cart_id=cart.id, member_id=cart.member_id, on_cart=priced.coupons[:-1]
        )
    amount = priced.coupon_amount(trial)
    refused = service.not_eligible(
        trial.offer, store_id=shop.store_id, worth=_worth(priced.lines, trial.offer), amount=amount
    )
    if refused is not None:
        raise refused
    reservation_id: str | None = None
    if cloud is not None and not checked.public:  # a public code is bounded by the quota
        reserved = cloud.reserve(
            coupon_id,
            reservation_id=new_id(),
            member_id=cart.member_id,
            amount=amount,
            now=now,
        )
        reservation_id = None if reserved is None else reserved.reservation_id
    try:
        with db.raw_write(durable=False) as tx:
            current = load_cart(tx, principal, cart_id)
            require_open(current)
            if current.member_id != cart.member_id:
                raise Conflict(
                    "the cart's member changed meanwhile; try again",
                    code="cart_changed",
                    details={"cart_id": cart_id},
                )
            service.check_here(
                tx,
                checked,
                cart_id=cart.id,
                member_id=current.member_id,
                on_cart=service.coupons_on(tx, cart.id),
            )
            service.add_to_cart(tx, cart.id, checked, reservation_id, now=now)
            _touch(tx, cart.id, now)
            changed = view_of(tx, replace(current, updated_at=now), shop)
            remember(tx, retry, status=200, body=changed.to_dict(), now=now)
            tx.commit()
    except BaseException:
        if reservation_id is not None and cloud is not None:
            cloud.release(reservation_id, now=now)
        raise
    return changed


def remove_coupon(
    db: Database,
    cloud: CouponCloud | None,
    principal: Principal,
    cart_id: str,
    coupon_id: str,
    *,
    shop: Shop,
    now: datetime,
) -> CartView:
    """Take a coupon off the cart; its reservation is given back to the cloud (when the cloud
    does not answer, it lapses there)."""
    wanted = coupon_codes.normalise(coupon_id)
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        reservation_id = service.remove_from_cart(tx, cart.id, wanted)
        _touch(tx, cart.id, now)
        view = view_of(tx, replace(cart, updated_at=now), shop)
        tx.commit()
    if reservation_id is not None and cloud is not None:
        cloud.release(reservation_id, now=now)
    return view


def _may_see(db: Database, principal: Principal, member_id: str) -> None:
    """A member's coupons are staff's to see, and the member's own phone's (any other member is
    404 to a phone)."""
    with db.read() as s:
        if not may_act_for(s, principal, member_id):
            raise NotFound(
                f"no member {member_id!r} this phone may act for: a phone claims and lists the "
                "coupons of a member who signed up on it or showed their member code on it",
                code="unknown_member",
                details={"member_id": member_id},
            )


def claim(
    db: Database,
    cloud: CouponCloud | None,
    principal: Principal,
    member_id: str,
    scanned: str,
    *,
    now: datetime,
    retry: Retryable | None = None,
) -> dict[str, Any]:
    """A coupon of the campaign a claim QR names, into the member's account at the cloud
    (claims are the cloud's: 503 ``cloud_unavailable`` when it does not answer)."""
    enrolled_link(db, "claims coupons")
    text = scanned.strip()
    campaign_id = text.removeprefix(coupon_codes.CLAIM_PREFIX).strip()
    if not campaign_id or len(campaign_id) > 48:
        raise Unprocessable("this is not a campaign's claim code", code="claim_invalid")
    _may_see(db, principal, member_id)
    coupon = None if cloud is None else cloud.claim(member_id, campaign_id, now=now)
    if coupon is None:
        raise CloudUnavailable(
            "claiming a coupon needs the cloud, which the store cannot reach now; try again",
            details={"campaign_id": campaign_id},
        )
    out = with_qr(coupon.model_dump())
    # A retry with the same key answers this coupon rather than claiming another.
    with db.raw_write() as tx:
        remember(tx, retry, status=201, body=out, now=now)
        tx.commit()
    return out


def member_coupons(
    db: Database,
    cloud: CouponCloud | None,
    principal: Principal,
    member_id: str,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The member's coupons at the cloud, each with its QR."""
    enrolled_link(db, "reads members' coupons")
    _may_see(db, principal, member_id)
    found = None if cloud is None else cloud.member_coupons(member_id, now=now)
    if found is None:
        raise CloudUnavailable(
            "the member's coupons are the chain's, and the store cannot reach it now; try again",
            details={"member_id": member_id},
        )
    return {"coupons": [with_qr(c.model_dump()) for c in found.coupons]}


def with_qr(coupon: dict[str, Any]) -> dict[str, Any]:
    """A coupon with its QR (SVG) and its id as printed for typing."""
    return {
        **coupon,
        "typed_id": coupon_codes.show_id(coupon["id"]),
        "qr_svg": qr_svg(coupon["code"], scale=3),
    }
