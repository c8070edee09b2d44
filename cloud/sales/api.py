"""HQ's read API over the stores' sales: keyset pages, each sale exactly once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, url_for

from cloud.sales.service import sales_page
from cloud.web import ctx, hq_caller, int_arg

api = Blueprint("sales", __name__, url_prefix="/api/v1")

MAX_LIMIT = 500


@api.get("/stores/<store_id>/sales")
def store_sales(store_id: str) -> dict[str, Any]:
    """``{"sales": [...], "next": URL or null}`` in the store's sequence order (HQ)."""
    hq_caller()
    limit = int_arg("limit", default=100, low=1, high=MAX_LIMIT)
    after = int_arg("after", default=0, low=0, high=2**62)
    sales, last_seq, more = sales_page(ctx().db, store_id, after_seq=after, limit=limit)
    next_url = (
        url_for(".store_sales", store_id=store_id, limit=limit, after=last_seq, _external=True)
        if more
        else None
    )
    return {"sales": sales, "next": next_url}
