"""Reading a sale back: the sale dict devices and the outbox see, and the checkout answer.

A sale dict has the ``sales`` row's fields, its lines (see :mod:`edge.checkout.sale_lines`) and
its payments. The checkout answer adds the receipt and, for scan-to-buy, the exit pass; a retry
of a checkout gets the same answer read back from the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.auth.service import Principal
from edge.checkout.exit_pass import exit_pass_qr_svg
from edge.checkout.models import ExitPass, Payment, Sale
from edge.checkout.sale_lines import line_dicts, select_lines
from edge.checkout.sale_points import member_points, points_tender
from edge.checkout.sale_receipts import receipt_dict
from edge.context import StoreContext
from edge.coupons.service import sale_coupons_of
from edge.errors import NotFound
from edge.pricing.store_promotions import discounts_of

ExitPassInfo = tuple[str, datetime]  # (token, expires_at)


@dataclass(frozen=True)
class CheckoutResult:
    """What a checkout answers: the sale, its receipt and its exit pass (scan-to-buy only)."""

    sale: dict[str, Any]
    receipt: dict[str, Any]
    exit_pass: dict[str, str] | None
    replayed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"sale": self.sale, "receipt": self.receipt, "exit_pass": self.exit_pass}


def sale_dict(session: Session, sale: Sale) -> dict[str, Any]:
    """The sale with its lines and payments, as the checkout wrote it down."""
    lines = session.execute(select_lines(sale.id))
    pays = session.execute(
        select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id)
    ).scalars()
    return {
        "id": sale.id,
        "number": sale.number,
        "cart_id": sale.cart_id,
        "channel": sale.channel,
        "currency": sale.currency,
        "subtotal": sale.subtotal,
        "discount": sale.discount,
        "tax": sale.tax,
        "total": sale.total,
        "paid": sale.paid,
        "change": sale.change,
        "item_count": sale.item_count,
        "device_id": sale.device_id,
        "approved_by": sale.approved_by,
        "staff_id": sale.staff_id,
        "created_at": sale.created_at.isoformat(),
        "lines": line_dicts(lines),
        "discounts": discounts_of(session, sale.id),
        "coupons": sale_coupons_of(session, sale.id),
        "payments": points_tender(sale.points_value, sale.points_hold_id)
        + [{"method": p.method, "amount": p.amount, "reference": p.provider_ref} for p in pays],
        "member": None
        if sale.member_id is None
        else member_points(
            sale.member_id,
            earned=sale.points_earned,
            burned=sale.points_burned,
            spend=sale.total,
            hold_id=sale.points_hold_id,
        ),
        "points": None
        if sale.member_id is None
        else {
            "earned": sale.points_earned,
            "burned": sale.points_burned,
            "balance_after": sale.points_balance_after,
        },
    }


def get_sale(ctx: StoreContext, principal: Principal, sale_id: str) -> dict[str, Any]:
    """A sale with its lines and payments; devices see their own sales, staff see all, and
    find one by its number too (printed on the receipt: a return at the service desk)."""
    with ctx.db.read() as session:
        sale = session.get(Sale, sale_id)
        if sale is None and principal.is_staff:
            sale = session.execute(select(Sale).where(Sale.number == sale_id)).scalar_one_or_none()
        if sale is None or (not principal.is_staff and sale.device_id != principal.device_id):
            raise NotFound(f"no sale {sale_id}", code="unknown_sale", details={"sale_id": sale_id})
        return sale_dict(session, sale)


def exit_pass_info(session: Session, sale: Sale) -> ExitPassInfo | None:
    """The exit pass issued with a scan-to-buy sale; ``None`` for other channels."""
    if sale.channel != "scan_to_buy":
        return None
    row = session.execute(select(ExitPass).where(ExitPass.sale_id == sale.id)).scalar_one()
    return row.token, row.expires_at


def result_of(
    ctx: StoreContext, data: dict[str, Any], exit_pass: ExitPassInfo | None, *, replayed: bool
) -> CheckoutResult:
    """The checkout answer of the sale dict ``data``: receipt and QR code rendered here."""
    rendered = None
    if exit_pass is not None:
        token, expires_at = exit_pass
        rendered = {
            "token": token,
            "qr_svg": exit_pass_qr_svg(token),
            "expires_at": expires_at.isoformat(),
        }
    return CheckoutResult(data, receipt_dict(ctx, data), rendered, replayed)


def stored_result(
    ctx: StoreContext, session: Session, sale: Sale, *, replayed: bool
) -> CheckoutResult:
    """The checkout answer of a sale read back from the database."""
    return result_of(
        ctx, sale_dict(session, sale), exit_pass_info(session, sale), replayed=replayed
    )
