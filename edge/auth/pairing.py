"""Pairing a new device with a short code, without a terminal.

A manager asks for a code for one device of a role (``POST /api/v1/pairing-codes``): six
digits, good for a few minutes (``pairing.code_ttl_s`` at most), once. The new device sends the
code once (``POST /api/v1/pairing``, no token yet) and gets its own bearer token, exactly as
``aisle edge pair`` would have given it. A manager login is never paired this way: it stays a
command on the server.

Six digits are a million codes, so guessing is bounded: every wrong code counts against every
code live at that moment, and a code against which :data:`MAX_FAILURES` wrong codes were tried is
void (the manager makes a new one). A guesser then has at most ten tries in a million at each
code. Only a code's SHA-256 is kept.

A shopper's phone cannot wait for a manager: it joins by the store's QR on the door's poster
(``POST /api/v1/store-qr`` makes it, :func:`join` redeems it). That token is long and random,
not guessable, and works for any number of phones; making a new one retires the old poster. A
phone joined this way is a ``phone`` device for :data:`JOIN_TTL`, then joins again; a phone can
only open and pay for its own carts, so the QR hands out nothing a shopper could misuse.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.auth.service import Principal, add_device, check_name
from edge.db import Database, to_sql_time
from edge.errors import NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from shared.ids import new_id

#: The roles a code may pair (a manager login is made on the server only).
PAIRABLE = ("kiosk", "phone", "handheld", "tablet", "exit")
#: Wrong codes tried while a code was live that void it.
MAX_FAILURES = 10
DEFAULT_TTL = timedelta(minutes=10)
MAX_TTL = timedelta(hours=1)
#: How long a phone joined by the store's QR keeps its token.
JOIN_TTL = timedelta(days=30)


def _hash(code: str) -> str:
    return hashlib.sha256(f"aisle-pairing:{code}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewCode:
    code: str
    role: str
    name: str
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "role": self.role,
            "name": self.name,
            "expires_at": self.expires_at.isoformat(),
        }


_LIVE = "used_at IS NULL AND voided_at IS NULL AND expires_at > ?"


def create_code(
    db: Database,
    by: Principal,
    *,
    role: str,
    name: str,
    ttl: timedelta | None,
    now: datetime,
    retry: Retryable | None = None,
) -> NewCode:
    """A new code for one device of ``role`` named ``name`` (shown once)."""
    if role not in PAIRABLE:
        raise Unprocessable(
            f"a pairing code is for one of {', '.join(PAIRABLE)} (a manager login is made on "
            "the server: aisle edge pair --role manager)",
            details={"field": "role"},
        )
    lifetime = DEFAULT_TTL if ttl is None else ttl
    if not timedelta(0) < lifetime <= MAX_TTL:
        raise Unprocessable(
            f"a code lives up to {int(MAX_TTL.total_seconds())} seconds",
            details={"field": "ttl_s"},
        )
    name = check_name(name)
    with db.raw_write() as tx:
        live = {
            r[0]
            for r in tx.all(
                f"SELECT code_hash FROM pairing_codes WHERE {_LIVE}", (to_sql_time(now),)
            )
        }
        code = f"{secrets.randbelow(1_000_000):06d}"
        while _hash(code) in live:  # two live codes never share digits
            code = f"{secrets.randbelow(1_000_000):06d}"
        made = NewCode(code, role, name, now + lifetime)
        tx.run(
            "INSERT INTO pairing_codes (id, code_hash, role, name, created_by, created_at, "
            "expires_at, failures, used_at, device_id, voided_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL)",
            (
                new_id(),
                _hash(code),
                role,
                name,
                by.device_id,
                to_sql_time(now),
                to_sql_time(made.expires_at),
            ),
        )
        remember(tx, retry, status=201, body=made.to_dict(), now=now)
        tx.commit()
    return made


@dataclass(frozen=True, slots=True)
class Paired:
    device_id: str
    role: str
    name: str
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "role": self.role,
            "name": self.name,
            "token": self.token,
        }


def redeem(db: Database, code: str, *, now: datetime) -> Paired:
    """Pair the device a live code is for; 404 ``pairing_code_invalid`` for a code that is
    unknown, used, expired or void (which one is not said: it would help a guesser)."""
    typed = code.strip()
    if len(typed) != 6 or not typed.isascii() or not typed.isdigit():
        raise Unprocessable("a pairing code is six digits", details={"field": "code"})
    stamp = to_sql_time(now)
    with db.raw_write() as tx:
        row = tx.one(
            f"SELECT id, role, name, failures FROM pairing_codes WHERE code_hash = ? AND {_LIVE}",
            (_hash(typed), stamp),
        )
        if row is None or row["failures"] >= MAX_FAILURES:
            # A wrong code counts against every live code; one tried against too often is void.
            tx.run(f"UPDATE pairing_codes SET failures = failures + 1 WHERE {_LIVE}", (stamp,))
            tx.run(
                f"UPDATE pairing_codes SET voided_at = ? WHERE failures >= ? AND {_LIVE}",
                (stamp, MAX_FAILURES, stamp),
            )
            tx.commit()
            raise NotFound(
                "this pairing code is unknown, used or expired: ask a manager for a new one",
                code="pairing_code_invalid",
            )
        device_id, token = add_device(tx, role=row["role"], name=row["name"], now=now, ttl=None)
        tx.run(
            "UPDATE pairing_codes SET used_at = ?, device_id = ? WHERE id = ?",
            (stamp, device_id, row["id"]),
        )
        tx.commit()
    return Paired(device_id, row["role"], row["name"], token)


def _join_hash(token: str) -> str:
    return hashlib.sha256(f"aisle-store-qr:{token}".encode()).hexdigest()


def new_store_qr(
    db: Database,
    by: Principal,
    *,
    now: datetime,
    answer: Callable[[str], dict[str, Any]],
    retry: Retryable | None = None,
) -> dict[str, Any]:
    """A new token for the store's scan-and-go QR, shown once as ``answer(token)`` (a retry
    gets that answer again: a phone's token is nothing to hide from the store's own file); the
    poster before it stops working."""
    token = secrets.token_urlsafe(24)
    stamp = to_sql_time(now)
    shown = answer(token)
    with db.raw_write() as tx:
        tx.run("UPDATE store_qr_codes SET revoked_at = ? WHERE revoked_at IS NULL", (stamp,))
        tx.run(
            "INSERT INTO store_qr_codes (id, token_hash, created_by, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, NULL)",
            (new_id(), _join_hash(token), by.device_id, stamp),
        )
        remember(tx, retry, status=201, body=shown, now=now)
        tx.commit()
    return shown


def join(db: Database, token: str, *, now: datetime) -> Paired:
    """A shopper's phone opened the store's QR: it becomes a phone device; 404
    ``store_qr_invalid`` for a token that is not the live poster's."""
    with db.raw_write() as tx:
        row = tx.one(
            "SELECT id FROM store_qr_codes WHERE token_hash = ? AND revoked_at IS NULL",
            (_join_hash(token.strip()),),
        )
        if row is None:
            raise NotFound(
                "this store QR is not the store's current one: scan the poster at the door",
                code="store_qr_invalid",
            )
        device_id, device_token = add_device(tx, role="phone", name="", now=now, ttl=JOIN_TTL)
        tx.commit()
    return Paired(device_id, "phone", "", device_token)
