"""The thin HTTP layer shared by the cloud's blueprints: context, JSON bodies, callers."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ConfigDict, ValidationError

from cloud.context import CloudContext
from cloud.errors import BadRequest, Unprocessable
from cloud.stores.models import ApiToken
from cloud.stores.request_auth import StoreCaller, authenticate_store
from cloud.stores.service import authenticate_token
from shared.untrusted import UntrustedInputError, loads_json, whole_number

M = TypeVar("M", bound=BaseModel)


class RequestBody(BaseModel):
    """Base of every request schema: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def ctx() -> CloudContext:
    context: CloudContext = current_app.extensions["aisle_cloud"]
    return context


def parse_body(model: type[M]) -> M:
    """Decode the request's JSON object and validate it with ``model``; 400 or 422."""
    raw = request.get_data(cache=True)
    try:
        data: Any = loads_json(raw) if raw.strip() else {}
    except UntrustedInputError as exc:
        raise BadRequest(
            "request body is not valid JSON", code="malformed_json", details={"reason": str(exc)}
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = [
            {
                "field": ".".join(str(p) for p in err["loc"]) or "(body)",
                "problem": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        names = ", ".join(f["field"] for f in fields)
        raise Unprocessable(f"invalid request body: {names}", details={"fields": fields}) from None


def request_target() -> str:
    """The path and query exactly as the client sent them (what it signed)."""
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def signed_store() -> StoreCaller:
    """The store that signed this request; 401/403/426 otherwise (see ``request_auth``)."""
    c = ctx()
    return authenticate_store(
        c.db,
        headers=dict(request.headers.items()),
        method=request.method,
        target=request_target(),
        body=request.get_data(cache=True),
        now=c.clock.now(),
        window_s=c.settings.sync.timestamp_window_s,
        accepted_versions=c.accepted_versions,
    )


def hq_caller() -> ApiToken:
    """The HQ token of this request; 401/403 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    with ctx().db.read() as session:
        return authenticate_token(
            session, token.strip() if scheme.lower() == "bearer" else None, role="hq"
        )


def int_arg(name: str, *, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within bounds; 422 otherwise."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise Unprocessable(
            f"{name} must be a whole number from {low} to {high}", details={"field": name}
        )
    return value
