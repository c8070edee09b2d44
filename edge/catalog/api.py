"""HTTP route of the scanner: what is this code and what does it cost."""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app
from pydantic import BaseModel

from edge.api_contract import ALL_ROLES, ApiBlueprint
from edge.auth.service import Principal
from edge.catalog.service import lookup_scan
from edge.context import StoreContext

api = ApiBlueprint("catalog", "/api/v1")


class ProductOut(BaseModel):
    sku: str
    name: str
    barcode: str
    unit_price: int
    price: int
    weight_g: int | None
    sold_by: Literal["each", "kg", "variable"]
    tax_rate_bp: int
    age_restricted: bool
    category: str


@api.endpoint(
    "GET",
    "/products/by-barcode/<code>",
    summary="Look up a scanned barcode",
    roles=ALL_ROLES,
    connectivity="offline",
    response=ProductOut,
    errors=(422,),
)
def by_barcode(principal: Principal, code: str) -> dict[str, Any]:
    ctx: StoreContext = current_app.extensions["aisle"]
    with ctx.db.raw_read() as tx:
        return lookup_scan(tx, code, ctx.scan_rules).to_dict()
