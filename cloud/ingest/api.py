"""``POST /api/v1/sync/push`` (a store's signed batch) and HQ's quarantine list."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from cloud.errors import BadRequest, PayloadTooLarge
from cloud.ingest.service import push, quarantine_list
from cloud.web import ctx, hq_caller, int_arg, signed_store
from sync.protocol import ERR_BATCH_TOO_LARGE, ProtocolError, decode_batch

api = Blueprint("ingest", __name__, url_prefix="/api/v1")


@api.post("/sync/push")
def sync_push() -> dict[str, Any]:
    """Apply a store's batch of outbox events exactly once, in sequence order."""
    c = ctx()
    limits = c.settings.sync
    if (request.content_length or 0) > limits.max_batch_bytes:
        raise PayloadTooLarge(
            f"batch is larger than {limits.max_batch_bytes} bytes", code=ERR_BATCH_TOO_LARGE
        )
    caller = signed_store()
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
        c.db, store_id=caller.store_id, batch=batch, now=c.clock.now(), header_skew_s=caller.skew_s
    )
    return result.to_dict()


@api.get("/quarantine")
def quarantine() -> dict[str, Any]:
    """Quarantined events of every store (or ``?store=ID``), newest first (HQ)."""
    hq_caller()
    limit = int_arg("limit", default=100, low=1, high=1000)
    return {
        "quarantined": quarantine_list(
            ctx().db, store_id=request.args.get("store") or None, limit=limit
        )
    }
