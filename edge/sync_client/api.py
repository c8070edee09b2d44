"""HTTP routes of the link to the cloud: the sync queue's state as devices and staff see it."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel

from edge.api_contract import ApiBlueprint
from edge.auth.service import Principal
from edge.sync_client.state import status
from sync.protocol import CloudOnlySaleOut

api = ApiBlueprint("sync", "/api/v1")


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


@api.endpoint(
    "GET",
    "/sync/status",
    summary="Read the sync queue's state",
    roles=("handheld", "tablet", "manager", "kiosk"),
    connectivity="offline",
    response=SyncStatusOut,
    operation_id="reports_get_sync_status",  # its id since it was served by the reports
)
def get_sync_status(principal: Principal) -> dict[str, Any]:
    ctx = current_app.extensions["aisle"]
    return status(ctx.db, ctx.clock.now())
