from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.money import Money, allocate, format_amount, prorate, round_half_up, tax_included


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(5, 2), 3),
        (Fraction(-5, 2), -3),
        (Fraction(7, 3), 2),
        (Fraction(8, 3), 3),
        (Fraction(1, 2), 1),
        (Fraction(-1, 2), -1),
        (0, 0),
        (Fraction(249, 100), 2),
    ],
)
def test_round_half_up_rounds_halves_away_from_zero(value, expected):
    assert round_half_up(value) == expected


@pytest.mark.parametrize(
    ("gross", "rate_bp", "tax"),
    [
        (11300, 1300, 1300),  # 113.00 incl. 13 % holds exactly 13.00
        (2500, 900, 206),  # 25.00 * 9/109 = 2.0642 -> 2.06
        (1000, 600, 57),  # 10.00 * 6/106 = 0.5660 -> 0.57
        (1, 1300, 0),
        (0, 1300, 0),
        (999, 0, 0),
        (10825, 825, 825),  # US-style 8.25 %
    ],
)
def test_tax_included_worked_examples(gross, rate_bp, tax):
    assert tax_included(gross, rate_bp) == tax


@given(st.integers(0, 10**9), st.integers(0, 10_000))
def test_tax_included_is_never_more_than_the_gross_and_is_the_nearest(gross, rate_bp):
    tax = tax_included(gross, rate_bp)
    exact = Fraction(gross * rate_bp, 10_000 + rate_bp)
    assert 0 <= tax <= gross
    assert abs(tax - exact) <= Fraction(1, 2)


@given(st.integers(-(10**9), 10**9), st.integers(0, 10_000))
def test_tax_included_rounds_half_up_away_from_zero_like_the_written_rule(gross, rate_bp):
    # The rule in words: the exact share, rounded half away from zero (refunds mirror sales).
    assert tax_included(gross, rate_bp) == round_half_up(
        Fraction(gross * rate_bp, 10_000 + rate_bp)
    )
    assert tax_included(-gross, rate_bp) == -tax_included(gross, rate_bp)


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=40))
def test_allocate_sums_exactly_and_stays_proportional(total, weights):
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert len(shares) == len(weights)
    base = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(total * weight, base) if base else Fraction(total, len(weights))
        assert abs(share - exact) < 1


def test_allocate_is_deterministic_on_ties():
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(100, [0, 0]) == [50, 50]
    assert allocate(10, [1, 0, 1]) == [5, 0, 5]


def test_allocate_refuses_negative_weights_and_empty_lines():
    with pytest.raises(ValueError, match="negative"):
        allocate(10, [1, -1])
    with pytest.raises(ValueError, match="no lines"):
        allocate(10, [])
    assert allocate(0, []) == []


@given(st.integers(0, 10**8), st.integers(1, 9999))
def test_cumulative_prorate_never_exceeds_the_whole(amount, whole):
    shares = []
    done = 0
    for part in range(1, whole + 1, max(1, whole // 7)):
        upto = prorate(amount, part, whole)
        shares.append(upto - done)
        done = upto
    final = prorate(amount, whole, whole)
    assert final == amount
    assert all(s >= 0 for s in shares)
    assert done <= amount


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(12.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="currency mismatch"):
        Money(100, "CNY") + Money(100, "USD")
    assert (Money(150, "CNY") - Money(200, "CNY")).format() == "-0.50 CNY"


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(1250, "CNY", "12.50"), (5, "CNY", "0.05"), (-5, "USD", "-0.05"), (1250, "JPY", "1250")],
)
def test_format_amount(amount, currency, text):
    assert format_amount(amount, currency) == text


def test_unknown_currency_is_refused():
    with pytest.raises(ValueError, match="unsupported currency"):
        format_amount(1, "XXX")
