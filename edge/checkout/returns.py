"""Returns: refund some or all of a sale's lines; stock comes back and HQ hears of it.

A line's refunds are computed cumulatively: after returning ``r`` of ``q`` pieces the line has
refunded ``round_half_up(total * r / q)`` in all, so partial returns add up to exactly what was
paid for the line (its share of discounts included) and never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from edge.auth.service import Principal
from edge.checkout.models import Payment, Return, ReturnLine, Sale, SaleLine
from edge.checkout.sale_lines import stock_units
from edge.checkout.sale_points import POINTS_TENDER, points_tender
from edge.context import StoreContext
from edge.coupons.service import give_back
from edge.errors import Conflict, NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.inventory.service import apply_movement
from edge.members.models import Member
from edge.outbox.service import record_event
from shared.ids import new_id
from shared.money import allocate, prorate
from sync import contract


@dataclass(frozen=True)
class ReturnRequestLine:
    line_id: str
    quantity: int


def create_return(
    ctx: StoreContext,
    principal: Principal,
    sale_id: str,
    *,
    lines: list[ReturnRequestLine],
    reason: str,
    idempotency_key: str | None = None,
    retry: Retryable | None = None,
) -> dict[str, Any]:
    """Refund the given quantities of a sale's lines, all or nothing."""
    if not lines:
        raise Unprocessable("a return needs at least one line", details={"field": "lines"})
    if not reason.strip():
        raise Unprocessable(
            "a return needs a reason", code="reason_required", details={"field": "reason"}
        )
    requested: dict[str, int] = {}
    for i, wanted in enumerate(lines):
        if wanted.quantity <= 0:
            raise Unprocessable(
                "return quantities must be positive", details={"field": f"lines.{i}.quantity"}
            )
        requested[wanted.line_id] = requested.get(wanted.line_id, 0) + wanted.quantity
    now = ctx.clock.now()
    with ctx.db.write() as uow:
        session = uow.session
        if idempotency_key:
            done = session.execute(
                select(Return).where(Return.idempotency_key == idempotency_key)
            ).scalar()
            if done is not None:
                if done.sale_id != sale_id:
                    raise Conflict(
                        "this Idempotency-Key was used for another return",
                        code="idempotency_key_reused",
                        details={"return_id": done.id},
                    )
                return return_dict(session, done)
        sale = session.get(Sale, sale_id)
        if sale is None:
            raise NotFound(f"no sale {sale_id}", code="unknown_sale", details={"sale_id": sale_id})
        sale_lines = {
            line.id: line
            for line in session.execute(
                select(SaleLine).where(SaleLine.sale_id == sale.id)
            ).scalars()
        }
        refunded_before = sum(line.refunded_amount for line in sale_lines.values())
        ret = Return(
            id=new_id(),
            sale_id=sale.id,
            idempotency_key=idempotency_key or None,
            reason=reason.strip()[:200],
            refund_total=0,
            device_id=principal.device_id,
            created_at=now,
        )
        session.add(ret)
        session.flush()
        refund_total = 0
        event_lines: list[contract.ReturnLine] = []
        for line_id, quantity in requested.items():
            line = sale_lines.get(line_id)
            if line is None:
                raise NotFound(
                    f"sale {sale.number} has no line {line_id}",
                    code="unknown_line",
                    details={"line_id": line_id},
                )
            left = line.quantity - line.returned_quantity
            if quantity > left:
                raise Conflict(
                    f"only {left} of {line.name} can still be returned",
                    code="return_exceeds_sale",
                    details={"line_id": line_id, "returnable": left, "requested": quantity},
                )
            refunded_after = prorate(line.total, line.returned_quantity + quantity, line.quantity)
            amount = refunded_after - line.refunded_amount
            line.returned_quantity += quantity
            line.refunded_amount = refunded_after
            refund_total += amount
            session.add(
                ReturnLine(
                    id=new_id(),
                    return_id=ret.id,
                    sale_line_id=line.id,
                    quantity=quantity,
                    amount=amount,
                )
            )
            movement = apply_movement(
                session,
                sku=line.sku,
                quantity=stock_units(quantity, line.weight_g),
                kind="return",
                reason=ret.reason,
                now=now,
                ref_id=ret.id,
                device_id=principal.device_id,
                emit_event=False,  # carried by the return event
            )
            event_lines.append(
                contract.ReturnLine(
                    sale_line_id=line.id,
                    sku=line.sku,
                    quantity=quantity,
                    amount=amount,
                    stock_units=movement.quantity,
                    movement_id=movement.id,
                )
            )
        ret.refund_total = refund_total
        session.flush()
        out = return_dict(session, ret)
        refunds = out["refunds"]
        if sale.member_id is not None:
            _move_points(session, sale, refunded_before, refund_total, refunds, now)
        session.flush()
        everything_back = all(
            line.returned_quantity == line.quantity for line in sale_lines.values()
        )
        coupons_back = give_back(session, sale.id, ret.id) if everything_back else []
        record_event(
            session,
            contract.ReturnCreated(
                store_id=ctx.store_id,
                return_id=ret.id,
                sale_id=sale.id,
                sale_number=sale.number,
                reason=ret.reason,
                refund_total=refund_total,
                currency=sale.currency,
                lines=event_lines,
                refunds=[contract.Refund(**refund) for refund in refunds],
                points_back=points_back(sale, refunds),
                coupons_back=coupons_back,
                at=now.isoformat(),
            ),
            now=now,
        )
        remember(session, retry, status=201, body={"return": out}, now=now)
        uow.commit()
    return out


