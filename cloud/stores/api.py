"""Enrollment: a store registers its key with a one-time code.

This feature knows the API tokens, so it registers how an HQ caller and a channel are
authenticated (:func:`cloud.web.register_caller`); a store's signed requests are
``cloud.ingest``'s.
"""

from __future__ import annotations

from typing import Any

from flask import Response, after_this_request, request
from pydantic import BaseModel, Field

from cloud.errors import Unauthorized, Unprocessable
from cloud.stores.callers import channel_caller, check_version, hq_caller
from cloud.stores.service import enroll, hq_token_holder
from cloud.web import CloudApi, RequestBody, ctx, register_caller, request_target
from shared.screens import clear_token_cookies, set_token_cookies
from sync.keys import load_public_key_b64, public_key_b64
from sync.signing import SignatureError, check_fresh, parse_signed_headers, verify_request

api = CloudApi("stores")
register_caller("hq", hq_caller)
register_caller("channel", channel_caller)


class EnrollBody(RequestBody):
    code: str = Field(min_length=4, max_length=64)
    store_public_key: str = Field(min_length=40, max_length=64)
    store_id: str | None = Field(default=None, max_length=32)


class EnrolledStore(BaseModel):
    id: str
    name: str
    format: str
    area_m2: int | None
    timezone: str
    currency: str


class EnrollOut(BaseModel):
    store_id: str
    store: EnrolledStore
    cloud_public_key: str
    protocol_version: int
    accepted_protocol_versions: list[int]
    timestamp_window_s: int
    max_batch_events: int
    max_batch_bytes: int
    max_pull_limit: int
    enrolled_at: str


@api.route(
    "POST",
    "/enroll",
    summary="Enroll a store: register its public key with a one-time code",
    caller="enrolling",
    body=EnrollBody,
    response=EnrollOut,
    errors=(409,),
    description="The request is signed with the key being registered (proof the store holds "
    "it); the answer names the cloud's key for the store to pin, and the sync limits.",
)
def enroll_store(body: EnrollBody) -> tuple[dict[str, Any], int]:
    """Register a store's public key with a one-time code. The request is signed with the key
    being registered (proof the store holds it); the answer names the cloud's key to pin."""
    c = ctx()
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


class HqSignInBody(RequestBody):
    token: str = Field(min_length=1, max_length=256)


class HqSignedIn(BaseModel):
    name: str


@api.route(
    "POST",
    "/hq/session",
    summary="Sign HQ's pages in with an HQ token (kept in an HttpOnly cookie, not the answer)",
    caller="public",
    body=HqSignInBody,
    response=HqSignedIn,
    errors=(401, 403),
    description="The page's later writes send X-CSRF-Token equal to the aisle_csrf cookie.",
)
def hq_sign_in(body: HqSignInBody) -> dict[str, Any]:
    name = hq_token_holder(ctx().db, body.token)

    @after_this_request
    def _cookies(response: Response) -> Response:
        set_token_cookies(response, body.token)
        return response

    return {"name": name}


class HqSignedOut(BaseModel):
    signed_out: bool


@api.route(
    "POST",
    "/hq/sign-out",
    summary="Sign HQ's pages out (their cookies are cleared)",
    caller="public",
    response=HqSignedOut,
)
def hq_sign_out() -> dict[str, Any]:
    @after_this_request
    def _cookies(response: Response) -> Response:
        clear_token_cookies(response)
        return response

    return {"signed_out": True}
