"""Recovery of a restored or replaced store: the store's signed requests and HQ's approval."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, Field

from cloud.errors import Unprocessable
from cloud.ingest.recovery import (
    approve_recovery,
    held_events,
    latest_recovery,
    list_recoveries,
    request_recovery,
)
from cloud.web import CloudApi, QueryParam, RequestBody, ctx, int_arg, whole_number_param
from sync.protocol import (
    MAX_HELD_EVENTS_PAGE,
    RECOVERY_APPROVED,
    RECOVERY_PENDING,
    RecoveryOut,
    RecoveryRequest,
)

api = CloudApi("recovery")

MAX_SEQ = 2**53


class RecoveryBody(RequestBody):
    agreed_seq: int = Field(ge=0, le=MAX_SEQ)
    outbox_last_seq: int = Field(ge=0, le=MAX_SEQ)


class ApproveBody(RequestBody):
    approved_by: str = Field(min_length=1, max_length=100)


class HeldEventOut(BaseModel):
    seq: int
    event_id: str


class HeldEventsOut(BaseModel):
    """``sync.protocol.HeldEventsPage``."""

    events: list[HeldEventOut]
    high_water_seq: int
    has_more: bool


class RecoveriesOut(BaseModel):
    recoveries: list[RecoveryOut]


@api.route(
    "GET",
    "/sync/events",
    summary="Read the cloud's record of the store's events after a seq",
    caller="store",
    response=HeldEventsOut,
    query=(
        whole_number_param("after", low=0, high=MAX_SEQ),
        whole_number_param("limit", low=1, high=MAX_HELD_EVENTS_PAGE),
    ),
)
def sync_events(caller: Any) -> dict[str, Any]:
    """The cloud's record of the signing store's events after ``after``: seq and event id."""
    after = int_arg("after", default=0, low=0, high=MAX_SEQ)
    limit = int_arg("limit", default=1000, low=1, high=MAX_HELD_EVENTS_PAGE)
    return held_events(ctx().db, caller.store_id, after=after, limit=limit).to_dict()


@api.route(
    "POST",
    "/sync/recovery",
    summary="Ask to move the store onto a new stream (HQ approves)",
    caller="store",
    body=RecoveryBody,
    response=RecoveryOut,
    status=202,
    errors=(409,),
)
def ask_to_recover(caller: Any, body: RecoveryBody) -> tuple[dict[str, Any], int]:
    """The signing store asks to move onto a new stream; HQ must approve."""
    c = ctx()
    recovery = request_recovery(
        c.db,
        caller.store_id,
        RecoveryRequest(body.agreed_seq, body.outbox_last_seq),
        now=c.clock.now(),
    )
    return recovery.to_dict(), 202


@api.route(
    "GET",
    "/sync/recovery",
    summary="Read the store's latest recovery",
    caller="store",
    response=RecoveryOut,
    errors=(404,),
)
def my_recovery(caller: Any) -> dict[str, Any]:
    """The signing store's latest recovery: pending, or approved with where its stream starts."""
    return latest_recovery(ctx().db, caller.store_id).to_dict()


@api.route(
    "GET",
    "/recoveries",
    summary="List the stores' recoveries, newest first",
    caller="hq",
    response=RecoveriesOut,
    query=(
        QueryParam(
            "status",
            {"type": "string", "enum": [RECOVERY_PENDING, RECOVERY_APPROVED]},
            "only those pending or approved",
        ),
    ),
    errors=(422,),
)
def recoveries(caller: Any) -> dict[str, Any]:
    """Recoveries of every store, newest first (HQ); ``?status=pending`` for those waiting."""
    status = request.args.get("status") or None
    if status not in (None, RECOVERY_PENDING, RECOVERY_APPROVED):
        raise Unprocessable("status must be pending or approved", details={"field": "status"})
    return {"recoveries": list_recoveries(ctx().db, status=status)}


@api.route(
    "POST",
    "/stores/<store_id>/recovery/approve",
    summary="Approve a store's pending recovery",
    caller="hq",
    body=ApproveBody,
    response=RecoveryOut,
    errors=(404, 409),
)
def approve(caller: Any, store_id: str, body: ApproveBody) -> dict[str, Any]:
    """HQ approves a store's pending recovery (what the cloud holds past the agreed point is
    kept and reported, never merged)."""
    c = ctx()
    return approve_recovery(
        c.db, store_id, approved_by=body.approved_by, now=c.clock.now()
    ).to_dict()
