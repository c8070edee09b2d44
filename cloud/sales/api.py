"""HQ's read API over the stores' sales: keyset pages, each sale exactly once."""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import BaseModel

from cloud.sales.service import sales_page
from cloud.web import CloudApi, ctx, int_arg, whole_number_param

api = CloudApi("sales")

MAX_LIMIT = 500


class SalesOut(BaseModel):
    sales: list[dict[str, Any]]
    next: str | None


@api.route(
    "GET",
    "/stores/<store_id>/sales",
    summary="Read a page of a store's sales in its sequence order",
    caller="hq",
    response=SalesOut,
    errors=(404,),
    query=(
        whole_number_param("limit", low=1, high=MAX_LIMIT),
        whole_number_param("after", low=0, high=2**62, description="the seq the last page ended"),
    ),
)
def store_sales(caller: Any, store_id: str) -> dict[str, Any]:
    """``{"sales": [...], "next": URL or null}`` in the store's sequence order (HQ)."""
    limit = int_arg("limit", default=100, low=1, high=MAX_LIMIT)
    after = int_arg("after", default=0, low=0, high=2**62)
    sales, last_seq, more = sales_page(ctx().db, store_id, after_seq=after, limit=limit)
    next_url = (
        url_for(".store_sales", store_id=store_id, limit=limit, after=last_seq, _external=True)
        if more
        else None
    )
    return {"sales": sales, "next": next_url}
