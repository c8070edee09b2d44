"""The points a sale earns, by the chain's earn rules (pure: no database, no clock).

The rules come from the cloud by the ``earn_rules`` feed (:class:`sync.contract.EarnRulesItem`);
a store that has not pulled them yet earns by its own ``members.points_per_unit``.

Per line, what was paid for it in money (its total less its share of the points spent on the
sale: points earn no points) counts times its category's multiplier and the member's tier's
multiplier (basis points: 10000 is one), and the sale earns one point per ``points_per_unit``
minor units of that sum, rounded down once: never a fraction, never more than the rules give,
and without multipliers exactly ``paid // points_per_unit``. A hot product (爆品) adds its extra
points per piece sold. The result does not depend on the order of the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from edge.db import RawTransaction
from shared.money import allocate
from sync.contract import EarnRulesItem

ONE = 10_000  # a multiplier of one, in basis points
#: Where the pulled rules are kept (``store_settings``).
EARN_RULES_KEY = "earn_rules"
_RULES = "SELECT value FROM store_settings WHERE key = ?"


@lru_cache(maxsize=4)
def _parsed(text: str) -> EarnRulesItem:
    return EarnRulesItem.model_validate_json(text)


def rules_here(tx: RawTransaction, *, points_per_unit: int) -> EarnRulesItem:
    """The chain's rules as this store last pulled them; before the first pull, one point per
    ``points_per_unit`` (the store's setting) and nothing else."""
    row = tx.one(_RULES, (EARN_RULES_KEY,))
    if row is None:
        return EarnRulesItem(points_per_unit=points_per_unit)
    return _parsed(str(row[0]))


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
    lines = sorted(lines, key=lambda line: (line.sku, line.total, line.pieces, line.category))
    # The points' value is spread over the lines in proportion to their totals, exactly.
    shares = allocate(
        min(points_value, sum(line.total for line in lines)), [line.total for line in lines]
    )
    tier_bp = rules.tier_multipliers.get(tier, ONE)
    weighted = sum(
        (line.total - share) * rules.category_multipliers.get(line.category, ONE)
        for line, share in zip(lines, shares, strict=True)
    )
    extra = sum(rules.hot_products.get(line.sku, 0) * line.pieces for line in lines)
    return weighted * tier_bp // (rules.points_per_unit * ONE * ONE) + extra
