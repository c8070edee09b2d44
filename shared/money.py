"""Money as an integer count of minor units, and the one rounding rule.

Rounding rule (written once, used everywhere): amounts are computed exactly with integers or
``Fraction`` and rounded once, half away from zero, to a whole minor unit. Tax in a tax-inclusive
price is ``round_half_up(gross * rate / (1 + rate))`` per line; the cart's tax is the sum of its
lines' taxes. Discounts are spread over lines by :func:`allocate` (largest remainder), so the line
shares always add up to the whole exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

#: Minor-unit exponent of the currencies a store may use (ISO 4217).
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "BHD": 3,
    "OMR": 3,
}

#: The largest amount a cart, a sale or a payment may come to, in minor units of any currency.
#: Devices pay what the contract lets them send (``payments[].amount`` is bounded by it), so a
#: cart that could total more is refused at the scan that would take it over: a cart nobody can
#: pay is never built.
MAX_AMOUNT = 1_000_000_000


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point for ``currency``; unknown codes are refused."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise ValueError(f"unsupported currency {currency!r}") from None


def round_half_up(value: Fraction | int) -> int:
    """Round an exact value to the nearest integer, halves away from zero."""
    value = Fraction(value)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole, remainder = divmod(magnitude.numerator, magnitude.denominator)
    if remainder * 2 >= magnitude.denominator:
        whole += 1
    return sign * whole


def tax_included(gross: int, rate_bp: int) -> int:
    """Tax contained in a tax-inclusive ``gross`` at ``rate_bp`` basis points (1300 = 13 %)."""
    if rate_bp == 0 or gross == 0:
        return 0
    # round_half_up(Fraction(gross * rate_bp, 10_000 + rate_bp)) in integers: this runs for every
    # line of every scan, and a Fraction costs a gcd and an object each time.
    denominator = 10_000 + rate_bp
    whole, remainder = divmod(abs(gross) * rate_bp, denominator)
    if remainder * 2 >= denominator:
        whole += 1
    return whole if gross > 0 else -whole


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` over ``weights`` in proportion, exactly (largest remainder method).

    The shares always sum to ``total``; a zero weight gets zero unless every weight is zero, in
    which case the split is even. Ties go to the earlier line, so the result is deterministic.
    """
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero total over no lines")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    base = sum(weights)
    if base == 0:
        weights = [1] * len(weights)
        base = len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [magnitude * w // base for w in weights]
    remainders = [magnitude * w % base for w in weights]
    left = magnitude - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        shares[i] += 1
    return [sign * s for s in shares]


def prorate(amount: int, part: int, whole: int) -> int:
    """``amount * part / whole`` rounded half up: the share of ``amount`` for ``part``."""
    if whole <= 0:
        raise ValueError("whole must be positive")
    return round_half_up(Fraction(amount * part, whole))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency. Arithmetic across currencies is refused."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        currency_exponent(self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def format(self) -> str:
        """Human form with the currency's decimals, e.g. ``12.50 CNY``."""
        return f"{format_amount(self.amount, self.currency)} {self.currency}"


def format_amount(amount: int, currency: str) -> str:
    """``1250`` CNY -> ``"12.50"``; ``-5`` -> ``"-0.05"``; JPY has no decimals."""
    exp = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if exp == 0:
        return f"{sign}{magnitude}"
    major, minor = divmod(magnitude, 10**exp)
    return f"{sign}{major}.{minor:0{exp}d}"
