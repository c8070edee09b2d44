"""HTTP routes of members at the store: sign-up, online or offline."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import Field

from edge.api_contract import ApiBlueprint, RequestBody, free_text
from edge.auth.service import Principal
from edge.checkout.schemas import CartOut
from edge.context import StoreContext
from edge.errors import Conflict
from edge.idempotency import Retryable
from edge.members.points import MAX_POINTS, PointsRules, change_member, spend_points
from edge.members.service import find_member, sign_up
from edge.sync_client.link import link_of
from sync.contract import MemberSummary

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
)
def sign_up_member(
    principal: Principal, body: SignUpIn, retry: Retryable | None
) -> tuple[dict[str, Any], int]:
    ctx = _ctx()
    link = link_of(ctx.db)
    if link is None:
        raise Conflict(
            "members are the chain's: this store signs members up once it is enrolled",
            code="not_enrolled",
        )
    view, created = sign_up(
        ctx.db,
        ctx.members_keyring,
        cloud_key=link.cloud_public_key,
        store_id=ctx.settings.store.id,
        phone=body.phone,
        name=body.name,
        device_id=principal.device_id,
        recruited_by=principal.device_id if principal.is_staff else None,
        region=ctx.settings.members.default_region,
        now=ctx.clock.now(),
        retry=retry,
        cloud=ctx.member_cloud,
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
    member, online = find_member(
        ctx.db,
        ctx.members_keyring,
        body.member_code,
        region=ctx.settings.members.default_region,
        now=ctx.clock.now(),
        cloud=ctx.member_cloud,
    )
    return change_member(
        ctx.db,
        ctx.member_cloud,
        principal,
        cart_id,
        member.id,
        now=ctx.clock.now(),
        online=online,
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
        ctx.db, ctx.member_cloud, principal, cart_id, None, now=ctx.clock.now()
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
    errors=(404, 409),
    description="Online, the cloud holds the points for the cart (409 points_insufficient, "
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
        now=ctx.clock.now(),
    ).to_dict()
