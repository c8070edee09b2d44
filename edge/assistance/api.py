"""HTTP routes of the attendant's board: a shopper calls for assistance, the tablet polls the
board (with its ETag: 304 while nothing changed) and answers calls."""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app, jsonify, request
from pydantic import BaseModel, Field

from edge.api_contract import ApiBlueprint, HeaderParam, RequestBody
from edge.assistance import service
from edge.auth.service import Principal
from edge.context import StoreContext
from edge.idempotency import Retryable

api = ApiBlueprint("assistance", "/api/v1")
SHOPPERS = ("kiosk", "phone")
ATTENDANTS = ("handheld", "tablet", "manager")
IF_NONE_MATCH = HeaderParam(
    "If-None-Match",
    False,
    {"type": "string"},
    "The ETag of the board the tablet already shows: 304 while it is still the board.",
)


class CallIn(RequestBody):
    reason: Literal["help", "scale", "payment", "item"] = "help"
    cart_id: str | None = Field(default=None, max_length=36)


class CallOut(BaseModel):
    id: str
    device_id: str
    device_name: str
    device_role: str
    cart_id: str | None
    reason: str
    created_at: str
    answered_at: str | None
    answered_by: str | None


class OwnCallOut(BaseModel):
    call: CallOut | None


class WaitingItem(BaseModel):
    line_id: str
    name: str
    quantity: int


class WaitingCart(BaseModel):
    cart_id: str
    channel: str
    device_id: str
    device_name: str
    device_role: str
    items: list[WaitingItem]
    since: str


class BoardOut(BaseModel):
    calls: list[CallOut]
    approvals: list[WaitingCart]
    etag: str


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "POST",
    "/assistance",
    summary="Call an attendant to this kiosk or phone (its cart, if it names one)",
    roles=SHOPPERS,
    connectivity="offline",
    body=CallIn,
    response=CallOut,
    status=201,
    errors=(404, 409),
    idempotency="optional",
    description="A device has one call open at a time: calling again answers that call (200).",
)
def call_for_assistance(
    principal: Principal, body: CallIn, retry: Retryable | None
) -> tuple[dict[str, Any], int]:
    ctx = _ctx()
    made, new = service.call(
        ctx.db,
        principal,
        cart_id=body.cart_id,
        reason=body.reason,
        now=ctx.clock.now(),
        retry=retry,
    )
    return made.to_dict(), 201 if new else 200


@api.endpoint(
    "GET",
    "/assistance/mine",
    summary="This kiosk's or phone's own call, while nobody has answered it",
    roles=SHOPPERS,
    connectivity="offline",
    response=OwnCallOut,
)
def own_call(principal: Principal) -> dict[str, Any]:
    made = service.own_call(_ctx().db, principal)
    return {"call": None if made is None else made.to_dict()}


@api.endpoint(
    "GET",
    "/assistance",
    summary="The attendant's board: open calls and carts waiting for an age check",
    roles=ATTENDANTS,
    connectivity="offline",
    response=BoardOut,
    headers=(IF_NONE_MATCH,),
    description="Poll it with If-None-Match set to the last answer's ETag: 304 and no body "
    "while nothing on the board changed.",
)
def get_board(principal: Principal) -> Any:
    ctx = _ctx()
    content = service.board(ctx.db, now=ctx.clock.now())
    answer = jsonify(content)
    answer.set_etag(content["etag"])
    answer.headers["Cache-Control"] = "no-cache"
    answer.make_conditional(request)
    return answer, answer.status_code


@api.endpoint(
    "POST",
    "/assistance/<call_id>/answer",
    summary="Answer a shopper's call: it leaves the board",
    roles=ATTENDANTS,
    connectivity="offline",
    response=CallOut,
    errors=(404,),
    idempotency="optional",
)
def answer_call(principal: Principal, call_id: str, retry: Retryable | None) -> dict[str, Any]:
    ctx = _ctx()
    return service.answer(ctx.db, principal, call_id, now=ctx.clock.now(), retry=retry).to_dict()
