"""HQ's read API over the stores' sales: keyset pages, each sale exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import url_for
from pydantic import BaseModel

from cloud.sales.service import daily_sales, sales_page
from cloud.web import CloudApi, ctx, int_arg, whole_number_param

api = CloudApi("sales")

MAX_LIMIT = 500


class DaySales(BaseModel):
    store_id: str
    date: str
    sales: int
    total: int
    currency: str


class DailySalesOut(BaseModel):
    days: list[DaySales]


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


@api.route(
    "GET",
    "/reports/daily-sales",
    summary="Sales and their total per store and day (the store's calendar), newest day first",
    caller="hq",
    response=DailySalesOut,
    query=(whole_number_param("days", low=1, high=92, description="how many days back"),),
)
def get_daily_sales(caller: Any) -> dict[str, Any]:
    days = int_arg("days", default=14, low=1, high=92)
    since = ctx().clock.now() - timedelta(days=days)
    return {"days": daily_sales(ctx().db, since=since)}
