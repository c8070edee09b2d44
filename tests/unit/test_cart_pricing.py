from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.pricing.cart_pricing import LineInput, price_lines
from shared.money import tax_included

lines_strategy = st.lists(
    st.builds(
        LineInput,
        piece_price=st.integers(0, 10**6),
        quantity=st.integers(1, 9999),
        tax_rate_bp=st.sampled_from([0, 600, 900, 1300, 825]),
        line_discount=st.integers(0, 10**5),
    ),
    max_size=30,
)


def test_worked_example_two_rates():
    priced, totals = price_lines(
        [LineInput(1250, 2, 900), LineInput(790, 1, 900), LineInput(333, 3, 1300)]
    )
    assert [p.subtotal for p in priced] == [2500, 790, 999]
    assert [p.tax for p in priced] == [206, 65, 115]
    assert totals.to_dict() == {"subtotal": 4289, "discount": 0, "tax": 386, "total": 4289}


@given(lines_strategy, st.integers(0, 10**7))
def test_totals_are_exact_sums_and_never_negative(lines, cart_discount):
    priced, totals = price_lines(lines, cart_discount=cart_discount)
    assert totals.subtotal == sum(p.subtotal for p in priced)
    assert totals.discount == sum(p.discount for p in priced)
    assert totals.tax == sum(p.tax for p in priced)
    assert totals.total == totals.subtotal - totals.discount
    for line, p in zip(lines, priced, strict=True):
        assert p.subtotal == line.piece_price * line.quantity
        assert 0 <= p.discount <= p.subtotal
        assert p.total == p.subtotal - p.discount
        assert p.tax == tax_included(p.total, line.tax_rate_bp)
    assert totals.total >= 0


@given(lines_strategy, st.integers(0, 10**7))
def test_cart_discount_is_spread_exactly(lines, cart_discount):
    _, without = price_lines(lines)
    line_discounts = sum(
        min(line.line_discount, line.piece_price * line.quantity) for line in lines
    )
    _, with_discount = price_lines(lines, cart_discount=cart_discount)
    expected = min(cart_discount, without.subtotal - line_discounts)
    assert with_discount.discount == line_discounts + expected
