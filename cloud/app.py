"""The cloud's app factory: wiring only (database, keys, blueprints, errors, answer signing)."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from typing import Any

from flask import Flask, Response, current_app, request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from cloud.context import CloudContext
from cloud.db import Database
from cloud.errors import Unavailable
from cloud.hq import pages as hq_pages
from cloud.migrations import current_revision, head_revision
from cloud.settings import CloudSettings
from cloud.web import CloudApi, CloudRoute, ctx, missing_authenticators, openapi_document
from shared.clock import Clock, SystemClock
from shared.pii import Keyring
from shared.screens import add_security_headers
from shared.screens import common as common_screens
from shared.web import ErrorAnswer, install_error_handlers
from sync.keys import load_or_create_private_key
from sync.protocol import MAX_BATCH_BYTES, PROTOCOL_VERSION, accepted_versions
from sync.signing import H_NONCE, H_PROTOCOL, sign_response

log = logging.getLogger(__name__)

#: What a store is asked to wait while the database is away (it backs off at least as long).
RETRY_AFTER_S = 5
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


API_VERSION = "1.0.0"


class SchemaOutOfDate(RuntimeError):
    """The database is not at the code's migration head: run ``aisle cloud migrate``."""


# --- the cloud's own routes: liveness and the contract -------------------------------------------

system_api = CloudApi("system", url_prefix="")


class HealthOut(BaseModel):
    ok: bool
    protocol_version: int


@system_api.route(
    "GET",
    "/healthz",
    summary="Check liveness and the database",
    caller="public",
    response=HealthOut,
)
def healthz() -> dict[str, Any]:
    c = ctx()
    with c.db.read() as session:
        session.execute(text("SELECT 1"))
    return {"ok": True, "protocol_version": c.protocol_version}


@system_api.route("GET", "/api/v1/openapi.json", summary="Read the API contract", caller="public")
def openapi() -> dict[str, Any]:
    return openapi_document(
        current_app.extensions["aisle_cloud_routes"],
        title="Aisle cloud API",
        version=API_VERSION,
        description="HQ's API (an HQ token), the members API of the other sales channels (a "
        "channel's token), enrollment, and the store-to-cloud sync protocol (requests signed by "
        "the store's key; see sync/protocol.py and sync/signing.py).",
    )


def all_apis() -> list[CloudApi]:
    """Every feature's routes, in the one order the app registers them."""
    from cloud.catalog.api import api as feeds_api
    from cloud.coupons.api import api as coupons_api
    from cloud.ingest.api import api as ingest_api
    from cloud.ingest.recovery_api import api as recovery_api
    from cloud.members.api import api as members_api
    from cloud.members.channel_api import api as channel_api
    from cloud.members.store_api import api as store_members_api
    from cloud.promotions.api import api as promotions_api
    from cloud.sales.api import api as sales_api
    from cloud.stores.api import api as stores_api

    return [
        system_api,
        stores_api,
        ingest_api,
        feeds_api,
        sales_api,
        recovery_api,
        members_api,
        store_members_api,
        channel_api,
        promotions_api,
        coupons_api,
    ]


def all_routes() -> list[CloudRoute]:
    """Every route the cloud declares, in a stable order."""
    routes = [r for api in all_apis() for r in api.routes]
    return sorted(routes, key=lambda r: (r.path, r.method))


def build_context(
    settings: CloudSettings,
    *,
    clock: Clock | None = None,
    protocol_version: int = PROTOCOL_VERSION,
    accepted: Collection[int] | None = None,
) -> CloudContext:
    """Open the database and the cloud's key; refuses a database that is not migrated."""
    db = Database.open(settings.resolved_database_url)
    at, head = current_revision(db.writer), head_revision()
    if at != head:
        db.dispose()
        raise SchemaOutOfDate(
            f"cloud database is at revision {at}, the code needs {head}: "
            "run `aisle cloud migrate --config ...`"
        )
    return CloudContext(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        cloud_key=load_or_create_private_key(settings.key_path),
        protocol_version=protocol_version,
        accepted_versions=frozenset(accepted or accepted_versions(protocol_version)),
        members_keyring=Keyring.load_or_create(settings.members_keyring_path),
    )


def create_app(settings: CloudSettings, **overrides: Any) -> Flask:
    """Build the cloud's WSGI app; ``overrides`` go to :func:`build_context`."""
    app = Flask("cloud")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BATCH_BYTES + 64 * 1024
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    ctx = build_context(settings, **overrides)
    app.extensions["aisle_cloud"] = ctx
    routes: list[CloudRoute] = []
    for api in all_apis():
        app.register_blueprint(api.blueprint)
        routes.extend(api.routes)
    unauthenticated = missing_authenticators(routes)
    if unauthenticated:
        raise RuntimeError(f"no authenticator registered for {sorted(unauthenticated)} callers")
    app.extensions["aisle_cloud_routes"] = routes
    app.register_blueprint(hq_pages)
    app.register_blueprint(common_screens)
    app.after_request(add_security_headers)

    @app.after_request
    def _sign_answer(response: Response) -> Response:
        # Answers to signed requests are signed with the cloud's key, bound to the request's
        # nonce, so the edge can check them against the key it pinned at enrollment.
        response.headers[H_PROTOCOL] = str(ctx.protocol_version)
        nonce = request.headers.get(H_NONCE, "")
        if _NONCE.match(nonce) and not response.direct_passthrough:
            response.headers.update(
                sign_response(
                    ctx.cloud_key,
                    request_nonce=nonce,
                    status=response.status_code,
                    body=response.get_data(),
                    now=ctx.clock.now(),
                )
            )
        return response

    def _database_down(exc: OperationalError) -> ErrorAnswer:
        log.warning("database unavailable: %s", exc)
        body = Unavailable("the database is unavailable; nothing was applied, retry").to_dict()
        return body, 503, {"Retry-After": str(RETRY_AFTER_S)}

    def _connection_lost(exc: Exception) -> ErrorAnswer | None:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return _database_down(OperationalError(None, None, exc))
        return None

    install_error_handlers(app, log, unexpected=_connection_lost)
    app.register_error_handler(OperationalError, _database_down)

    return app
