"""Cart totals from lines: exact integers, tax-inclusive prices, per-line tax rates.

The rules, once:

* a line's subtotal is ``piece_price * quantity`` (prices include tax);
* a cart-level discount is spread over lines in proportion to their subtotals with
  :func:`shared.money.allocate`, so the lines' discounts add up to it exactly;
* a line's total is ``subtotal - discount``, its tax ``tax_included(total, rate)`` rounded half up
  once per line; the cart's tax is the sum of its lines' taxes;
* cart totals are sums of line values: ``total == subtotal - discount`` always holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.money import allocate, tax_included


@dataclass(frozen=True, slots=True)
class LineInput:
    piece_price: int
    quantity: int
    tax_rate_bp: int
    line_discount: int = 0


@dataclass(frozen=True, slots=True)
class PricedLine:
    subtotal: int
    discount: int
    tax: int
    total: int


@dataclass(frozen=True, slots=True)
class CartTotals:
    subtotal: int
    discount: int
    tax: int
    total: int

    def to_dict(self) -> dict[str, int]:
        return {
            "subtotal": self.subtotal,
            "discount": self.discount,
            "tax": self.tax,
            "total": self.total,
        }


def price_lines(
    lines: Sequence[LineInput], *, cart_discount: int = 0
) -> tuple[list[PricedLine], CartTotals]:
    """Price every line and the cart; ``cart_discount`` never exceeds what the lines are worth."""
    subtotals = [line.piece_price * line.quantity for line in lines]
    after_line = [
        max(0, s - min(s, line.line_discount)) for s, line in zip(subtotals, lines, strict=True)
    ]
    cart_discount = max(0, min(cart_discount, sum(after_line)))
    shares = allocate(cart_discount, after_line) if lines else []
    priced = []
    for subtotal, base, share, line in zip(subtotals, after_line, shares, lines, strict=True):
        discount = (subtotal - base) + share
        total = subtotal - discount
        priced.append(PricedLine(subtotal, discount, tax_included(total, line.tax_rate_bp), total))
    totals = CartTotals(
        subtotal=sum(p.subtotal for p in priced),
        discount=sum(p.discount for p in priced),
        tax=sum(p.tax for p in priced),
        total=sum(p.total for p in priced),
    )
    return priced, totals
