"""HTTP routes of stock: on-hand, and staff movements (receive, shrink, adjust)."""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app
from pydantic import BaseModel, Field

from edge.api_contract import ApiBlueprint, RequestBody, free_text
from edge.auth.service import Principal
from edge.context import StoreContext
from edge.idempotency import Retryable
from edge.inventory.service import post_movement, stock_of

api = ApiBlueprint("inventory", "/api/v1")
STAFF = ("handheld", "tablet", "manager")


class MovementIn(RequestBody):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=-1_000_000, le=1_000_000)
    kind: Literal["receive", "shrink", "adjust"]
    reason: str = free_text(default="", max_length=200)


class StockOut(BaseModel):
    sku: str
    name: str
    on_hand: int
    unit: Literal["each", "g"]


class MovementOut(BaseModel):
    id: str
    sku: str
    quantity: int
    kind: str
    reason: str
    on_hand: int
    below_zero: bool
    created_at: str


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "GET",
    "/stock/<sku:sku>",
    summary="Read on-hand stock",
    roles=STAFF,
    connectivity="offline",
    response=StockOut,
    errors=(405,),  # GET /stock/movements: that is the movements route, not a SKU
)
def get_stock(principal: Principal, sku: str) -> dict[str, Any]:
    with _ctx().db.read() as session:
        return stock_of(session, sku).to_dict()


@api.endpoint(
    "POST",
    "/stock/movements",
    summary="Record a stock movement",
    roles=STAFF,
    connectivity="offline",
    body=MovementIn,
    response=MovementOut,
    errors=(404,),
    idempotency="required",
    status=201,
    writes_events=True,
)
def create_movement(
    principal: Principal, body: MovementIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return post_movement(
        ctx.db,
        sku=body.sku,
        quantity=body.quantity,
        kind=body.kind,
        reason=body.reason,
        device_id=principal.device_id,
        staff_id=principal.staff_id,
        now=ctx.clock.now(),
        retry=retry,
    ).to_dict()
