"""HTTP routes of coupons at the store: on and off a cart, claimed by a campaign's QR, listed
for the member's own phone."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel, Field

from edge.api_contract import ApiBlueprint, RequestBody
from edge.auth.service import Principal
from edge.checkout.schemas import CartOut
from edge.context import StoreContext
from edge.coupons import at_checkout
from edge.idempotency import Retryable

api = ApiBlueprint("coupons", "/api/v1")
#: Who may put a coupon on a cart: whoever may change the cart.
CART_ROLES = ("kiosk", "phone", "tablet", "manager")
#: Who may claim and list a member's coupons: the member's own phone, and staff.
MEMBER_ROLES = ("phone", "tablet", "manager")


class CouponIn(RequestBody):
    # What the coupon's QR holds (its signed code), or its id as printed under it.
    code: str = Field(min_length=1, max_length=200)


class ClaimIn(RequestBody):
    # What the campaign's claim QR holds (AISLE-CLAIM:<campaign id>), or the campaign's id.
    claim: str = Field(min_length=1, max_length=80)


class MemberCouponOut(BaseModel):
    id: str
    typed_id: str  # the id as printed for typing, e.g. 8EQW-YN7V-B4C2-VYDY
    campaign_id: str
    name: str
    member_id: str
    code: str  # what the coupon's QR holds
    qr_svg: str
    status: str
    valid_from: str
    valid_until: str
    issued_at: str


class MemberCouponsOut(BaseModel):
    coupons: list[MemberCouponOut]


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "POST",
    "/carts/<cart_id>/coupons",
    summary="Put a coupon on a cart, by the code its QR holds or its printed id",
    roles=CART_ROLES,
    connectivity="offline_bounded",
    body=CouponIn,
    response=CartOut,
    idempotency="optional",
    errors=(404, 409, 422),
    description="Online, the cloud reserves the coupon for the cart; offline, the store "
    "accepts a coupon whose signature and dates hold and that it has not seen used (a typed id "
    "needs the cloud: 409 coupon_needs_scan). 422 coupon_invalid (forged or not a code); 409 "
    "coupon_expired, coupon_not_yet_valid, coupon_used, coupon_reserved, coupon_in_cart, "
    "campaign_in_cart, coupon_withdrawn, coupon_unknown_campaign, coupon_budget_reached, "
    "coupon_not_eligible (details.reason: no_member, other_member, wrong_store, min_spend "
    "with short_by, no_eligible_items, not_now). A campaign's public code is taken within this "
    "store's quota, offline too: 409 coupon_quota_reached, coupon_member_limit.",
)
def add_coupon(
    principal: Principal, cart_id: str, body: CouponIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return at_checkout.apply_coupon(
        ctx.db,
        ctx.coupon_cloud,
        principal,
        cart_id,
        body.code,
        shop=ctx.shop,
        now=ctx.clock.now(),
        retry=retry,
    ).to_dict()


@api.endpoint(
    "DELETE",
    "/carts/<cart_id>/coupons/<coupon_id>",
    summary="Take a coupon off a cart (its reservation at the cloud is given back)",
    roles=CART_ROLES,
    connectivity="offline",
    response=CartOut,
    errors=(404, 409),
)
def remove_coupon(principal: Principal, cart_id: str, coupon_id: str) -> dict[str, Any]:
    ctx = _ctx()
    return at_checkout.remove_coupon(
        ctx.db,
        ctx.coupon_cloud,
        principal,
        cart_id,
        coupon_id[:32],
        shop=ctx.shop,
        now=ctx.clock.now(),
    ).to_dict()


@api.endpoint(
    "POST",
    "/members/<member_id>/coupons",
    summary="Claim a coupon of a campaign for a member, by the campaign's claim QR",
    roles=MEMBER_ROLES,
    connectivity="online_only",
    body=ClaimIn,
    response=MemberCouponOut,
    status=201,
    idempotency="optional",
    errors=(404, 409, 422, 503),
    description="A shopper's phone claims only for a member who signed up on it or showed "
    "their member code on it. 409 coupon_member_limit, coupon_cap_reached, campaign_ended, "
    "campaign_inactive; 503 cloud_unavailable while the cloud cannot be reached.",
)
def claim(
    principal: Principal, member_id: str, body: ClaimIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return at_checkout.claim(
        ctx.db,
        ctx.coupon_cloud,
        principal,
        member_id[:64],
        body.claim,
        now=ctx.clock.now(),
        retry=retry,
    )


@api.endpoint(
    "GET",
    "/members/<member_id>/coupons",
    summary="A member's coupons (the cloud's), each with its QR",
    roles=MEMBER_ROLES,
    connectivity="online_only",
    response=MemberCouponsOut,
    errors=(404, 409, 503),
)
def coupons(principal: Principal, member_id: str) -> dict[str, Any]:
    ctx = _ctx()
    return at_checkout.member_coupons(
        ctx.db, ctx.coupon_cloud, principal, member_id[:64], now=ctx.clock.now()
    )
