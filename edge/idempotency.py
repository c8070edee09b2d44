"""Writes a device may retry: the ``Idempotency-Key`` it sends, and the first answer it gets back.

A device that times out does not know whether its write happened, so it sends it again with
the same key. The server answers a retry with the first answer and does nothing twice:

* a key is 1 to 128 visible ASCII characters, scoped to the device that sent it (422
  ``bad_idempotency_key`` otherwise, never trimmed or stored as sent);
* the first request's answer is stored **in the same transaction as its write**
  (:func:`remember`), so there is no moment where the write is committed and its answer is not:
  a crash between the two cannot make a retry apply it again;
* the same key with another request (method, path or body) is 409 ``idempotency_key_reused``;
* two requests with one key at once: the second's transaction fails on the key's primary key and
  is rolled back whole, and it answers with the first's answer.

Only successful answers are stored: a refusal wrote nothing, so a retry may simply try again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from edge.db import Base, Database, RawTransaction, to_sql_time
from edge.errors import Conflict
from shared.idempotency import KEY_MAX, KEY_PATTERN, check_key

__all__ = ["KEY_MAX", "KEY_PATTERN", "check_key"]


class IdempotentRequest(Base):
    """The first answer to a device's retryable write, kept with the write it answered."""

    __tablename__ = "idempotent_requests"

    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    route: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    status: Mapped[int]
    response: Mapped[str | None]  # the answer's JSON, when it was known in the transaction
    resource_id: Mapped[str | None] = mapped_column(String(36))  # else what it made (a sale)
    created_at: Mapped[datetime]


@dataclass(frozen=True, slots=True)
class Retryable:
    """One retryable write as received: who sent it, its key, and what exactly it asked."""

    device_id: str
    key: str
    route: str
    fingerprint: str

    @classmethod
    def of(cls, device_id: str, key: str, route: str, method: str, path: str, body: bytes) -> Any:
        digest = hashlib.sha256()
        for part in (method.encode(), path.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return cls(device_id, key, route, digest.hexdigest())


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    """What a retry gets: the stored answer, or the resource to rebuild it from."""

    status: int
    body: Any | None
    resource_id: str | None


class SameKeyInFlight(Exception):
    """Another request with this key committed first; this one's transaction must not."""


_FIND = (
    "SELECT route, fingerprint, status, response, resource_id FROM idempotent_requests "
    "WHERE device_id = ? AND key = ?"
)
_INSERT = (
    "INSERT INTO idempotent_requests (device_id, key, route, fingerprint, status, response, "
    "resource_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def first_answer(db: Database, request: Retryable) -> FirstAnswer | None:
    """The first answer to this key from this device; 409 if the key came with another request."""
    with db.raw_read() as tx:
        row = tx.one(_FIND, (request.device_id, request.key))
    if row is None:
        return None
    if row["fingerprint"] != request.fingerprint or row["route"] != request.route:
        raise Conflict(
            "this Idempotency-Key was used for another request",
            code="idempotency_key_reused",
            details={"header": "Idempotency-Key"},
        )
    body = None if row["response"] is None else json.loads(row["response"])
    return FirstAnswer(int(row["status"]), body, row["resource_id"])


def remember(
    tx: Session | RawTransaction,
    request: Retryable | None,
    *,
    status: int,
    now: datetime,
    body: Any = None,
    resource_id: str | None = None,
) -> None:
    """Store the answer to ``request`` in the write's own transaction (nothing when no key).

    Raises :class:`SameKeyInFlight` when another request with the key got there first; the
    caller's transaction then rolls back and the first answer is returned instead.
    """
    if request is None:
        return
    params = (
        request.device_id,
        request.key,
        request.route,
        request.fingerprint,
        status,
        None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        resource_id,
        to_sql_time(now),
    )
    try:
        if isinstance(tx, RawTransaction):
            tx.run(_INSERT, params)
        else:
            with tx.begin_nested():
                tx.connection().exec_driver_sql(_INSERT, params)
    except (sqlite3.IntegrityError, IntegrityError):
        raise SameKeyInFlight(request.key) from None
