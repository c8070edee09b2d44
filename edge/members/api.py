"""HTTP routes of members at the store: sign-up, online or offline."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import Field

from edge.api_contract import ApiBlueprint, RequestBody, free_text
from edge.auth.service import Principal
from edge.checkout.schemas import CartOut
from edge.context import StoreContext
from edge.idempotency import Retryable
from edge.members.points import (
    MAX_POINTS,
    PointsRules,
    change_member,
    spend_points,
)
from edge.members.points import attach_member as attach_found
from edge.members.service import MAX_LEDGER_PAGE, enrolled_link, member_ledger, sign_up
from sync.contract import LedgerPage, MemberSummary

api = ApiBlueprint("members", "/api/v1")
#: Who may sign a member up: the shopper at a kiosk or on their phone, and staff.
SIGN_UP_ROLES = ("kiosk", "phone", "handheld", "tablet", "manager")
#: Who may attach a member to a cart: whoever may change the cart.
CART_ROLES = ("kiosk", "phone", "tablet", "manager")


class SignUpIn(RequestBody):
    phone: str = Field(min_length=1, max_length=32)
    name: str | None = free_text(default=None, max_length=100)


class AttachIn(RequestBody):
    # What the member shows (the code in their app's QR) or says (their phone number).
    member_code: str = Field(min_length=1, max_length=32)


class MemberOut(MemberSummary):
    # None: withheld from a shopper's device that typed a phone the chain knew already (the
    # code proves the member; it shows in their own app)
    code: str | None  # type: ignore[assignment]
    provisional: bool  # signed up here offline; the cloud has not confirmed it yet


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "POST",
    "/members",
    summary="Sign a member up (works offline); a phone already known answers its member",
    roles=SIGN_UP_ROLES,
    connectivity="offline",
    body=SignUpIn,
    response=MemberOut,
    status=201,
    idempotency="optional",
    writes_events=True,
    errors=(409,),
    description="On a shopper's kiosk or phone, a phone the chain knows answers its member "
    "without the member code (anyone may type a phone number). A member signed up on a "
    "shopper's phone may read their ledger on it.",
)
def sign_up_member(
    principal: Principal, body: SignUpIn, retry: Retryable | None
) -> tuple[dict[str, Any], int]:
    ctx = _ctx()
    link = enrolled_link(ctx.db, "signs members up")
    view, created = sign_up(
        ctx.db,
        ctx.members_keyring,
        cloud_key=link.cloud_public_key,
        store_id=ctx.settings.store.id,
        phone=body.phone,
        name=body.name,
        device_id=principal.device_id,
        # Who recruited them: the staff member signed in, else the staff device.
        recruited_by=principal.staff_id or (principal.device_id if principal.is_staff else None),
        region=ctx.settings.members.default_region,
        now=ctx.clock.now(),
        retry=retry,
        cloud=ctx.member_cloud,
        device_role=principal.role,
    )
    return view.to_dict(), 201 if created else 200


@api.endpoint(
    "PUT",
    "/carts/<cart_id>/member",
    summary="Attach a member to a cart by member code or phone number",
    roles=CART_ROLES,
    connectivity="offline",
    body=AttachIn,
    response=CartOut,
    errors=(404, 409),
    description="The cloud is asked first, within the store's short member timeout; when it "
    "does not answer, the store's own copy (member.offline is then true).",
)
def attach_member(principal: Principal, cart_id: str, body: AttachIn) -> dict[str, Any]:
    ctx = _ctx()
    return attach_found(
        ctx.db,
        ctx.members_keyring,
        ctx.member_cloud,
        principal,
        cart_id,
        body.member_code,
        region=ctx.settings.members.default_region,
        shop=ctx.shop,
        now=ctx.clock.now(),
    ).to_dict()


@api.endpoint(
    "DELETE",
    "/carts/<cart_id>/member",
    summary="Detach the member from a cart (the points they spent on it come off too)",
    roles=CART_ROLES,
    connectivity="offline",
    response=CartOut,
    errors=(409,),
)
def detach_member(principal: Principal, cart_id: str) -> dict[str, Any]:
    ctx = _ctx()
    return change_member(
        ctx.db, ctx.member_cloud, principal, cart_id, None, shop=ctx.shop, now=ctx.clock.now()
    ).to_dict()


class PointsIn(RequestBody):
    points: int = Field(ge=0, le=MAX_POINTS)  # 0: spend none


@api.endpoint(
    "PUT",
    "/carts/<cart_id>/points",
    summary="Spend the cart's member's points on it: they pay part of the total",
    roles=CART_ROLES,
    connectivity="offline",
    body=PointsIn,
    response=CartOut,
    errors=(403, 404, 409),
    description="403 member_code_required on a shopper's kiosk or phone when the member was "
    "attached by phone number rather than by the member code their app shows. "
    "Online, the cloud holds the points for the cart (409 points_insufficient, "
    "with what is available, when they are not free). Offline, at most the smaller of the "
    "balance this store knows and the daily offline cap (409 points_offline_limit, with the "
    "limit). 409 no_member without a member; 409 points_exceed_total beyond the total.",
)
def spend(principal: Principal, cart_id: str, body: PointsIn) -> dict[str, Any]:
    ctx = _ctx()
    return spend_points(
        ctx.db,
        ctx.member_cloud,
        principal,
        cart_id,
        body.points,
        PointsRules.of(ctx.settings),
        shop=ctx.shop,
        now=ctx.clock.now(),
    ).to_dict()


@api.endpoint(
    "DELETE",
    "/carts/<cart_id>/points",
    summary="Take the member's points off the cart (their hold is given back)",
    roles=CART_ROLES,
    connectivity="offline",
    response=CartOut,
    errors=(404, 409),
)
def unspend(principal: Principal, cart_id: str) -> dict[str, Any]:
    ctx = _ctx()
    return spend_points(
        ctx.db,
        ctx.member_cloud,
        principal,
        cart_id,
        0,
        PointsRules.of(ctx.settings),
        shop=ctx.shop,
        now=ctx.clock.now(),
    ).to_dict()


class LedgerQuery(RequestBody):
    """``?after=<the last entry id read>&limit=<entries>``."""

    after: int = Field(default=0, ge=0, le=2**62, strict=False)
    limit: int = Field(default=50, ge=1, le=MAX_LEDGER_PAGE, strict=False)


#: Who may read a member's ledger through the store: staff, and the member's own phone.
LEDGER_ROLES = ("phone", "tablet", "manager")


@api.endpoint(
    "GET",
    "/members/<member_id>/ledger",
    summary="Read a member's points ledger (the cloud's): every entry and why it happened",
    roles=LEDGER_ROLES,
    connectivity="online_only",
    response=LedgerPage,
    query=LedgerQuery,
    errors=(404, 409, 422, 503),
    description="A shopper's phone reads only a member who signed up on it or showed their "
    "member code on it (any other is 404 unknown_member to it); staff read any. 503 "
    "cloud_unavailable, with the balance the store knows, while the cloud cannot be reached; "
    "409 not_enrolled before the store is enrolled.",
)
def ledger(principal: Principal, member_id: str, query: LedgerQuery) -> dict[str, Any]:
    ctx = _ctx()
    return member_ledger(
        ctx.db,
        ctx.member_cloud,
        principal,
        member_id,
        after=query.after,
        limit=query.limit,
        now=ctx.clock.now(),
    )
