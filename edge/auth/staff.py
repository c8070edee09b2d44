"""Staff sign-in on a tablet or handheld: a staff id and a PIN.

The device stays the paired device; the staff member signed in on it is who acts. Approvals,
member sign-ups and stock counts record them, and a manager signed in on a tablet has the
manager's routes there (devices, pairing codes) for as long as the session lasts.

A PIN is 4 to 8 digits, kept as an scrypt hash (the standard library's, salted). Five wrong
PINs in a row lock the account for :data:`LOCK_FOR`; a right PIN resets the count. An unknown
staff id and a wrong PIN get the same answer. A session lives :data:`SESSION_TTL` (a shift) or
until sign-out, and signing in on a device ends the session before it there; only the session
token's SHA-256 is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from edge.auth.service import Principal, check_name, hash_token
from edge.db import Database, from_sql_time, to_sql_time
from edge.errors import Conflict, Forbidden, Unprocessable

#: The staff session's cookie (a page) or header (a handheld's own client).
STAFF_COOKIE = "aisle_staff"
STAFF_HEADER = "X-Staff-Session"
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=12)
SIGN_IN_ROLES = frozenset({"tablet", "handheld"})
_PIN = re.compile(r"[0-9]{4,8}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_pin(pin: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, dklen=32, **_SCRYPT)
    params = f"{_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}"
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${params}${salt_b64}${digest_b64}"


def pin_matches(pin: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(
        pin.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(got, base64.b64decode(digest))


#: A hash to check an unknown staff id's PIN against, so both take the same time.
_DUMMY = hash_pin("0000")


def check_pin(pin: str) -> str:
    if not _PIN.fullmatch(pin):
        raise Unprocessable("a PIN is 4 to 8 digits", details={"field": "pin"})
    return pin


def add_staff(
    db: Database,
    *,
    staff_id: str,
    name: str,
    role: Literal["attendant", "manager"],
    pin: str,
    now: datetime,
) -> None:
    """A new staff member (``aisle edge staff add``); 409 ``staff_exists`` for a taken id."""
    if not _ID.fullmatch(staff_id):
        raise Unprocessable(
            "a staff id is 1 to 16 letters, digits, '-' or '_'", details={"field": "staff_id"}
        )
    name = check_name(name)
    pin_hash = hash_pin(check_pin(pin))
    with db.raw_write() as tx:
        if tx.one("SELECT 1 FROM staff WHERE id = ?", (staff_id,)) is not None:
            raise Conflict(
                f"staff {staff_id} exists", code="staff_exists", details={"staff_id": staff_id}
            )
        tx.run(
            "INSERT INTO staff (id, name, role, pin_hash, failures, locked_until, created_at, "
            "disabled_at) VALUES (?, ?, ?, ?, 0, NULL, ?, NULL)",
            (staff_id, name, role, pin_hash, to_sql_time(now)),
        )
        tx.commit()


@dataclass(frozen=True, slots=True)
class SignedIn:
    staff_id: str
    name: str
    role: str
    token: str
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "staff_id": self.staff_id,
            "name": self.name,
            "role": self.role,
            "expires_at": self.expires_at.isoformat(),
        }


def _refused() -> Forbidden:
    return Forbidden(
        "this staff id and PIN do not match: try again (five wrong PINs lock the account)",
        code="staff_sign_in_failed",
    )


def sign_in(db: Database, device: Principal, staff_id: str, pin: str, *, now: datetime) -> SignedIn:
    """Sign ``staff_id`` in on ``device`` (a tablet or handheld) with their PIN."""
    if device.role not in SIGN_IN_ROLES:
        raise Forbidden("staff sign in on a tablet or a handheld", details={"role": device.role})
    stamp = to_sql_time(now)
    with db.raw_write() as tx:
        row = tx.one(
            "SELECT id, name, role, pin_hash, failures, locked_until FROM staff "
            "WHERE id = ? AND disabled_at IS NULL",
            (staff_id,),
        )
        if row is None:
            pin_matches(pin, _DUMMY)
            raise _refused()
        locked = from_sql_time(row["locked_until"])
        if locked is not None and locked > now:
            raise Conflict(
                "this account is locked after too many wrong PINs: wait, or ask a manager",
                code="staff_locked",
                details={"staff_id": staff_id, "locked_until": locked.isoformat()},
            )
        if not pin_matches(pin, row["pin_hash"]):
            failures = row["failures"] + 1
            lock = to_sql_time(now + LOCK_FOR) if failures >= MAX_FAILURES else None
            tx.run(
                "UPDATE staff SET failures = ?, locked_until = ? WHERE id = ?",
                (0 if lock else failures, lock, staff_id),
            )
            tx.commit()
            raise _refused()
        tx.run("UPDATE staff SET failures = 0, locked_until = NULL WHERE id = ?", (staff_id,))
        tx.run(
            "UPDATE staff_sessions SET ended_at = ? WHERE device_id = ? AND ended_at IS NULL",
            (stamp, device.device_id),
        )
        token = f"aisle_staff_{secrets.token_urlsafe(32)}"
        signed = SignedIn(staff_id, row["name"], row["role"], token, now + SESSION_TTL)
        tx.run(
            "INSERT INTO staff_sessions (id, token_hash, staff_id, device_id, created_at, "
            "expires_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (
                secrets.token_hex(16),
                hash_token(token),
                staff_id,
                device.device_id,
                stamp,
                to_sql_time(signed.expires_at),
            ),
        )
        tx.commit()
    return signed


def sign_out(db: Database, device: Principal, *, now: datetime) -> None:
    """End the session on ``device`` (nothing when none is open)."""
    with db.raw_write() as tx:
        tx.run(
            "UPDATE staff_sessions SET ended_at = ? WHERE device_id = ? AND ended_at IS NULL",
            (to_sql_time(now), device.device_id),
        )
        tx.commit()


_SESSION = (
    "SELECT s.staff_id, st.name, st.role, s.expires_at FROM staff_sessions s "
    "JOIN staff st ON st.id = s.staff_id "
    "WHERE s.token_hash = ? AND s.device_id = ? AND s.ended_at IS NULL AND st.disabled_at IS NULL"
)


def with_staff(db: Database, device: Principal, token: str | None, *, now: datetime) -> Principal:
    """``device`` with the staff member its session token names, if it is a live session of
    that device (another device's, ended or expired: just the device)."""
    if not token or len(token) > 256 or device.role not in SIGN_IN_ROLES:
        return device
    with db.raw_read() as tx:
        row = tx.one(_SESSION, (hash_token(token), device.device_id))
    if row is None:
        return device
    expires = from_sql_time(row["expires_at"])
    if expires is None or expires <= now:
        return device
    return Principal(
        device_id=device.device_id,
        role="manager" if row["role"] == "manager" else device.role,
        name=device.name,
        staff_id=row["staff_id"],
        staff_name=row["name"],
    )
