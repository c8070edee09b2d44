"""HQ's API over promotions: write some (each whole, replacing the one of its id; ``active``
false withdraws it) and read them back. Every store pulls them by the ``promotions`` feed."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, Field

from cloud.promotions import service
from cloud.web import CloudApi, QueryParam, RequestBody, ctx
from sync.contract import PromotionItem

api = CloudApi("promotions")


class PromotionsBody(RequestBody):
    promotions: list[PromotionItem] = Field(min_length=1, max_length=service.MAX_PER_WRITE)


class PromotionsOut(BaseModel):
    promotions: list[PromotionItem]


@api.route(
    "PUT",
    "/promotions",
    summary="Write promotions (each replaces the one of its id); every store pulls them",
    caller="hq",
    body=PromotionsBody,
    response=PromotionsOut,
    errors=(422,),
    description="Kinds: percent_off, amount_off, member_price, buy_x_get_y, bundle, threshold, "
    "every; stages line, basket, coupon, run in that order. Amounts in minor units, "
    "percentages in basis points. active false withdraws a promotion from every store.",
)
def put_promotions(caller: Any, body: PromotionsBody) -> dict[str, Any]:
    c = ctx()
    with c.db.write() as uow:
        saved = service.put_promotions(uow.session, body.promotions, now=c.clock.now())
        uow.commit()
    return {"promotions": [item.to_dict() for item in saved]}


@api.route(
    "GET",
    "/promotions",
    summary="Read the chain's promotions, in id order",
    caller="hq",
    response=PromotionsOut,
    query=(
        QueryParam(
            "active", {"type": "string", "enum": ["true", "false"]}, "true: only those in force"
        ),
    ),
)
def read_promotions(caller: Any) -> dict[str, Any]:
    active_only = request.args.get("active", "").lower() == "true"
    with ctx().db.read() as session:
        items = service.list_promotions(session, active_only=active_only)
    return {"promotions": [item.to_dict() for item in items]}
