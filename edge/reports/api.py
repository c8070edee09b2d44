"""HTTP routes of the manager's views: the day so far."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel

from edge.api_contract import ApiBlueprint
from edge.auth.service import Principal
from edge.reports.service import day_report

api = ApiBlueprint("reports", "/api/v1")


class DayReportOut(BaseModel):
    store_id: str
    date: str
    currency: str
    sales: int
    items: int
    revenue: int
    returns: int
    refunded: int
    net_revenue: int
    stock_movements: int
    below_zero_movements: int
    outbox_pending: int


@api.endpoint(
    "GET",
    "/reports/day",
    summary="Read the day's figures",
    roles=("tablet", "manager"),
    connectivity="offline",
    response=DayReportOut,
)
def get_day_report(principal: Principal) -> dict[str, Any]:
    return day_report(current_app.extensions["aisle"])
