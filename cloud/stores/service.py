"""Store use cases: adding a store, enrolling it with a one-time code, revoking it, HQ tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.changes.log import record_changes
from cloud.db import Database
from cloud.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from cloud.stores.models import (
    STORE_FORMATS,
    TOKEN_ROLES,
    ApiToken,
    EnrollmentCode,
    Store,
    StoreKey,
)
from shared.ids import new_id
from shared.text import unsafe_character
from sync.contract import STORE_ID_PATTERN
from sync.keys import load_public_key_b64
from sync.protocol import ERR_ENROLL_EXPIRED, ERR_ENROLL_INVALID, ERR_ENROLL_USED, ERR_REVOKED

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone

#: A channel's name, which its token carries: recorded on the members it signs up and in front
#: of its order ids in the points ledger (``shop:ORD-1``), so short, lowercase and without ``:``.
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9-]{0,15}")
#: Names a channel cannot take: the stores' own channel.
RESERVED_CHANNELS = frozenset({"store"})


def hash_secret(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalize_code(code: str) -> str:
    """Enrollment codes compare without dashes, spaces or case."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


#: Run in an enrollment's transaction once the store is enrolled, with its id: the features
#: that keep state per store open it (:func:`on_enrolled`).
_ON_ENROLLED: list[Callable[[Session, str], object]] = []


def on_enrolled(step: Callable[[Session, str], object]) -> None:
    """Run ``step(session, store_id)`` in every enrollment's transaction, once the store is
    enrolled (a feature opening its own state for the store)."""
    if step not in _ON_ENROLLED:
        _ON_ENROLLED.append(step)


