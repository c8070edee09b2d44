"""The points a sale earns by the chain's earn rules, worked out by hand, and the properties
that hold whatever the basket: never negative, never more than the rules give, the same in any
order of the lines, nothing earned on what points paid."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.members.earning import EarningLine, points_earned
from sync.contract import EarnRulesItem

RULES = EarnRulesItem(
    points_per_unit=100,
    category_multipliers={"dairy": 20_000, "tobacco": 0},
    tier_multipliers={"gold": 15_000},
    hot_products={"EGGS": 5},
    tiers=[{"name": "basic", "min_spend": 0}, {"name": "gold", "min_spend": 500_000}],
)
MILK = EarningLine("MILK", "dairy", 1_250, 1)
RICE = EarningLine("RICE", "grain", 4_990, 1)
EGGS = EarningLine("EGGS", "fresh", 1_800, 2)
SMOKES = EarningLine("SMOKES", "tobacco", 3_000, 1)


def test_without_multipliers_a_point_per_unit_of_what_was_paid() -> None:
    plain = EarnRulesItem(points_per_unit=100)
    assert points_earned([MILK, RICE], points_value=0, tier="basic", rules=plain) == 62  # 6,240
    assert points_earned([MILK, RICE], points_value=240, tier="basic", rules=plain) == 60


def test_categories_tiers_and_hot_products_by_hand() -> None:
    # milk 1,250 x2 = 2,500; rice 4,990; eggs 1,800; tobacco 3,000 x0: 9,290 -> 92 points,
    # and the eggs add 5 a piece: 102.
    basket = [MILK, RICE, EGGS, SMOKES]
    assert points_earned(basket, points_value=0, tier="basic", rules=RULES) == 92 + 10
    # Gold: 9,290 x1.5 = 13,935 -> 139, plus 10.
    assert points_earned(basket, points_value=0, tier="gold", rules=RULES) == 139 + 10
    # 1,104 paid in points, spread by the lines' totals (11,040 in all): each line pays 10% of
    # itself in points, so 90% of 9,290 counts: 8,361 -> 83, plus 10.
    assert points_earned(basket, points_value=1_104, tier="basic", rules=RULES) == 83 + 10


def test_a_basket_paid_in_points_earns_only_its_hot_products() -> None:
    total = MILK.total + EGGS.total
    assert points_earned([MILK, EGGS], points_value=total, tier="gold", rules=RULES) == 10


_lines = st.lists(
    st.builds(
        EarningLine,
        sku=st.sampled_from(["MILK", "RICE", "EGGS", "SMOKES", "SOAP"]),
        category=st.sampled_from(["dairy", "grain", "fresh", "tobacco", ""]),
        total=st.integers(0, 500_000),
        pieces=st.integers(1, 20),
    ),
    max_size=12,
)


@given(lines=_lines, share=st.integers(0, 100), tier=st.sampled_from(["basic", "gold"]))
def test_never_negative_never_more_than_the_rules_and_in_any_order(
    lines: list[EarningLine], share: int, tier: str
) -> None:
    total = sum(line.total for line in lines)
    points_value = total * share // 100
    earned = points_earned(lines, points_value=points_value, tier=tier, rules=RULES)
    assert earned >= 0
    extra = sum(RULES.hot_products.get(line.sku, 0) * line.pieces for line in lines)
    most = (total - points_value) * 20_000 * 15_000 // (100 * 10_000 * 10_000)
    assert earned - extra <= most
    again = points_earned(lines[::-1], points_value=points_value, tier=tier, rules=RULES)
    assert again == earned
