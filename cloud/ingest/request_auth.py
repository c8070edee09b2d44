"""Authenticating a store's signed sync request.

Checks, in order: the headers are there (401 ``unsigned_request``); the protocol version is one
this cloud speaks (426); the store is enrolled (401 ``unknown_store``); the signature verifies
with its registered key (401 ``bad_signature``); the store is not revoked (403); the timestamp
is inside the window (401 ``stale_request``, the skew is recorded); the nonce is new in the
window (401 ``replayed_request``). The nonce is kept in its own short transaction, so even a
request that later fails cannot be replayed.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import request
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from cloud.db import Database
from cloud.errors import Forbidden, Unauthorized
from cloud.ingest.models import RequestNonce, StoreSyncState
from cloud.ingest.service import open_sync_state
from cloud.stores.callers import check_version
from cloud.stores.service import active_key, last_key, store_row
from cloud.web import ctx, request_target
from sync.keys import load_public_key_b64
from sync.protocol import ERR_REPLAY, ERR_REVOKED, ERR_UNKNOWN_STORE, PROTOCOL_VERSION
from sync.signing import (
    SignatureError,
    SignedHeaders,
    check_fresh,
    parse_signed_headers,
    verify_request,
)

#: Expired nonces are purged on about one request in this many: cheap, and the table stays
#: bounded by the requests of one window.
NONCE_PURGE_ONE_IN = 50


@dataclass(frozen=True, slots=True)
class StoreCaller:
    """A store whose request verified: who it is, its nonce, protocol and clock skew."""

    store_id: str
    nonce: str
    protocol: int
    skew_s: float


def _refuse(exc: SignatureError) -> Unauthorized:
    return Unauthorized(exc.message, code=exc.code, details=dict(exc.details))


def authenticate_store(
    db: Database,
    *,
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    now: datetime,
    window_s: int,
    accepted_versions: Collection[int] = (PROTOCOL_VERSION,),
) -> StoreCaller:
    """Verify a signed request end to end and spend its nonce; raises the errors above."""
    try:
        signed = parse_signed_headers(headers)
    except SignatureError as exc:
        raise _refuse(exc) from None
    check_version(signed.protocol, accepted_versions)
    with db.read() as session:
        store = store_row(session, signed.store_id)
        key_text = active_key(session, signed.store_id) if store is not None else None
        revoked = store is not None and store.revoked_at is not None
        if key_text is None and revoked:
            # A revoked store's key is revoked too: check the signature with its last key.
            key_text = last_key(session, signed.store_id)
    if store is None or key_text is None:
        raise Unauthorized(
            f"no enrolled store {signed.store_id!r}",
            code=ERR_UNKNOWN_STORE,
            details={"store_id": signed.store_id},
        )
    try:
        verify_request(
            load_public_key_b64(key_text), signed, method=method, target=target, body=body
        )
    except SignatureError as exc:
        raise _refuse(exc) from None
    if revoked:
        raise Forbidden(f"store {signed.store_id} was revoked", code=ERR_REVOKED)
    try:
        skew = check_fresh(signed, now=now, window_s=window_s)
    except SignatureError as exc:
        _spend_nonce(db, signed, now=now, window_s=window_s, skew=signed.skew_s(now))
        raise _refuse(exc) from None
    # A push records the skew the store reports about its own clock (``edge_clock``); the
    # signature's timestamp of a store that corrects its clock says little.
    if not _spend_nonce(db, signed, now=now, window_s=window_s, skew=None):
        raise Unauthorized(
            "this request was already received (replayed nonce)",
            code=ERR_REPLAY,
            details={"nonce": signed.nonce},
        )
    return StoreCaller(signed.store_id, signed.nonce, signed.protocol, skew)


def _spend_nonce(
    db: Database, signed: SignedHeaders, *, now: datetime, window_s: int, skew: float | None
) -> bool:
    """Record the nonce (False if it was there) and the store's last contact and clock skew."""
    with db.write() as uow:
        session = uow.session
        dialect = postgresql if db.is_postgresql else sqlite
        # A nonce is kept while a request carrying it could still pass the timestamp check.
        expires = max(now, datetime.fromtimestamp(signed.timestamp, now.tzinfo)) + timedelta(
            seconds=window_s
        )
        inserted = session.execute(
            dialect.insert(RequestNonce)
            .values(store_id=signed.store_id, nonce=signed.nonce, expires_at=expires)
            .on_conflict_do_nothing()
            .returning(RequestNonce.nonce)
        ).first()
        # The store's last contact, unless a push of the same store holds its sync state now
        # (that push records the contact itself): a member lookup at the checkout must not
        # wait for the store's own batch to be applied.
        state = session.execute(
            select(StoreSyncState)
            .where(StoreSyncState.store_id == signed.store_id)
            .with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if state is None and session.get(StoreSyncState, signed.store_id) is None:
            state = open_sync_state(session, signed.store_id)
        if state is not None:
            state.last_seen_at = now
            if skew is not None:
                state.clock_skew_s = round(skew, 3)
            state.protocol_version = signed.protocol
        if inserted is not None and secrets.randbelow(NONCE_PURGE_ONE_IN) == 0:
            session.execute(delete(RequestNonce).where(RequestNonce.expires_at < now))
        uow.commit()
    return inserted is not None


# --- the store caller of the cloud's routes (registered with cloud.web by cloud.ingest.api) ---


def signed_store() -> StoreCaller:
    """The store that signed this request; 401/403/426 otherwise (see above)."""
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
