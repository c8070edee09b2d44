"""The members API of the chain's other sales channels (an online shop, a mini-program), each
with its own token (``aisle cloud token --role channel --name NAME``): sign members up, find
them, read their points, earn and burn points for the channel's orders and hold points for a
checkout. Every write needs an Idempotency-Key (the rules: :mod:`cloud.members.channels`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request
from pydantic import BaseModel, Field

from cloud.members import channels, service
from cloud.members.api import (
    LEDGER_QUERY,
    LOOKUP_QUERY,
    LedgerOut,
    MemberOut,
    MembersOut,
    ledger_answer,
    looked_up,
)
from cloud.stores.callers import TokenHolder
from cloud.web import CloudApi, RequestBody, ctx
from shared.idempotency import check_key
from shared.text import FREE_TEXT_PATTERN

api = CloudApi("channel", url_prefix="/api/v1/channel")

#: Points one order may earn or burn, and the spend it may name (minor units).
MAX_POINTS = 10_000_000
MAX_SPEND = 10**12

ALREADY_KNOWN = {200: "the phone already had a member: that member"}
ALREADY_RECORDED = {200: "the order's entry was already recorded (under another key): that entry"}


class SignUpBody(RequestBody):
    phone: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=FREE_TEXT_PATTERN)


class EarnBody(RequestBody):
    order_id: str = Field(pattern=channels.ORDER_ID_PATTERN, description="the channel's order")
    points: int = Field(ge=1, le=MAX_POINTS)
    spend: int = Field(ge=0, le=MAX_SPEND, description="what the order cost, in minor units")


class BurnBody(RequestBody):
    order_id: str = Field(pattern=channels.ORDER_ID_PATTERN, description="the channel's order")
    points: int = Field(ge=1, le=MAX_POINTS)
    hold_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="the channel's hold it spends"
    )


class HoldBody(RequestBody):
    points: int = Field(ge=1, le=MAX_POINTS)


class PointsMovedOut(BaseModel):
    entry_id: int
    member_id: str
    order_id: str
    kind: str  # earn or burn
    points: int  # the entry's: negative for a burn
    spend: int
    balance: int  # the member's balance after it
    available: int  # the balance less the live holds


class HoldOut(BaseModel):
    hold_id: str
    member_id: str
    points: int
    status: str  # held, burned, released
    expires_at: str
    available: int


def _channel(caller: TokenHolder) -> channels.Channel:
    return channels.Channel(name=caller.name, token_id=caller.token_id)


def _key() -> str:
    key = check_key(request.headers.get("Idempotency-Key"), required=True)
    assert key is not None
    return key


@api.route(
    "POST",
    "/members",
    summary="Sign a member up through this channel; a phone already known answers its member",
    caller="channel",
    body=SignUpBody,
    response=MemberOut,
    status=201,
    other_successes=ALREADY_KNOWN,
    idempotent=True,
)
def sign_up(caller: TokenHolder, body: SignUpBody) -> tuple[dict[str, Any], int]:
    c = ctx()
    return channels.sign_up(
        c.db,
        c.members_keyring,
        _channel(caller),
        phone=body.phone,
        name=body.name,
        key=_key(),
        region=c.settings.members.default_region,
        now=c.clock.now(),
    )


@api.route(
    "GET",
    "/members",
    summary="Find the member a phone number or member code names",
    caller="channel",
    response=MembersOut,
    query=LOOKUP_QUERY,
    errors=(404,),
)
def find_member(caller: TokenHolder) -> dict[str, Any]:
    return looked_up()


@api.route(
    "GET",
    "/members/<member_id>",
    summary="Read a member: masked phone, tier, balance and points free to spend",
    caller="channel",
    response=MemberOut,
    errors=(404,),
)
def read_member(caller: TokenHolder, member_id: str) -> dict[str, Any]:
    c = ctx()
    return service.read_member(c.db, c.members_keyring, member_id, now=c.clock.now())


@api.route(
    "GET",
    "/members/<member_id>/ledger",
    summary="Read a member's points ledger, a page at a time",
    caller="channel",
    response=LedgerOut,
    query=LEDGER_QUERY,
    errors=(404,),
)
def member_ledger(caller: TokenHolder, member_id: str) -> dict[str, Any]:
    return ledger_answer(member_id)


@api.route(
    "POST",
    "/members/<member_id>/earn",
    summary="Earn points for one of the channel's orders",
    caller="channel",
    body=EarnBody,
    response=PointsMovedOut,
    status=201,
    other_successes=ALREADY_RECORDED,
    idempotent=True,
    errors=(404,),
)
def earn(caller: TokenHolder, member_id: str, body: EarnBody) -> tuple[dict[str, Any], int]:
    c = ctx()
    return channels.earn(
        c.db,
        c.members_keyring,
        _channel(caller),
        member_id,
        order_id=body.order_id,
        points=body.points,
        spend=body.spend,
        key=_key(),
        now=c.clock.now(),
        expiry=timedelta(days=c.settings.members.points_expiry_days),
    )


@api.route(
    "POST",
    "/members/<member_id>/burn",
    summary="Spend points on one of the channel's orders (409 beyond what is free)",
    caller="channel",
    body=BurnBody,
    response=PointsMovedOut,
    status=201,
    other_successes=ALREADY_RECORDED,
    idempotent=True,
    errors=(404,),
)
def burn(caller: TokenHolder, member_id: str, body: BurnBody) -> tuple[dict[str, Any], int]:
    c = ctx()
    return channels.burn(
        c.db,
        c.members_keyring,
        _channel(caller),
        member_id,
        order_id=body.order_id,
        points=body.points,
        hold_id=body.hold_id,
        key=_key(),
        now=c.clock.now(),
    )


@api.route(
    "POST",
    "/members/<member_id>/holds",
    summary="Hold points for a checkout until a burn spends them or they are released",
    caller="channel",
    body=HoldBody,
    response=HoldOut,
    status=201,
    idempotent=True,
    errors=(404,),
)
def place_hold(caller: TokenHolder, member_id: str, body: HoldBody) -> tuple[dict[str, Any], int]:
    c = ctx()
    return channels.hold(
        c.db,
        c.members_keyring,
        _channel(caller),
        member_id,
        points=body.points,
        key=_key(),
        now=c.clock.now(),
        ttl=timedelta(seconds=c.settings.members.hold_ttl_s),
    )


@api.route(
    "DELETE",
    "/members/<member_id>/holds/<hold_id>",
    summary="Release the channel's hold (a checkout abandoned)",
    caller="channel",
    response=HoldOut,
    idempotent=True,
    errors=(404,),
)
def release_hold(caller: TokenHolder, member_id: str, hold_id: str) -> tuple[dict[str, Any], int]:
    c = ctx()
    return channels.release(
        c.db,
        c.members_keyring,
        _channel(caller),
        member_id,
        hold_id,
        key=_key(),
        now=c.clock.now(),
    )
