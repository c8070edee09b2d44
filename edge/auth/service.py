"""Pairing devices and recognising their bearer tokens.

Only a token's SHA-256 is stored: a copied database file does not hand out working tokens.
Lookups are cached briefly per process because every request authenticates; a revoked token
stops working within ``CACHE_TTL_S``.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from edge.auth.models import ROLES, Device
from edge.db import Database
from edge.errors import Unauthorized, Unprocessable
from sync.ids import new_id

CACHE_TTL_S = 30.0
STAFF_ROLES = frozenset({"handheld", "tablet", "manager"})
ATTENDANT_ROLES = frozenset({"tablet", "manager"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a paired device or a staff login, with its role."""

    device_id: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def pair_device(db: Database, *, role: str, name: str, now: datetime) -> tuple[str, str]:
    """Register a device with ``role``; returns (device id, bearer token). Shown once."""
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}", details={"field": "role"})
    token = f"aisle_{role}_{secrets.token_urlsafe(32)}"
    device_id = new_id()
    with db.write() as uow:
        uow.session.add(
            Device(
                id=device_id,
                role=role,
                name=name,
                token_hash=hash_token(token),
                created_at=now,
                revoked_at=None,
            )
        )
        uow.commit()
    return device_id, token


class Authenticator:
    """Turns a bearer token into a :class:`Principal`, with a short per-process cache."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        digest = hash_token(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._db.read() as session:
            row = session.execute(
                select(Device.id, Device.role).where(
                    Device.token_hash == digest, Device.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            raise Unauthorized("unknown or revoked token")
        principal = Principal(device_id=row.id, role=row.role)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + CACHE_TTL_S, principal)
        return principal
