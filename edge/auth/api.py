"""HTTP routes of paired devices: the manager lists them, revokes a lost or stolen one, and makes
a short code that pairs a new device (which sends it once, with no token yet)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from flask import Response, after_this_request, current_app, request
from pydantic import BaseModel, Field

from edge.api_contract import PUBLIC, ApiBlueprint, RequestBody, free_text
from edge.auth import pairing
from edge.auth.service import Principal, list_devices, revoke_device
from edge.context import StoreContext
from edge.errors import Unprocessable
from edge.idempotency import Retryable
from shared.qr import qr_svg
from shared.screens import set_token_cookies

api = ApiBlueprint("devices", "/api/v1")
MANAGERS = ("manager",)


class DeviceOut(BaseModel):
    id: str
    role: Literal["kiosk", "phone", "handheld", "tablet", "manager", "exit"]
    name: str
    status: Literal["active", "expired", "revoked"]
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class DeviceListOut(BaseModel):
    devices: list[DeviceOut]


class MeOut(BaseModel):
    device_id: str
    role: str
    name: str
    store_id: str
    currency: str


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "GET",
    "/me",
    summary="Say which paired device is calling (a page asks it to know whether it is paired)",
    roles=("kiosk", "phone", "handheld", "tablet", "manager", "exit"),
    connectivity="offline",
    response=MeOut,
)
def who_am_i(principal: Principal) -> dict[str, Any]:
    ctx = _ctx()
    return {
        "device_id": principal.device_id,
        "role": principal.role,
        "name": principal.name,
        "store_id": ctx.store_id,
        "currency": ctx.currency,
    }


@api.endpoint(
    "GET",
    "/devices",
    summary="List paired devices",
    roles=MANAGERS,
    connectivity="offline",
    response=DeviceListOut,
)
def get_devices(principal: Principal) -> dict[str, Any]:
    ctx = _ctx()
    now = ctx.clock.now()
    return {"devices": [d.to_dict(now) for d in list_devices(ctx.db)]}


@api.endpoint(
    "POST",
    "/devices/<device_id>/revoke",
    summary="Revoke a device's token",
    roles=MANAGERS,
    connectivity="offline",
    response=DeviceOut,
    errors=(409,),
    idempotency="optional",
)
def revoke(principal: Principal, device_id: str, retry: Retryable | None) -> dict[str, Any]:
    ctx = _ctx()
    now = ctx.clock.now()
    return revoke_device(ctx.db, device_id, now=now, by=principal, retry=retry).to_dict(now)


class PairingCodeIn(RequestBody):
    role: Literal["kiosk", "phone", "handheld", "tablet", "exit"]
    name: str = free_text(default="", max_length=100)
    ttl_s: int | None = Field(default=None, ge=1, le=int(pairing.MAX_TTL.total_seconds()))


class PairingCodeOut(BaseModel):
    code: str
    role: str
    name: str
    expires_at: str


class PairingIn(RequestBody):
    # A manager's six-digit code, or the token of the store's scan-and-go QR (a phone).
    code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    join: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{16,64}$")
    # A page pairing itself: the token goes into an HttpOnly cookie, not the answer.
    cookie: bool = False


class StoreQrOut(BaseModel):
    url: str
    qr_svg: str
    created_at: str


class PairedOut(BaseModel):
    device_id: str
    role: str
    name: str
    token: str | None


@api.endpoint(
    "POST",
    "/pairing-codes",
    summary="Make a six-digit code that pairs one new device of a role",
    roles=MANAGERS,
    connectivity="offline",
    body=PairingCodeIn,
    response=PairingCodeOut,
    status=201,
    errors=(422,),
    idempotency="optional",
    description="The code works once, for ttl_s seconds (600 by default, 3600 at most); ten "
    "wrong codes tried meanwhile void it. A manager login is paired on the server only.",
)
def make_pairing_code(
    principal: Principal, body: PairingCodeIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return pairing.create_code(
        ctx.db,
        principal,
        role=body.role,
        name=body.name,
        ttl=None if body.ttl_s is None else timedelta(seconds=body.ttl_s),
        now=ctx.clock.now(),
        retry=retry,
    ).to_dict()


@api.endpoint(
    "POST",
    "/pairing",
    summary="Pair this device with a manager's code: its bearer token, shown once",
    roles=PUBLIC,
    connectivity="offline",
    body=PairingIn,
    response=PairedOut,
    status=201,
    errors=(404, 422),
    description="With join (the store QR's token) a shopper's phone joins as a phone device; "
    "404 store_qr_invalid for a poster that is not the current one. "
    "404 pairing_code_invalid for a code unknown, used, expired or void. With "
    "cookie true (a page in a browser) the token is set in an HttpOnly cookie, with a CSRF "
    "cookie whose value the page's writes send as X-CSRF-Token, and is not in the answer.",
)
def pair_with_code(body: PairingIn) -> dict[str, Any]:
    ctx = _ctx()
    if (body.code is None) == (body.join is None):
        raise Unprocessable(
            "send a manager's pairing code or the store QR's join token: one of them",
            code="pairing_code_or_join",
            details={"field": "code"},
        )
    if body.join is not None:
        paired = pairing.join(ctx.db, body.join, now=ctx.clock.now())
    else:
        assert body.code is not None
        paired = pairing.redeem(ctx.db, body.code, now=ctx.clock.now())
    if not body.cookie:
        return paired.to_dict()

    @after_this_request
    def _cookies(response: Response) -> Response:
        set_token_cookies(response, paired.token)
        return response

    return {**paired.to_dict(), "token": None}


@api.endpoint(
    "POST",
    "/store-qr",
    summary="Make the store's scan-and-go QR for the door's poster (the last one stops working)",
    roles=("tablet", "manager"),
    connectivity="offline",
    response=StoreQrOut,
    status=201,
    idempotency="optional",
    description="The QR holds this server's /go page with a join token after the '#' (never "
    "sent to a server by a browser); a phone that opens it joins as a phone device. Shown "
    "once: print it.",
)
def make_store_qr(principal: Principal, retry: Retryable | None) -> dict[str, Any]:
    ctx = _ctx()
    now = ctx.clock.now()
    base = request.host_url.rstrip("/")

    def poster(token: str) -> dict[str, Any]:
        url = f"{base}/go#join={token}"
        return {"url": url, "qr_svg": qr_svg(url, scale=6), "created_at": now.isoformat()}

    return pairing.new_store_qr(ctx.db, principal, now=now, answer=poster, retry=retry)
