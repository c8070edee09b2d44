"""Stock use cases: movements into the ledger, on-hand, and the check that the cache is honest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edge.catalog.models import Product
from edge.db import Database, Tx, execute, to_sql_time
from edge.errors import NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.inventory.models import StockLevel, StockMovement
from edge.outbox.service import record_event
from shared.ids import new_id
from sync.contract import StockMoved

STAFF_KINDS = ("receive", "shrink", "adjust")
SHRINK_REASONS = ("damaged", "expired", "theft", "spoiled", "sample", "other")

_APPLY = (
    "INSERT INTO stock_levels (sku, on_hand) VALUES (?, ?) "
    "ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand RETURNING on_hand"
)
_INSERT_MOVEMENT = (
    "INSERT INTO stock_movements (id, sku, quantity, kind, reason, ref_id, device_id, "
    "staff_id, on_hand_after, below_zero, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Movement:
    id: str
    sku: str
    quantity: int
    kind: str
    reason: str
    on_hand_after: int
    below_zero: bool
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "sku": self.sku,
            "quantity": self.quantity,
            "kind": self.kind,
            "reason": self.reason,
            "on_hand": self.on_hand_after,
            "below_zero": self.below_zero,
            "created_at": self.created_at.isoformat(),
        }


def apply_movement(
    tx: Tx,
    *,
    sku: str,
    quantity: int,
    kind: str,
    reason: str,
    now: datetime,
    ref_id: str | None = None,
    device_id: str | None = None,
    staff_id: str | None = None,
    emit_event: bool = True,
) -> Movement:
    """Append one movement and update the cached level, in the caller's transaction.

    Selling below zero is allowed (the goods are physically in the basket) and flagged on the
    movement, so the per-SKU report shows where the books and the shelf disagree.
    """
    on_hand = int(execute(tx, _APPLY, (sku, quantity))[0])
    movement = Movement(new_id(), sku, quantity, kind, reason, on_hand, on_hand < 0, now)
    execute(
        tx,
        _INSERT_MOVEMENT,
        (
            movement.id,
            sku,
            quantity,
            kind,
            reason,
            ref_id,
            device_id,
            staff_id,
            on_hand,
            on_hand < 0,
            to_sql_time(now),
        ),
    )
    if emit_event:
        record_event(
            tx,
            StockMoved(
                movement_id=movement.id,
                sku=sku,
                quantity=quantity,
                kind=kind,
                reason=reason,
                ref_id=ref_id,
                on_hand_after=on_hand,
                at=now.isoformat(),
            ),
            now=now,
        )
    return movement


def post_movement(
    db: Database,
    *,
    sku: str,
    quantity: int,
    kind: str,
    reason: str,
    device_id: str,
    now: datetime,
    staff_id: str | None = None,
    retry: Retryable | None = None,
) -> Movement:
    """Staff stock change: receive (positive), shrink (loss, with a reason) or adjust (signed).

    ``quantity`` is given as a positive count for receive and shrink; the sign is implied by the
    kind. Adjustments carry their own sign and may not be zero.
    """
    if kind not in STAFF_KINDS:
        raise Unprocessable(
            f"kind must be one of {', '.join(STAFF_KINDS)}", details={"field": "kind"}
        )
    if kind in ("receive", "shrink") and quantity <= 0:
        raise Unprocessable(
            f"{kind} quantity must be positive", code="bad_quantity", details={"field": "quantity"}
        )
    if kind == "adjust" and quantity == 0:
        raise Unprocessable(
            "adjust quantity must not be zero", code="bad_quantity", details={"field": "quantity"}
        )
    if kind == "shrink" and not reason.strip():
        raise Unprocessable(
            "shrink needs a reason (e.g. " + ", ".join(SHRINK_REASONS) + ")",
            code="reason_required",
            details={"field": "reason"},
        )
    signed = -quantity if kind == "shrink" else quantity
    with db.write() as uow:
        if uow.session.get(Product, sku) is None:
            raise NotFound(f"no product with sku {sku!r}", code="unknown_sku", details={"sku": sku})
        movement = apply_movement(
            uow.session,
            sku=sku,
            quantity=signed,
            kind=kind,
            reason=reason.strip(),
            now=now,
            device_id=device_id,
            staff_id=staff_id,
        )
        remember(uow.session, retry, status=201, body=movement.to_dict(), now=now)
        uow.commit()
    return movement


@dataclass(frozen=True)
class StockView:
    sku: str
    name: str
    sold_by: str
    on_hand: int

    def to_dict(self) -> dict[str, object]:
        unit = "g" if self.sold_by == "kg" else "each"
        return {"sku": self.sku, "name": self.name, "on_hand": self.on_hand, "unit": unit}


def stock_of(session: Session, sku: str) -> StockView:
    """On-hand of one SKU (pieces, or grams for weighed goods)."""
    product = session.get(Product, sku)
    if product is None:
        raise NotFound(f"no product with sku {sku!r}", code="unknown_sku", details={"sku": sku})
    level = session.get(StockLevel, sku)
    return StockView(sku, product.name, product.sold_by, level.on_hand if level else 0)


def ledger_mismatches(session: Session) -> list[tuple[str, int, int]]:
    """SKUs whose cached level differs from the sum of their movements: (sku, cached, summed)."""
    sums = dict(
        session.execute(
            select(StockMovement.sku, func.sum(StockMovement.quantity)).group_by(StockMovement.sku)
        ).all()
    )
    cached = dict(session.execute(select(StockLevel.sku, StockLevel.on_hand)).all())
    out = []
    for sku in sorted(set(sums) | set(cached)):
        a, b = int(cached.get(sku, 0)), int(sums.get(sku, 0))
        if a != b:
            out.append((sku, a, b))
    return out
