"""The points a sale earns, by the chain's earn rules (pure: no database, no clock).

The rules come from the cloud by the ``earn_rules`` feed (:class:`sync.contract.EarnRulesItem`);
a store that has not pulled them yet earns by its own ``members.points_per_unit``.

Per line, what was paid for it in money (its total less its share of the points spent on the
sale: points earn no points) earns one point per ``points_per_unit`` minor units, times its
category's multiplier and the member's tier's multiplier (in basis points: 10000 is one). Each
line's points are rounded down, so a sale never earns a fraction nor more than the rules give,
and a hot product (爆品) adds its extra points per piece sold. The result does not depend on the
order of the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.money import allocate
from sync.contract import EarnRulesItem

ONE = 10_000  # a multiplier of one, in basis points


@dataclass(frozen=True)
class EarningLine:
    sku: str
    category: str
    total: int  # what the line costs, minor units
    pieces: int  # pieces sold (1 for a weighed line)


def points_earned(
    lines: Sequence[EarningLine], *, points_value: int, tier: str, rules: EarnRulesItem
) -> int:
    """The points a sale of ``lines`` earns its member of ``tier``, ``points_value`` (minor
    units) of it paid in points."""
    if not lines:
        return 0
    # The points' value is spread over the lines in proportion to their totals, exactly.
    shares = allocate(min(points_value, sum(line.total for line in lines)), [line.total for line in lines])
    tier_bp = rules.tier_multipliers.get(tier, ONE)
    earned = 0
    for line, share in zip(lines, shares, strict=True):
        category_bp = rules.category_multipliers.get(line.category, ONE)
        paid = line.total - share
        earned += paid * category_bp * tier_bp // (rules.points_per_unit * ONE * ONE)
        earned += rules.hot_products.get(line.sku, 0) * line.pieces
    return earned