def new_enrollment_code() -> str:
    """Four groups of four characters (e.g. ``KSZT-LAL6-MUEW-6ECC``): 80 random bits in an
    alphabet without look-alikes."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True)
class StoreInput:
    """What HQ says about a store when adding it."""

    id: str
    name: str = ""
    format: str = "supermarket"
    area_m2: int | None = None
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"

    def validate(self) -> None:
        if not re.match(STORE_ID_PATTERN, self.id):
            raise Unprocessable(
                "store id must be 1-32 letters, digits, '-' or '_'", details={"field": "id"}
            )
        if len(self.name) > 100 or unsafe_character(self.name) is not None:
            raise Unprocessable(
                "store name must be up to 100 characters, with no control characters",
                details={"field": "name"},
            )
        if self.format not in STORE_FORMATS:
            raise Unprocessable(
                f"format must be one of {', '.join(STORE_FORMATS)}", details={"field": "format"}
            )
        if self.area_m2 is not None and self.area_m2 < 0:
            raise Unprocessable("area_m2 must not be negative", details={"field": "area_m2"})
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Unprocessable(
                f"unknown IANA timezone {self.timezone!r}", details={"field": "timezone"}
            ) from None


def add_store(db: Database, store: StoreInput, *, now: datetime, code_ttl_s: int) -> str:
    """Register ``store`` (or update one not yet enrolled) and issue a one-time enrollment code,
    valid for ``code_ttl_s``. Returns the code; only its hash is kept."""
    store.validate()
    code = new_enrollment_code()
    with db.write() as uow:
        session = uow.session
        row = session.get(Store, store.id)
        if row is not None and row.revoked_at is not None:
            raise Conflict(f"store {store.id} was revoked", code=ERR_REVOKED)
        if row is not None and row.enrolled_at is not None:
            raise Conflict(f"store {store.id} is already enrolled", code="store_enrolled")
        if row is None:
            row = Store(id=store.id, created_at=now, enrolled_at=None, revoked_at=None)
            session.add(row)
        row.name = store.name or store.id
        row.format = store.format
        row.area_m2 = store.area_m2
        row.timezone = store.timezone
        row.currency = store.currency
        row.updated_at = now
        session.flush()  # the store row before the code that points at it
        session.add(
            EnrollmentCode(
                code_hash=hash_secret(normalize_code(code)),
                store_id=store.id,
                created_at=now,
                expires_at=now + timedelta(seconds=code_ttl_s),
                used_at=None,
            )
        )
        session.flush()
        record_changes(session, [("store_settings", store.id, store.id)], now=now)
        uow.commit()
    return code


def reissue_code(db: Database, store_id: str, *, now: datetime, code_ttl_s: int) -> str:
    """A new one-time code for a store already enrolled: its server was replaced and the key
    lost with it. Enrolling with the code registers the new key and revokes the old one; the
    store's stream stays where it was, so the new server is moved onto a new stream by a
    recovery (HQ approves that too)."""
    code = new_enrollment_code()
    with db.write() as uow:
        session = uow.session
        row = session.get(Store, store_id)
        if row is None:
            raise NotFound(f"no store {store_id!r}", code="unknown_store")
        if row.revoked_at is not None:
            raise Conflict(f"store {store_id} was revoked", code=ERR_REVOKED)
        session.add(
            EnrollmentCode(
                code_hash=hash_secret(normalize_code(code)),
                store_id=store_id,
                created_at=now,
                expires_at=now + timedelta(seconds=code_ttl_s),
                used_at=None,
            )
        )
        uow.commit()
    return code


def enroll(
    db: Database, *, code: str, store_public_key: str, store_id: str | None, now: datetime
) -> Store:
    """Register a store's public key with a one-time code; the code is spent on success.

    Refuses an unknown, used or expired code, a revoked store, a code of another store than
    ``store_id`` (when given) and a key that is not a 32-byte Ed25519 public key.
    """
    try:
        load_public_key_b64(store_public_key)
    except ValueError as exc:
        raise Unprocessable(
            f"store_public_key: {exc}", details={"field": "store_public_key"}
        ) from None
    with db.write() as uow:
        session = uow.session
        row = session.execute(
            select(EnrollmentCode)
            .where(EnrollmentCode.code_hash == hash_secret(normalize_code(code)))
            .with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise Forbidden("unknown enrollment code", code=ERR_ENROLL_INVALID)
        if row.used_at is not None:
            raise Forbidden("this enrollment code was already used", code=ERR_ENROLL_USED)
        if row.expires_at <= now:
            raise Forbidden(
                "this enrollment code has expired; ask HQ for a new one",
                code=ERR_ENROLL_EXPIRED,
                details={"expired_at": row.expires_at.isoformat()},
            )
        if store_id is not None and store_id != row.store_id:
            raise Forbidden(
                f"this code enrolls store {row.store_id}, not {store_id}",
                code="store_mismatch",
                details={"code_store_id": row.store_id},
            )
        store = session.get(Store, row.store_id, with_for_update=True)
        assert store is not None
        if store.revoked_at is not None:
            raise Forbidden(f"store {store.id} was revoked", code=ERR_REVOKED)
        if session.execute(
            select(StoreKey.id).where(StoreKey.public_key == store_public_key)
        ).first():
            raise Conflict("this public key is already registered", code="key_in_use")
        for key in session.execute(
            select(StoreKey).where(StoreKey.store_id == store.id, StoreKey.revoked_at.is_(None))
        ).scalars():
            key.revoked_at = now  # a re-enrolled store signs with its new key only
        session.add(
            StoreKey(
                store_id=store.id, public_key=store_public_key, created_at=now, revoked_at=None
            )
        )
        row.used_at = now
        store.enrolled_at = now
        session.flush()
        for step in _ON_ENROLLED:
            step(session, store.id)
        uow.commit()
        return store


def revoke_store(db: Database, store_id: str, *, now: datetime) -> None:
    """Revoke a store: its key stops working at once (403) and its codes are void."""
    with db.write() as uow:
        store = uow.session.get(Store, store_id)
        if store is None:
            raise NotFound(f"no store {store_id!r}", code="unknown_store")
        if store.revoked_at is None:
            store.revoked_at = now
            for key in uow.session.execute(
                select(StoreKey).where(StoreKey.store_id == store_id, StoreKey.revoked_at.is_(None))
            ).scalars():
                key.revoked_at = now
        uow.commit()


def active_key(session: Session, store_id: str) -> str | None:
    """The store's current public key (base64), if it is enrolled."""
    return session.execute(
        select(StoreKey.public_key)
        .where(StoreKey.store_id == store_id, StoreKey.revoked_at.is_(None))
        .order_by(StoreKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def last_key(session: Session, store_id: str) -> str | None:
    """The store's last registered public key (base64), revoked or not."""
    return session.execute(
        select(StoreKey.public_key)
        .where(StoreKey.store_id == store_id)
        .order_by(StoreKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def store_row(session: Session, store_id: str) -> Store | None:
    """The store ``store_id``, if the chain has it."""
    return session.get(Store, store_id)


def store_rows(session: Session) -> list[dict[str, Any]]:
    """Every store with its settings and enrollment, by id."""
    return [
        {
            **store.settings_dict(),
            "enrolled_at": store.enrolled_at.isoformat() if store.enrolled_at else None,
            "revoked_at": store.revoked_at.isoformat() if store.revoked_at else None,
        }
        for store in session.execute(select(Store).order_by(Store.id)).scalars()
    ]


# --- API tokens ---------------------------------------------------------------------------------


def issue_token(db: Database, *, role: str, name: str, now: datetime) -> str:
    """A new bearer token for HQ's API (``hq``, ``name`` a label) or a channel's (``channel``,
    ``name`` the channel's, see :data:`CHANNEL_NAME`); shown once, only its hash is kept."""
    if role not in TOKEN_ROLES:
        raise Unprocessable(
            f"role must be one of {', '.join(TOKEN_ROLES)}", details={"field": "role"}
        )
    if role == "channel" and (CHANNEL_NAME.fullmatch(name) is None or name in RESERVED_CHANNELS):
        raise Unprocessable(
            "a channel's name is 1-16 lowercase letters, digits or '-', starting with a letter, "
            f"and not {', '.join(sorted(RESERVED_CHANNELS))}",
            details={"field": "name"},
        )
    if len(name) > 100 or unsafe_character(name) is not None:
        raise Unprocessable(
            "a token's name must be up to 100 characters, with no control characters",
            details={"field": "name"},
        )
    token = f"aisle_{role}_{secrets.token_urlsafe(32)}"
    with db.write() as uow:
        uow.session.add(
            ApiToken(
                id=new_id(),
                role=role,
                name=name,
                token_hash=hash_secret(token),
                created_at=now,
                revoked_at=None,
            )
        )
        uow.commit()
    return token


def authenticate_token(session: Session, token: str | None, *, role: str) -> ApiToken:
    """The token's row if it is valid for ``role``; 401 or 403 otherwise."""
    if not token:
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_secret(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked token")
    if row.role != role:
        raise Forbidden(f"this route needs a {role} token", details={"role": row.role})
    return row


def hq_token_holder(db: Database, token: str) -> str:
    """The name of the HQ token ``token`` (HQ's page signing in); 401 or 403 otherwise."""
    with db.read() as session:
        return authenticate_token(session, token, role="hq").name
