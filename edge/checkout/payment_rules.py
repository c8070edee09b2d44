"""The tender rules of a checkout, pure: which payments pay a total, and the change due.

Cash may be more than what is left to pay (the change is given back in cash); card and wallet
payments are taken from an acquirer and must never be more than the total, and when no cash is
tendered they must add up to it exactly. A sale of nothing (total 0) needs no payment.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import Unprocessable

PAYMENT_METHODS = ("cash", "card", "wallet")


@dataclass(frozen=True)
class PaymentRequest:
    method: str
    amount: int


def change_due(payments: list[PaymentRequest], total: int) -> int:
    """Check the tender against the total; returns the change due (given in cash). Raises
    :class:`Unprocessable` naming the field, or ``payment_mismatch`` with the figures."""
    if not payments and total > 0:
        raise Unprocessable("payments are required", details={"field": "payments"})
    for i, p in enumerate(payments):
        if p.method not in PAYMENT_METHODS:
            raise Unprocessable(
                f"payment method must be one of {', '.join(PAYMENT_METHODS)}",
                details={"field": f"payments.{i}.method"},
            )
        if p.amount <= 0:
            raise Unprocessable(
                "payment amounts must be positive", details={"field": f"payments.{i}.amount"}
            )
    cash = sum(p.amount for p in payments if p.method == "cash")
    other = sum(p.amount for p in payments if p.method != "cash")
    if other > total:
        raise Unprocessable(
            "card and wallet payments exceed the total",
            code="payment_mismatch",
            details={"total": total, "non_cash": other},
        )
    if cash == 0 and other != total:
        raise Unprocessable(
            "card and wallet payments must add up to the total exactly",
            code="payment_mismatch",
            details={"total": total, "paid": other},
        )
    if cash + other < total:
        raise Unprocessable(
            "payments do not cover the total",
            code="payment_mismatch",
            details={"total": total, "paid": cash + other},
        )
    return cash + other - total
