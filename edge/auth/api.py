"""HTTP routes of paired devices: the manager lists them, revokes a lost or stolen one, and makes
a short code that pairs a new device (which sends it once, with no token yet)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from flask import Response, after_this_request, current_app, request
from pydantic import BaseModel, Field

from edge.api_contract import PUBLIC, ApiBlueprint, RequestBody, free_text
from edge.auth import pairing, staff
from edge.auth.service import (
    Principal,
    active_phones,
    list_devices,
    rename_device,
    revoke_device,
)
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
    phones_active: int  # shoppers' phones that may use the store now, listed or not


class DeviceQuery(RequestBody):
    """``?phones=false``: the store's own devices only, without the shoppers' phones."""

    phones: bool = Field(default=True, strict=False)


class StaffOut(BaseModel):
    id: str
    name: str


class MeOut(BaseModel):
    device_id: str
    role: str  # "manager" while a manager is signed in on this tablet or handheld
    name: str
    store_id: str
    currency: str
    staff: StaffOut | None = None  # who is signed in on this device


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
        "staff": None
        if principal.staff_id is None
        else {"id": principal.staff_id, "name": principal.staff_name},
    }


@api.endpoint(
    "GET",
    "/devices",
    summary="List paired devices",
    roles=MANAGERS,
    connectivity="offline",
    response=DeviceListOut,
    query=DeviceQuery,
)
def get_devices(principal: Principal, query: DeviceQuery) -> dict[str, Any]:
    ctx = _ctx()
    now = ctx.clock.now()
    return {
        "devices": [d.to_dict(now) for d in list_devices(ctx.db, phones=query.phones)],
        "phones_active": active_phones(ctx.db, now=now),
    }


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


class RenameIn(RequestBody):
    name: str = free_text(min_length=1, max_length=100)


@api.endpoint(
    "PATCH",
    "/devices/<device_id>",
    summary="Rename a device",
    roles=MANAGERS,
    connectivity="offline",
    body=RenameIn,
    response=DeviceOut,
    errors=(404, 422),
    idempotency="optional",
)
def rename(
    principal: Principal, device_id: str, body: RenameIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    now = ctx.clock.now()
    return rename_device(ctx.db, device_id, body.name, now=now, retry=retry).to_dict(now)


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


class StaffSignInIn(RequestBody):
    staff_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")
    pin: str = Field(pattern=r"^[0-9]{4,8}$")
    # A page signing in: the session goes into an HttpOnly cookie, not the answer.
    cookie: bool = False


class StaffSignedIn(BaseModel):
    staff_id: str
    name: str
    role: str
    expires_at: str
    token: str | None


class StaffSignedOut(BaseModel):
    signed_out: bool


@api.endpoint(
    "POST",
    "/staff/sign-in",
    summary="Sign a staff member in on this tablet or handheld with their staff id and PIN",
    roles=sorted(staff.SIGN_IN_ROLES),
    connectivity="offline",
    body=StaffSignInIn,
    response=StaffSignedIn,
    status=201,
    errors=(409,),
    idempotency="optional",
    description="403 staff_sign_in_failed for an unknown id or a wrong PIN (five in a row lock "
    "the account: 409 staff_locked, with locked_until). The session (12 hours) goes in the "
    "X-Staff-Session header of the device's later requests, or with cookie true in an "
    "HttpOnly cookie. A manager signed in has the manager's routes on this device.",
)
def staff_sign_in(
    principal: Principal, body: StaffSignInIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    signed = staff.sign_in(ctx.db, principal, body.staff_id, body.pin, now=ctx.clock.now())
    if not body.cookie:
        return {**signed.to_dict(), "token": signed.token}

    @after_this_request
    def _cookie(response: Response) -> Response:
        response.set_cookie(
            staff.STAFF_COOKIE,
            signed.token,
            max_age=int(staff.SESSION_TTL.total_seconds()),
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/",
        )
        return response

    return {**signed.to_dict(), "token": None}


@api.endpoint(
    "POST",
    "/staff/sign-out",
    summary="Sign the staff member out of this device",
    roles=(*sorted(staff.SIGN_IN_ROLES), "manager"),
    connectivity="offline",
    response=StaffSignedOut,
    idempotency="optional",
)
def staff_sign_out(principal: Principal, retry: Retryable | None) -> dict[str, Any]:
    ctx = _ctx()
    staff.sign_out(ctx.db, principal, now=ctx.clock.now())

    @after_this_request
    def _cookie(response: Response) -> Response:
        response.delete_cookie(staff.STAFF_COOKIE, path="/", samesite="Strict")
        return response

    return {"signed_out": True}
