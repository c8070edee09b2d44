"""HTTP routes of paired devices: the manager lists them and revokes a lost or stolen one."""

from __future__ import annotations

from typing import Any, Literal

from flask import current_app
from pydantic import BaseModel

from edge.api_contract import ApiBlueprint
from edge.auth.service import Principal, list_devices, revoke_device
from edge.context import StoreContext
from edge.idempotency import Retryable

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


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


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
