"""Recovery of a restored or replaced store: the store's signed requests and HQ's approval."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from pydantic import Field

from cloud.errors import Unprocessable
from cloud.stores.recovery import (
    approve_recovery,
    held_events,
    latest_recovery,
    list_recoveries,
    request_recovery,
)
from cloud.web import RequestBody, ctx, hq_caller, int_arg, parse_body, signed_store
from sync.protocol import (
    MAX_HELD_EVENTS_PAGE,
    RECOVERY_APPROVED,
    RECOVERY_PENDING,
    RecoveryRequest,
)

api = Blueprint("recovery", __name__, url_prefix="/api/v1")

MAX_SEQ = 2**53


class RecoveryBody(RequestBody):
    agreed_seq: int = Field(ge=0, le=MAX_SEQ)
    outbox_last_seq: int = Field(ge=0, le=MAX_SEQ)


class ApproveBody(RequestBody):
    approved_by: str = Field(min_length=1, max_length=100)


@api.get("/sync/events")
def sync_events() -> dict[str, Any]:
    """The cloud's record of the signing store's events after ``after``: seq and event id."""
    caller = signed_store()
    after = int_arg("after", default=0, low=0, high=MAX_SEQ)
    limit = int_arg("limit", default=1000, low=1, high=MAX_HELD_EVENTS_PAGE)
    return held_events(ctx().db, caller.store_id, after=after, limit=limit).to_dict()


@api.post("/sync/recovery")
def ask_to_recover() -> tuple[dict[str, Any], int]:
    """The signing store asks to move onto a new stream; HQ must approve."""
    caller = signed_store()
    body = parse_body(RecoveryBody)
    c = ctx()
    recovery = request_recovery(
        c.db,
        caller.store_id,
        RecoveryRequest(body.agreed_seq, body.outbox_last_seq),
        now=c.clock.now(),
    )
    return recovery.to_dict(), 202


@api.get("/sync/recovery")
def my_recovery() -> dict[str, Any]:
    """The signing store's latest recovery: pending, or approved with where its stream starts."""
    caller = signed_store()
    return latest_recovery(ctx().db, caller.store_id).to_dict()


@api.get("/recoveries")
def recoveries() -> dict[str, Any]:
    """Recoveries of every store, newest first (HQ); ``?status=pending`` for those waiting."""
    hq_caller()
    status = request.args.get("status") or None
    if status not in (None, RECOVERY_PENDING, RECOVERY_APPROVED):
        raise Unprocessable("status must be pending or approved", details={"field": "status"})
    return {"recoveries": list_recoveries(ctx().db, status=status)}


@api.post("/stores/<store_id>/recovery/approve")
def approve(store_id: str) -> dict[str, Any]:
    """HQ approves a store's pending recovery (what the cloud holds past the agreed point is
    kept and reported, never merged)."""
    hq_caller()
    body = parse_body(ApproveBody)
    c = ctx()
    return approve_recovery(
        c.db, store_id, approved_by=body.approved_by, now=c.clock.now()
    ).to_dict()
