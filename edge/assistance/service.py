"""The attendant's board: what needs a person now.

Two things wait for an attendant: a shopper who pressed "call for assistance" on a kiosk or in
the scan-and-go app (:func:`call`), and an open cart holding age-restricted items no approval
covers (read from the carts themselves, so nothing has to be raised or cleared: an approval, a
removed bottle or a paid cart takes it off the board). :func:`board` is both, oldest first;
the tablet polls it with the board's ETag and hears 304 while nothing changed.

A device has at most one call open: pressing again answers the same call (a phone cannot fill
the board), and a call names a cart only if it is the caller's own and still open.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.auth.service import Principal
from edge.checkout.carts import CartHead, CartLineRow, approval_covers, load_cart, require_open
from edge.db import Database, RawTransaction, from_sql_time, to_sql_time
from edge.errors import NotFound
from edge.idempotency import Retryable, remember
from shared.ids import new_id

#: A cart nobody touched for this long has been left: it is not on the board any more.
LEFT_AFTER = timedelta(hours=4)
#: The most of each list the board shows (a store has a few dozen devices).
BOARD_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    device_id: str
    device_name: str
    device_role: str
    cart_id: str | None
    reason: str
    created_at: datetime
    answered_at: datetime | None
    answered_by: str | None

    @classmethod
    def of(cls, row: Any) -> Call:
        created = from_sql_time(row["created_at"])
        assert created is not None
        return cls(
            id=row["id"],
            device_id=row["device_id"],
            device_name=row["device_name"],
            device_role=row["device_role"],
            cart_id=row["cart_id"],
            reason=row["reason"],
            created_at=created,
            answered_at=from_sql_time(row["answered_at"]),
            answered_by=row["answered_by"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "device_name": self.device_name,
            "device_role": self.device_role,
            "cart_id": self.cart_id,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "answered_by": self.answered_by,
        }


_CALL = (
    "SELECT c.*, d.name AS device_name, d.role AS device_role FROM assistance_calls c "
    "JOIN devices d ON d.id = c.device_id"
)


def call(
    db: Database,
    principal: Principal,
    *,
    cart_id: str | None,
    reason: str,
    now: datetime,
    retry: Retryable | None = None,
) -> tuple[Call, bool]:
    """A shopper's call for assistance; returns (the call, whether it is new). The device's call
    still open is answered again rather than a second one made."""
    with db.raw_write(durable=False) as tx:
        if cart_id is not None:
            require_open(load_cart(tx, principal, cart_id))
        open_call = tx.one(
            f"{_CALL} WHERE c.device_id = ? AND c.answered_at IS NULL", (principal.device_id,)
        )
        if open_call is not None:
            made = Call.of(open_call)
            remember(tx, retry, status=200, body=made.to_dict(), now=now)
            tx.commit()
            return made, False
        call_id = new_id()
        tx.run(
            "INSERT INTO assistance_calls (id, device_id, cart_id, reason, created_at, "
            "answered_at, answered_by) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
            (call_id, principal.device_id, cart_id, reason, to_sql_time(now)),
        )
        made = Call.of(tx.one(f"{_CALL} WHERE c.id = ?", (call_id,)))
        remember(tx, retry, status=201, body=made.to_dict(), now=now)
        tx.commit()
    return made, True


def answer(
    db: Database,
    principal: Principal,
    call_id: str,
    *,
    now: datetime,
    retry: Retryable | None = None,
) -> Call:
    """An attendant went to the shopper: the call leaves the board (answering twice changes
    nothing)."""
    with db.raw_write(durable=False) as tx:
        row = tx.one(f"{_CALL} WHERE c.id = ?", (call_id,))
        if row is None:
            raise NotFound(f"no call {call_id}", code="unknown_call", details={"call_id": call_id})
        if row["answered_at"] is None:
            tx.run(
                "UPDATE assistance_calls SET answered_at = ?, answered_by = ? WHERE id = ?",
                (to_sql_time(now), principal.device_id, call_id),
            )
            row = tx.one(f"{_CALL} WHERE c.id = ?", (call_id,))
        made = Call.of(row)
        remember(tx, retry, status=200, body=made.to_dict(), now=now)
        tx.commit()
    return made


def own_call(db: Database, principal: Principal) -> Call | None:
    """The caller's call still open, if any (a kiosk shows that help is on its way)."""
    with db.raw_read() as tx:
        row = tx.one(
            f"{_CALL} WHERE c.device_id = ? AND c.answered_at IS NULL", (principal.device_id,)
        )
    return None if row is None else Call.of(row)


_WAITING = (
    "SELECT carts.*, d.name AS device_name, d.role AS device_role FROM carts "
    "JOIN devices d ON d.id = carts.device_id "
    "WHERE carts.status = 'open' AND carts.updated_at >= ? AND EXISTS ("
    "SELECT 1 FROM cart_lines l WHERE l.cart_id = carts.id AND l.age_restricted) "
    "ORDER BY carts.updated_at LIMIT ?"
)
_RESTRICTED = (
    "SELECT cart_lines.*, '' AS category FROM cart_lines "
    "WHERE cart_id = ? AND age_restricted ORDER BY position"
)


def _waiting(tx: RawTransaction, now: datetime) -> list[dict[str, Any]]:
    waiting = []
    for row in tx.all(_WAITING, (to_sql_time(now - LEFT_AFTER), BOARD_LIMIT)):
        cart = CartHead.of(row)
        lines = [CartLineRow.of(line) for line in tx.all(_RESTRICTED, (cart.id,))]
        if approval_covers(cart, lines):
            continue
        waiting.append(
            {
                "cart_id": cart.id,
                "channel": cart.channel,
                "device_id": cart.device_id,
                "device_name": row["device_name"],
                "device_role": row["device_role"],
                "items": [
                    {"line_id": line.id, "name": line.name, "quantity": line.quantity}
                    for line in lines
                ],
                "since": cart.updated_at.isoformat(),
            }
        )
    return waiting


def board(db: Database, *, now: datetime) -> dict[str, Any]:
    """Open calls and carts waiting for an age check, oldest first, with the board's ETag."""
    with db.raw_read() as tx:
        calls = [
            Call.of(row).to_dict()
            for row in tx.all(
                f"{_CALL} WHERE c.answered_at IS NULL ORDER BY c.created_at LIMIT ?",
                (BOARD_LIMIT,),
            )
        ]
        approvals = _waiting(tx, now)
    content = {"calls": calls, "approvals": approvals}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    return {**content, "etag": digest}
