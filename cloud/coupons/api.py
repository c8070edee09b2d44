"""Coupons over HTTP: HQ writes campaigns, issues coupons and prints a campaign's claim QR; a
store, online, claims a coupon for a member, turns a typed coupon id into its code, and reserves
a coupon for a cart. The rules are :mod:`cloud.coupons.service`'s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request
from pydantic import BaseModel, Field

from cloud.coupons import service
from cloud.web import CloudApi, QueryParam, RequestBody, ctx
from shared.qr import qr_svg
from sync.contract import (
    CampaignItem,
    ClaimRequest,
    CouponList,
    CouponOut,
    CouponReserved,
    QuotaOut,
    ReserveRequest,
    UuidText,
)

api = CloudApi("coupons")


class CampaignsBody(RequestBody):
    campaigns: list[CampaignItem] = Field(min_length=1, max_length=service.MAX_PER_WRITE)


class CampaignsOut(BaseModel):
    campaigns: list[CampaignItem]


class IssueBody(RequestBody):
    member_id: UuidText


class ClaimQrOut(BaseModel):
    campaign_id: str
    claim: str  # the text the QR holds
    qr_svg: str


class ReleasedOut(BaseModel):
    released: bool


class QuotasOut(BaseModel):
    campaign_id: str
    public_code: str | None
    cap: int | None
    unallocated: int
    quotas: list[QuotaOut]


def _issuer() -> service.Issuer:
    return service.Issuer(key=ctx().cloud_key)


@api.route(
    "PUT",
    "/campaigns",
    summary="Write coupon campaigns (each replaces the one of its id); every store pulls them",
    caller="hq",
    body=CampaignsBody,
    response=CampaignsOut,
    errors=(409, 422),
    description="offer is any promotion kind (its stage is coupon); starts and ends bound "
    "every coupon; per_member_limit, cap (coupons issued) and budget (minor units taken off) "
    "bound the campaign. active false withdraws it. public_code makes it a public campaign: "
    "its cap is split into store quotas (409 public_code_taken when another campaign has the "
    "code).",
)
def put_campaigns(caller: Any, body: CampaignsBody) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        saved = service.put_campaigns(uow.session, body.campaigns, now=c.clock.now())
        uow.commit()
    return {"campaigns": [item.to_dict() for item in saved]}


@api.route(
    "GET",
    "/campaigns",
    summary="Read the chain's coupon campaigns, in id order",
    caller="hq",
    response=CampaignsOut,
    query=(
        QueryParam(
            "active", {"type": "string", "enum": ["true", "false"]}, "true: only those in force"
        ),
    ),
)
def read_campaigns(caller: Any) -> dict[str, Any]:
    active_only = request.args.get("active", "").lower() == "true"
    with ctx().db.read() as session:
        items = service.list_campaigns(session, active_only=active_only)
    return {"campaigns": [item.to_dict() for item in items]}


@api.route(
    "POST",
    "/campaigns/<campaign_id>/coupons",
    summary="Issue a coupon of the campaign to a member",
    caller="hq",
    body=IssueBody,
    response=CouponOut,
    status=201,
    errors=(404, 409, 422),
    description="409 campaign_inactive, campaign_ended, campaign_public, coupon_member_limit or "
    "coupon_cap_reached. code is what the coupon's QR holds; id is what a shopper types.",
)
def issue_coupon(caller: Any, campaign_id: str, body: IssueBody) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        out = service.issue(
            uow.session,
            _issuer(),
            campaign_id[:48],
            body.member_id,
            via="hq",
            store_id=None,
            now=c.clock.now(),
        )
        uow.commit()
    return out


@api.route(
    "GET",
    "/campaigns/<campaign_id>/claim",
    summary="A campaign's claim QR, for posters and shelf edges",
    caller="hq",
    response=ClaimQrOut,
    errors=(404,),
    description="A shopper's phone in a store scans it and claims a coupon into the member's "
    "account (the store's POST /api/v1/members/{id}/coupons). A public campaign's QR holds its "
    "public code, which goes straight onto a cart.",
)
def claim_qr(caller: Any, campaign_id: str) -> dict[str, Any]:
    with ctx().db.read() as session:
        item = service.campaign(session, campaign_id[:48])
    claim = service.claim_text(item)
    return {
        "campaign_id": item.id,
        "claim": claim,
        "qr_svg": qr_svg(claim, scale=6),
    }


@api.route(
    "GET",
    "/campaigns/<campaign_id>/quotas",
    summary="A public campaign's quota in each store, what each used, what is not handed out",
    caller="hq",
    response=QuotasOut,
    errors=(404,),
    description="The cloud hands out more of the cap as stores use theirs (a store that used "
    "three quarters of its quota gets more, by pull); a quota never goes down.",
)
def read_quotas(caller: Any, campaign_id: str) -> dict[str, Any]:
    with ctx().db.read() as session:
        return service.quotas(session, campaign_id[:48])


@api.route(
    "GET",
    "/members/<member_id>/coupons",
    summary="A member's coupons, newest first",
    caller="hq",
    response=CouponList,
    errors=(404,),
)
def member_coupons(caller: Any, member_id: str) -> dict[str, Any]:
    with ctx().db.read() as session:
        return {"coupons": service.member_coupons(session, member_id[:64])}


# -- what stores ask while online -------------------------------------------------------------


@api.route(
    "POST",
    "/store/members/<member_id>/coupons",
    summary="Claim a coupon of a campaign for a member in a store (the campaign's claim QR)",
    caller="store",
    body=ClaimRequest,
    response=CouponOut,
    status=201,
    errors=(404, 409, 422),
    description="The same limits as HQ issuing one: 409 coupon_member_limit, "
    "coupon_cap_reached, campaign_ended, campaign_inactive.",
)
def claim_for_store(caller: Any, member_id: str, body: ClaimRequest) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        out = service.issue(
            uow.session,
            _issuer(),
            body.campaign_id,
            member_id[:64],
            via="claim",
            store_id=caller.store_id,
            now=c.clock.now(),
        )
        uow.commit()
    return out


@api.route(
    "GET",
    "/store/members/<member_id>/coupons",
    summary="A member's coupons, for the member's own phone through their store",
    caller="store",
    response=CouponList,
    errors=(404,),
)
def member_coupons_for_store(caller: Any, member_id: str) -> dict[str, Any]:
    with ctx().db.read() as session:
        return {"coupons": service.member_coupons(session, member_id[:64])}


@api.route(
    "GET",
    "/store/coupons/<coupon_id>",
    summary="The coupon a typed coupon id names, with its signed code",
    caller="store",
    response=CouponOut,
    errors=(404,),
)
def find_for_store(caller: Any, coupon_id: str) -> dict[str, Any]:
    with ctx().db.read() as session:
        return service.find(session, coupon_id[:32])


@api.route(
    "POST",
    "/store/coupons/<coupon_id>/reservations",
    summary="Reserve a coupon for a cart (the reservation lapses after the cloud's hold time)",
    caller="store",
    body=ReserveRequest,
    response=CouponReserved,
    status=201,
    errors=(403, 404, 409, 422),
    description="409 coupon_used, coupon_reserved (on another cart), coupon_not_eligible "
    "(another member's) or coupon_budget_reached. The same reservation_id again refreshes it. "
    "The sale's event turns it into the redemption.",
)
def reserve(caller: Any, coupon_id: str, body: ReserveRequest) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        out = service.reserve(
            uow.session,
            caller.store_id,
            coupon_id[:16],
            reservation_id=body.reservation_id,
            member_id=body.member_id,
            amount=body.amount,
            ttl=timedelta(seconds=c.settings.members.hold_ttl_s),
            now=c.clock.now(),
        )
        uow.commit()
    return out


@api.route(
    "DELETE",
    "/store/coupon-reservations/<reservation_id>",
    summary="Give back a coupon reservation (the coupon came off the cart)",
    caller="store",
    response=ReleasedOut,
    errors=(403,),
)
def release(caller: Any, reservation_id: str) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        released = service.release(uow.session, caller.store_id, reservation_id[:64])
        uow.commit()
    return {"released": released}
