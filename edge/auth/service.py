"""Paired devices and staff logins: bearer tokens, roles, expiry and revocation.

Only a token's SHA-256 is stored: a copied database file does not hand out working tokens.
Every request looks its token up (one indexed read, a few microseconds), so a revoked or expired
token is refused at once by every server process, with no cache to wait out.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from edge.auth.models import ROLES
from edge.db import Database, RawTransaction, from_sql_time, to_sql_time
from edge.errors import Conflict, NotFound, Unauthorized, Unprocessable
from edge.idempotency import Retryable, remember
from shared.ids import new_id
from shared.text import unsafe_character

STAFF_ROLES = frozenset({"handheld", "tablet", "manager"})
ATTENDANT_ROLES = frozenset({"tablet", "manager"})
#: Devices shoppers use themselves: a shopper's own phone and a self-checkout kiosk. What they
#: send proves nothing about who stands there.
SHOPPER_ROLES = frozenset({"kiosk", "phone"})
MAX_NAME_LENGTH = 100
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a paired device or a staff login, with its role and name."""

    device_id: str
    role: str  # the device's, or "manager" while a manager is signed in on a staff device
    name: str = ""
    # The staff member signed in on the device (sales, approvals, sign-ups and counts record
    # them), if one is.
    staff_id: str | None = None
    staff_name: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_shopper(self) -> bool:
        return self.role in SHOPPER_ROLES


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A paired device as the manager's list shows it (never its token)."""

    id: str
    role: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "name": self.name,
            "status": self.status(now),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or unsafe_character(name) is not None:
        raise Unprocessable(
            f"a device name is up to {MAX_NAME_LENGTH} characters, with no control characters",
            details={"field": "name"},
        )
    return name


def pair_device(
    db: Database,
    *,
    role: str,
    name: str,
    now: datetime,
    ttl: timedelta | None = None,
) -> tuple[str, str]:
    """Register a device with ``role``; returns (device id, bearer token). Shown once.

    With ``ttl`` the token stops working that long after pairing (a temporary handheld, a
    contractor's tablet); without, it works until revoked.
    """
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}", details={"field": "role"})
    if ttl is not None and ttl <= timedelta(0):
        raise Unprocessable("a token's lifetime must be positive", details={"field": "ttl"})
    name = check_name(name)
    with db.raw_write() as tx:
        paired = add_device(tx, role=role, name=name, now=now, ttl=ttl)
        tx.commit()
    return paired


def add_device(
    tx: RawTransaction, *, role: str, name: str, now: datetime, ttl: timedelta | None
) -> tuple[str, str]:
    """A new device row in the caller's transaction: (device id, bearer token)."""
    token = f"aisle_{role}_{secrets.token_urlsafe(32)}"
    device_id = new_id()
    tx.run(
        "INSERT INTO devices (id, role, name, token_hash, created_at, expires_at, revoked_at) "
        "VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (
            device_id,
            role,
            name,
            hash_token(token),
            to_sql_time(now),
            None if ttl is None else to_sql_time(now + ttl),
        ),
    )
    return device_id, token


_DEVICE_COLUMNS = "id, role, name, created_at, expires_at, revoked_at"


def _info(row: Any) -> DeviceInfo:
    created = from_sql_time(row["created_at"])
    assert created is not None
    return DeviceInfo(
        id=row["id"],
        role=row["role"],
        name=row["name"],
        created_at=created,
        expires_at=from_sql_time(row["expires_at"]),
        revoked_at=from_sql_time(row["revoked_at"]),
    )


def _device_row(tx: RawTransaction, device_id: str) -> Any:
    """The device's row; 404 ``unknown_device`` when no device has that id."""
    row = tx.one(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,))
    if row is None:
        raise NotFound(
            f"no device {device_id}", code="unknown_device", details={"device_id": device_id}
        )
    return row


def list_devices(db: Database, *, phones: bool = True) -> list[DeviceInfo]:
    """Every device ever paired, newest first (revoked ones stay listed, for the record);
    without shoppers' phones when ``phones`` is false (the door's QR makes one per shopper)."""
    where = "" if phones else "WHERE role != 'phone' "
    with db.raw_read() as tx:
        rows = tx.all(
            f"SELECT {_DEVICE_COLUMNS} FROM devices {where}ORDER BY created_at DESC, id DESC"
        )
    return [_info(row) for row in rows]


def active_phones(db: Database, *, now: datetime) -> int:
    """How many shoppers' phones may use the store now (neither revoked nor expired)."""
    with db.raw_read() as tx:
        row = tx.one(
            "SELECT count(*) FROM devices WHERE role = 'phone' AND revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (to_sql_time(now),),
        )
    return int(row[0])


def rename_device(
    db: Database,
    device_id: str,
    name: str,
    *,
    now: datetime,
    retry: Retryable | None = None,
) -> DeviceInfo:
    """Give a device a new name (what the tablet's board and the lists show)."""
    name = check_name(name)
    with db.raw_write() as tx:
        info = replace(_info(_device_row(tx, device_id)), name=name)
        tx.run("UPDATE devices SET name = ? WHERE id = ?", (name, device_id))
        remember(tx, retry, status=200, body=info.to_dict(now), now=now)
        tx.commit()
    return info


def revoke_device(
    db: Database,
    device_id: str,
    *,
    now: datetime,
    by: Principal | None = None,
    retry: Retryable | None = None,
) -> DeviceInfo:
    """Stop a device's token at once; revoking a revoked device changes nothing.

    ``by`` is the manager asking: a manager cannot revoke its own login (a slip would lock the
    store out of its own device list; the command line can).
    """
    if by is not None and by.device_id == device_id:
        raise Conflict(
            "a manager cannot revoke the login it is using",
            code="cannot_revoke_self",
            details={"device_id": device_id},
        )
    with db.raw_write() as tx:
        row = _device_row(tx, device_id)
        if row["revoked_at"] is None:
            tx.run("UPDATE devices SET revoked_at = ? WHERE id = ?", (to_sql_time(now), device_id))
        row = tx.one(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", (device_id,))
        info = _info(row)
        remember(tx, retry, status=200, body=info.to_dict(now), now=now)
        tx.commit()
    return info


_DEVICE_OF_HASH = (
    "SELECT id, role, name, expires_at FROM devices WHERE token_hash = ? AND revoked_at IS NULL"
)


class Authenticator:
    """Turns a bearer token into a :class:`Principal`: unknown, revoked or expired is 401."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def authenticate(self, token: str | None, *, now: datetime) -> Principal:
        if not token:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("unknown or revoked token")
        with self._db.raw_read() as tx:
            row = tx.one(_DEVICE_OF_HASH, (hash_token(token),))
        if row is None:
            raise Unauthorized("unknown or revoked token")
        expires_at = from_sql_time(row["expires_at"])
        if expires_at is not None and expires_at <= now:
            raise Unauthorized("this device's token has expired: pair the device again")
        return Principal(device_id=row["id"], role=row["role"], name=row["name"])
