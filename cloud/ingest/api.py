"""``POST /api/v1/sync/push`` (a store's signed batch) and HQ's view of the stores' streams."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel

from cloud.errors import BadRequest, PayloadTooLarge
from cloud.ingest.request_auth import signed_store
from cloud.ingest.service import push, quarantine_list, stores_with_sync, sync_state
from cloud.members.effects import MemberRules
from cloud.stores.api import EnrolledStore
from cloud.web import CloudApi, QueryParam, ctx, int_arg, register_caller, whole_number_param
from sync.protocol import (
    BATCH_CONTENT_TYPE,
    ERR_BATCH_TOO_LARGE,
    MAX_BATCH_BYTES,
    ProtocolError,
    decode_batch,
)

api = CloudApi("ingest")
register_caller("store", signed_store)

#: The push body as the OpenAPI document shows it (see ``sync/protocol.py``).
BATCH_CONTENT: dict[str, Any] = {
    BATCH_CONTENT_TYPE: {
        "schema": {
            "type": "string",
            "contentEncoding": "gzip",
            "contentMediaType": "application/json",
            "maxLength": MAX_BATCH_BYTES,
            "description": "the gzip of the canonical JSON (sorted keys, no spaces, UTF-8) of "
            '{"store_id", "batch_id", "edge_clock", "events": [{"seq", "id", "type", '
            '"aggregate_id", "payload", "created_at"}]}, sent with Content-Encoding: gzip; '
            "events are the store's outbox rows in sequence order",
        }
    }
}


class SyncStateOut(BaseModel):
    store_id: str
    high_water_seq: int
    events_applied: int
    quarantined: int
    last_seen_at: str | None
    last_push_at: str | None
    clock_skew_s: float | None
    protocol_version: int | None
    diverged: bool
    diverged_at: str | None


class StoreRow(EnrolledStore):
    updated_at: str
    enrolled_at: str | None
    revoked_at: str | None
    high_water_seq: int
    last_seen_at: str | None
    sync: SyncStateOut | None  # None until the store's first signed call


class StoresOut(BaseModel):
    stores: list[StoreRow]


class QuarantinedOut(BaseModel):
    seq: int
    event_id: str
    type: str
    reason: str


class PushOut(BaseModel):
    """The cloud's answer to a push (``sync.protocol.PushResult``)."""

    acked_seq: int
    resume_from: int
    applied: int
    duplicates: int
    quarantined: list[QuarantinedOut]
    gap_at: int | None
    server_time: str
    clock_skew_s: float


class QuarantinedEventOut(BaseModel):
    store_id: str
    seq: int
    event_id: str
    type: str
    reason: str
    created_at: str
    event: Any


class QuarantineOut(BaseModel):
    quarantined: list[QuarantinedEventOut]


def _not_too_large() -> None:
    # Refused before the signature is checked: that would read the whole body first.
    limits = ctx().settings.sync
    if (request.content_length or 0) > limits.max_batch_bytes:
        raise PayloadTooLarge(
            f"batch is larger than {limits.max_batch_bytes} bytes", code=ERR_BATCH_TOO_LARGE
        )


@api.route(
    "POST",
    "/sync/push",
    summary="Push a batch of the store's outbox events",
    caller="store",
    response=PushOut,
    request_content=BATCH_CONTENT,
    errors=(400, 409, 413),
    before_caller=_not_too_large,
    description="Each event is applied exactly once, in sequence order; a bad one is "
    "quarantined and the queue moves on. The answer is signed with the cloud's key.",
)
def sync_push(caller: Any) -> dict[str, Any]:
    """Apply a store's batch of outbox events exactly once, in sequence order."""
    c = ctx()
    limits = c.settings.sync
    try:
        batch = decode_batch(
            request.get_data(cache=True),
            max_events=limits.max_batch_events,
            max_bytes=limits.max_batch_bytes,
        )
    except ProtocolError as exc:
        error = PayloadTooLarge if exc.code == ERR_BATCH_TOO_LARGE else BadRequest
        raise error(exc.message, code=exc.code) from None
    result = push(
        c.db,
        store_id=caller.store_id,
        batch=batch,
        now=c.clock.now(),
        header_skew_s=caller.skew_s,
        members=MemberRules.of(c),
    )
    return result.to_dict()


@api.route(
    "GET",
    "/quarantine",
    summary="List quarantined events, newest first",
    caller="hq",
    response=QuarantineOut,
    query=(
        QueryParam("store", {"type": "string"}, "only this store's"),
        whole_number_param("limit", low=1, high=1000),
    ),
)
def quarantine(caller: Any) -> dict[str, Any]:
    """Quarantined events of every store (or ``?store=ID``), newest first (HQ)."""
    limit = int_arg("limit", default=100, low=1, high=1000)
    return {
        "quarantined": quarantine_list(
            ctx().db, store_id=request.args.get("store") or None, limit=limit
        )
    }


@api.route(
    "GET",
    "/stores/<store_id>/sync-state",
    summary="Read a store's sync state",
    caller="hq",
    response=SyncStateOut,
    errors=(404,),
)
def store_sync_state(caller: Any, store_id: str) -> dict[str, Any]:
    """A store's high-water seq, events applied, last contact, quarantine and clock skew (HQ)."""
    return sync_state(ctx().db, store_id)


@api.route(
    "GET",
    "/stores",
    summary="List the chain's stores with their enrollment and sync position",
    caller="hq",
    response=StoresOut,
    operation_id="stores_stores",
)
def stores(caller: Any) -> dict[str, Any]:
    """Every store of the chain with its enrollment and sync position (HQ)."""
    return {"stores": stores_with_sync(ctx().db)}
