"""The store server's app factory: wiring only (database, services, blueprints, errors)."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from flask import Flask, Response, request

from edge.api_contract import SkuConverter
from edge.auth.service import Authenticator
from edge.checkout import payment_intents
from edge.checkout.exit_pass import load_or_create_store_key
from edge.checkout.payments import PaymentProvider, SimulatedProvider
from edge.context import StoreContext
from edge.db import Database, WriteLockTimeout
from edge.errors import Busy
from edge.migrations import HEAD, current_revision
from edge.settings import EdgeSettings
from edge.work_gate import WorkGate
from shared.clock import Clock, SystemClock
from shared.pii import Keyring
from shared.web import install_error_handlers

log = logging.getLogger(__name__)


class SchemaOutOfDate(RuntimeError):
    """The database is not at the code's migration head: run ``aisle edge migrate``."""


def payment_provider(settings: EdgeSettings) -> SimulatedProvider:
    """The store's acquirer: the simulator, its books in the store's data folder."""
    p = settings.payments
    return SimulatedProvider(
        latency_ms=p.latency_ms,
        decline_rate_bp=p.decline_rate_bp,
        timeout_rate_bp=p.timeout_rate_bp,
        timeout_s=p.timeout_s,
        ledger=settings.data_dir / "acquirer-simulator.sqlite3",
    )


def release_open_payments(settings: EdgeSettings, *, clock: Clock | None = None) -> int:
    """At server start, before any worker: no checkout is running, so every card payment still
    open was left by the last run (killed mid-checkout) and is released at the acquirer. A
    device retrying that checkout is authorised afresh; nothing is held twice."""
    db = Database.open(settings.database_path)
    provider = payment_provider(settings)
    try:
        now = (clock or SystemClock()).now()
        released = payment_intents.reconcile(db, provider, now=now, older_than=timedelta(0))
    finally:
        provider.close()
        db.dispose()
    if released:
        log.warning("released %d card payments the last run left open", released)
    return released


def build_context(
    settings: EdgeSettings,
    *,
    clock: Clock | None = None,
    payments: PaymentProvider | None = None,
    rng: random.Random | None = None,
) -> StoreContext:
    """Open the store's database and keys; refuses a database that is not migrated."""
    db = Database.open(
        settings.database_path, write_lock_timeout_s=settings.server.write_lock_timeout_s
    )
    at, head = current_revision(db.writer), HEAD
    if at != head:
        db.dispose()
        raise SchemaOutOfDate(
            f"database {settings.database_path} is at revision {at}, the code needs {head}: "
            "run `aisle edge migrate --config ...`"
        )
    return StoreContext(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        payments=payments or payment_provider(settings),
        store_key=load_or_create_store_key(settings.store_key_path),
        authenticator=Authenticator(db),
        members_keyring=Keyring.load_or_create(settings.members_keyring_path),
        rng=rng or random.SystemRandom(),
        gate=WorkGate(settings.server.work_slots),
    )


def create_app(settings: EdgeSettings, **overrides: Any) -> Flask:
    """Build the store server's WSGI app; ``overrides`` go to :func:`build_context`."""
    from edge.route_table import all_apis
    from edge.screens.pages import pages
    from shared.screens import add_security_headers, common

    app = Flask("edge")
    app.url_map.converters["sku"] = SkuConverter
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    ctx = build_context(settings, **overrides)
    app.extensions["aisle"] = ctx
    specs = []
    for api in all_apis():
        app.register_blueprint(api.blueprint)
        specs.extend(api.specs)
    app.extensions["aisle_specs"] = specs
    app.register_blueprint(pages)
    app.register_blueprint(common)
    # Routes whose success writes an outbox event, as each declares (``writes_events``).
    event_writers = frozenset(s.endpoint for s in specs if s.writes_events)

    @app.after_request
    def _kick_sync(response: Response) -> Response:
        # A write that queued an event for the cloud: push soon rather than at the next tick.
        sync = app.extensions.get("aisle_sync")
        if sync is not None and request.endpoint in event_writers and response.status_code < 300:
            sync.kick()
        return response

    app.after_request(add_security_headers)
    install_error_handlers(app, log)

    @app.errorhandler(WriteLockTimeout)
    def _lock_timeout(exc: WriteLockTimeout) -> tuple[dict[str, Any], int, dict[str, str]]:
        log.error(
            "a write waited %.1f s for the store's write lock (%s) and was refused: some writer "
            "holds it too long",
            ctx.db.write_lock.timeout_s,
            exc,
        )
        error = Busy("the store is busy; nothing was written, try again in a moment")
        return error.to_dict(), error.status, {"Retry-After": "1"}

    return app
