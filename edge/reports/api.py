"""HTTP routes of the manager's views: the day so far and the sync queue."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel

from edge.api_contract import ApiBlueprint
from edge.auth.service import Principal
from edge.reports.service import day_report, sync_status

api = ApiBlueprint("reports", "/api/v1")


class SyncErrorOut(BaseModel):
    code: str | None
    message: str
    at: str | None


class QuarantinedOut(BaseModel):
    seq: int
    event_id: str
    type: str
    reason: str


class FeedOut(BaseModel):
    changes_applied: int
    in_snapshot: bool
    last_snapshot_reason: str | None
    last_snapshot_at: str | None


class StorageOut(BaseModel):
    outbox_rows: int
    database_bytes: int
    wal_bytes: int


class CloudOnlySaleOut(BaseModel):
    id: str
    number: str
    total: int
    created_at: str


class RecoveryOut(BaseModel):
    """The store's latest move onto a new stream after a restore: requested, then applied."""

    id: str
    status: str
    stream: int
    agreed_seq: int
    base_seq: int | None
    renumbered: int
    requested_at: str
    applied_at: str | None
    cloud_only_events: int
    cloud_only_sales_count: int
    cloud_only_sales_total: int
    cloud_only_sales: list[CloudOnlySaleOut]


class SyncStatusOut(BaseModel):
    online: bool
    cloud: str | None
    enrolled: bool
    outbox_pending: int
    outbox_last_seq: int
    acked_seq: int
    oldest_pending_age_s: float | None
    last_push_at: str | None
    last_pull_at: str | None
    last_contact_at: str | None
    last_error: SyncErrorOut | None
    halted: str | None
    consecutive_failures: int
    next_attempt_at: str | None
    clock_skew_s: float | None
    quarantined: list[QuarantinedOut]
    feeds: dict[str, FeedOut]
    storage: StorageOut
    recovery: RecoveryOut | None


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
    "/sync/status",
    summary="Read the sync queue's state",
    roles=("handheld", "tablet", "manager", "kiosk"),
    connectivity="offline",
    response=SyncStatusOut,
)
def get_sync_status(principal: Principal) -> dict[str, Any]:
    return sync_status(current_app.extensions["aisle"])


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
