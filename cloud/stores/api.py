"""Enrollment (a store registers its key) and HQ's view of the stores."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from pydantic import Field

from cloud.errors import Unauthorized, Unprocessable
from cloud.ingest.service import sync_state
from cloud.stores.request_auth import check_version
from cloud.stores.service import enroll, list_stores
from cloud.web import RequestBody, ctx, hq_caller, parse_body, request_target
from sync.keys import load_public_key_b64, public_key_b64
from sync.signing import SignatureError, check_fresh, parse_signed_headers, verify_request

api = Blueprint("stores", __name__, url_prefix="/api/v1")


class EnrollBody(RequestBody):
    code: str = Field(min_length=4, max_length=64)
    store_public_key: str = Field(min_length=40, max_length=64)
    store_id: str | None = Field(default=None, max_length=32)


@api.post("/enroll")
def enroll_store() -> tuple[dict[str, Any], int]:
    """Register a store's public key with a one-time code. The request is signed with the key
    being registered (proof the store holds it); the answer names the cloud's key to pin."""
    c = ctx()
    body = parse_body(EnrollBody)
    now = c.clock.now()
    try:
        signed = parse_signed_headers(dict(request.headers.items()), require_store=False)
        check_version(signed.protocol, c.accepted_versions)
        try:
            public = load_public_key_b64(body.store_public_key)
        except ValueError as exc:
            raise Unprocessable(
                f"store_public_key: {exc}", details={"field": "store_public_key"}
            ) from None
        verify_request(
            public,
            signed,
            method=request.method,
            target=request_target(),
            body=request.get_data(cache=True),
        )
        check_fresh(signed, now=now, window_s=c.settings.sync.timestamp_window_s)
    except SignatureError as exc:
        raise Unauthorized(exc.message, code=exc.code, details=dict(exc.details)) from None
    store = enroll(
        c.db,
        code=body.code,
        store_public_key=body.store_public_key,
        store_id=body.store_id or signed.store_id or None,
        now=now,
    )
    sync = c.settings.sync
    return {
        "store_id": store.id,
        "store": {
            "id": store.id,
            "name": store.name,
            "format": store.format,
            "area_m2": store.area_m2,
            "timezone": store.timezone,
            "currency": store.currency,
        },
        "cloud_public_key": public_key_b64(c.cloud_key),
        "protocol_version": c.protocol_version,
        "accepted_protocol_versions": sorted(c.accepted_versions),
        "timestamp_window_s": sync.timestamp_window_s,
        "max_batch_events": sync.max_batch_events,
        "max_batch_bytes": sync.max_batch_bytes,
        "max_pull_limit": sync.max_pull_limit,
        "enrolled_at": now.isoformat(),
    }, 200


@api.get("/stores")
def stores() -> dict[str, Any]:
    """Every store of the chain with its enrollment and sync position (HQ)."""
    hq_caller()
    return {"stores": list_stores(ctx().db)}


@api.get("/stores/<store_id>/sync-state")
def store_sync_state(store_id: str) -> dict[str, Any]:
    """A store's high-water seq, events applied, last contact, quarantine and clock skew (HQ)."""
    hq_caller()
    return sync_state(ctx().db, store_id)
