"""Liveness and the contract itself: ``/healthz`` and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import BaseModel
from sqlalchemy import text

from edge.api_contract import PUBLIC, ApiBlueprint, openapi_document
from edge.context import StoreContext

api = ApiBlueprint("system")
API_VERSION = "1.0.0"


class HealthOut(BaseModel):
    status: str
    store_id: str
    database: str


@api.endpoint(
    "GET",
    "/healthz",
    summary="Check liveness and the database",
    roles=PUBLIC,
    connectivity="offline",
    response=HealthOut,
)
def healthz() -> dict[str, Any]:
    ctx: StoreContext = current_app.extensions["aisle"]
    with ctx.db.read() as session:
        session.execute(text("SELECT 1 FROM counters LIMIT 1")).all()
    return {"status": "ok", "store_id": ctx.store_id, "database": "ok"}


@api.endpoint(
    "GET",
    "/api/v1/openapi.json",
    summary="Read the API contract",
    roles=PUBLIC,
    connectivity="offline",
)
def openapi() -> dict[str, Any]:
    return openapi_document(
        current_app.extensions["aisle_specs"], title="Aisle store API", version=API_VERSION
    )