def _refund_tenders(session: Any, sale: Sale, amount: int) -> list[dict[str, Any]]:
    """Spread a refund over the sale's tenders in proportion to what each really paid. Points
    go back as whole points: what a point's fraction of the points' share would be goes to the
    next tender instead."""
    tenders: list[tuple[str, int]] = [
        (p["method"], p["amount"]) for p in points_tender(sale.points_value, sale.points_hold_id)
    ]
    change_left = sale.change
    for p in session.execute(
        select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id)
    ).scalars():
        net = p.amount
        if p.method == "cash" and change_left:
            taken = min(change_left, net)
            net -= taken
            change_left -= taken
        tenders.append((p.method, net))
    shares = allocate(amount, [net for _, net in tenders]) if tenders else []
    if sale.points_value and len(shares) > 1:
        point = sale.points_value // sale.points_burned
        fraction = shares[0] % point
        shares[0] -= fraction
        shares[1] += fraction
    return [
        {"method": method, "amount": share}
        for (method, _), share in zip(tenders, shares, strict=True)
        if share
    ]


def _move_points(
    session: Any,
    sale: Sale,
    refunded_before: int,
    refund: int,
    refunds: list[dict[str, Any]],
    now: datetime,
) -> None:
    """The member's balance here after a return, as the cloud's ledger will have it: the points
    the sale earned go back out in proportion to what was refunded in all (rounded down, at most
    what it earned), and the points the refund gives back come in."""
    earned, spend = sale.points_earned, sale.total
    if spend:
        taken_before = earned * min(refunded_before, spend) // spend
        taken = earned * min(refunded_before + refund, spend) // spend - taken_before
    else:
        taken = 0
    moved = points_back(sale, refunds) - taken
    if moved:
        session.execute(
            update(Member)
            .where(Member.id == sale.member_id)
            .values(balance=Member.balance + moved, updated_at=now)
        )


def points_back(sale: Sale, refunds: list[dict[str, Any]]) -> int:
    """The burned points a refund gives back: its points tender's share, in points."""
    value = sum(r["amount"] for r in refunds if r["method"] == POINTS_TENDER)
    return value // (sale.points_value // sale.points_burned) if value else 0


def return_dict(session: Any, ret: Return) -> dict[str, Any]:
    """A return as devices see it; the refund split is derived the same way every time."""
    rows = session.execute(select(ReturnLine).where(ReturnLine.return_id == ret.id)).scalars()
    sale = session.get(Sale, ret.sale_id)
    return {
        "id": ret.id,
        "sale_id": ret.sale_id,
        "reason": ret.reason,
        "refund_total": ret.refund_total,
        "created_at": ret.created_at.isoformat(),
        "lines": [
            {"line_id": r.sale_line_id, "quantity": r.quantity, "amount": r.amount} for r in rows
        ],
        "refunds": _refund_tenders(session, sale, ret.refund_total),
    }
