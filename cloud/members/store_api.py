"""The member calls a store makes while online (signed like its pushes; answers signed by the
cloud): find a member, sign one up, read their ledger, hold points for a cart and give a hold
back. The rules are
in :mod:`cloud.members.store_calls`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from cloud.members import store_calls
from cloud.members.api import LEDGER_QUERY, ledger_answer, lookup_text
from cloud.members.effects import MemberRules
from cloud.web import CloudApi, QueryParam, ctx
from sync.contract import HoldRequest, LedgerPage, MemberSignedUp, PointsHeld, StoreMember

api = CloudApi("store_members")


class ReleasedOut(BaseModel):
    released: bool  # False: no live hold had this id (burned, lapsed or released already)


@api.route(
    "GET",
    "/store/members",
    summary="Find a member for a store's checkout, by phone number or member code",
    caller="store",
    response=StoreMember,
    query=(
        QueryParam("phone", {"type": "string", "maxLength": 32}, "a mobile number", False),
        QueryParam("code", {"type": "string", "maxLength": 32}, "a member code", False),
    ),
    errors=(404, 422),
    description="The surviving member of a merge, with the phone and name sealed to the "
    "asking store's key. The answer is signed with the cloud's key.",
)
def find_for_store(caller: Any) -> dict[str, Any]:
    c = ctx()
    return store_calls.look_up(
        c.db, MemberRules.of(c), caller.store_id, lookup_text()[:32], now=c.clock.now()
    )


@api.route(
    "POST",
    "/store/members",
    summary="Register a store's sign-up now (the same document as its member.signed_up event)",
    caller="store",
    body=MemberSignedUp,
    response=StoreMember,
    status=201,
    errors=(403, 404, 422),
    description="201 for a new member; 200 with the phone's member when the chain knows the "
    "phone already (the store keeps that member). The event sent later changes nothing.",
)
def sign_up_for_store(caller: Any, body: MemberSignedUp) -> tuple[dict[str, Any], int]:
    c = ctx()
    member, created = store_calls.sign_up(
        c.db, MemberRules.of(c), caller.store_id, body, now=c.clock.now()
    )
    return member, 201 if created else 200


@api.route(
    "POST",
    "/store/members/<member_id>/holds",
    summary="Hold a member's points for a cart (the hold lapses after the cloud's hold time)",
    caller="store",
    body=HoldRequest,
    response=PointsHeld,
    status=201,
    errors=(403, 404, 409, 422),
    description="409 points_insufficient, with what is available, when the balance less the "
    "live holds is short. The same hold_id again answers the first hold.",
)
def hold_points(caller: Any, member_id: str, body: HoldRequest) -> dict[str, Any]:
    c = ctx()
    return store_calls.hold(
        c.db,
        caller.store_id,
        member_id,
        hold_id=body.hold_id,
        points=body.points,
        ttl=timedelta(seconds=c.settings.members.hold_ttl_s),
        now=c.clock.now(),
    )


@api.route(
    "GET",
    "/store/members/<member_id>/ledger",
    summary="Read a member's ledger for the member's own phone, through their store",
    caller="store",
    response=LedgerPage,
    query=LEDGER_QUERY,
    errors=(404,),
    description="The same page as HQ's ledger route; the store decides which device may see it.",
)
def ledger_for_store(caller: Any, member_id: str) -> dict[str, Any]:
    return ledger_answer(member_id)


@api.route(
    "DELETE",
    "/store/holds/<hold_id>",
    summary="Give back a hold this store placed (a cart abandoned or its points taken off)",
    caller="store",
    response=ReleasedOut,
    errors=(403,),
)
def release_hold(caller: Any, hold_id: str) -> dict[str, Any]:
    return {"released": store_calls.release(ctx().db, caller.store_id, hold_id[:64])}
