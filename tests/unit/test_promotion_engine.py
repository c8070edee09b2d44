"""Golden tests of the promotion engine: every kind and the stacking order, each total worked
out by hand in the test (prices in fen)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from edge.pricing.promotion_engine import Item, Occasion, PromotionBook, reprice
from shared.promotions import Promotion, PromotionInvalid, Step, Target, Window

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=SHANGHAI)
SHOP = Occasion(store_id="S001", local=SATURDAY_NOON)
MEMBER = Occasion(store_id="S001", local=SATURDAY_NOON, member_id="m1", tier="gold")


def item(line_id: str, sku: str, price: int, quantity: int = 1, **kw: object) -> Item:
    category = str(kw.pop("category", "grocery"))
    weight = kw.pop("weight_g", None)
    assert not kw
    return Item(line_id, sku, category, price, quantity, weight)  # type: ignore[arg-type]


def promo(kind: str, **kw: object) -> Promotion:
    kw.setdefault("id", f"p-{kind}")
    kw.setdefault("name", kind.replace("_", " "))
    return Promotion(kind=kind, **kw)  # type: ignore[arg-type]


def price(items: list[Item], *promos: Promotion, occasion: Occasion = SHOP, coupons=()):
    return reprice(items, PromotionBook(promos), occasion, coupons)


MILK = Target(skus=frozenset({"MILK"}))


# --- each kind --------------------------------------------------------------------------------


def test_percent_off_an_item():
    # 2 x 12.50 at 10 % off: 2,500 x 10 % = 250.
    pricing = price(
        [item("a", "MILK", 1250, 2)], promo("percent_off", percent_bp=1000, target=MILK)
    )
    assert pricing.discounts == {"a": 250}
    assert pricing.applied[0].lines == (("a", 250),)
    assert pricing.applied[0].name == "percent off"


def test_percent_off_rounds_half_up_per_line():
    # 3 x 3.35 = 1,005 at 15 %: 150.75 -> 151.
    pricing = price([item("a", "MILK", 335, 3)], promo("percent_off", percent_bp=1500, target=MILK))
    assert pricing.discounts == {"a": 151}


def test_percent_off_a_category_leaves_the_other_lines():
    lines = [item("a", "MILK", 1250, category="dairy"), item("b", "BREAD", 800, category="bakery")]
    offer = promo("percent_off", percent_bp=2000, target=Target(categories=frozenset({"dairy"})))
    # 20 % of 1,250 = 250; the bread is not dairy.
    assert price(lines, offer).discounts == {"a": 250}


def test_amount_off_each_piece_never_below_zero():
    lines = [item("a", "MILK", 1250, 3), item("b", "GUM", 150, 2)]
    offer = promo("amount_off", amount=300, target=Target(skus=frozenset({"MILK", "GUM"})))
    # milk: 3 x 300 = 900; gum: 300 a piece, but a piece costs 150, so 2 x 150 = 300.
    assert price(lines, offer).discounts == {"a": 900, "b": 300}


def test_percent_off_the_basket_is_spread_over_the_lines_exactly():
    lines = [item("a", "A", 333), item("b", "B", 667)]
    offer = promo("percent_off", stage="basket", percent_bp=1000)
    # 10 % of 1,000 = 100, split 333:667 -> 33.3 and 66.7 -> 33 and 67 (largest remainder).
    pricing = price(lines, offer)
    assert pricing.discounts == {"a": 33, "b": 67}
    assert pricing.applied[0].amount == 100


def test_member_price_for_members_only_each_and_by_the_kilogram():
    lines = [
        item("a", "MILK", 1250, 2),
        # 1.5 kg of apples at 12.99/kg: 1,948.5 -> 1,949.
        item("b", "APPLE", 1949, weight_g=1500),
    ]
    offer = promo(
        "member_price", price=999, members_only=True, target=Target(skus=frozenset({"MILK"}))
    )
    apples = promo(
        "member_price",
        id="p-apples",
        price=999,
        members_only=True,
        target=Target(skus=frozenset({"APPLE"})),
    )
    assert price(lines, offer, apples).discounts == {}  # nobody signed in
    # milk: (1,250 - 999) x 2 = 502; apples at 9.99/kg: 1,498.5 -> 1,499; 1,949 - 1,499 = 450.
    assert price(lines, offer, apples, occasion=MEMBER).discounts == {"a": 502, "b": 450}


def test_buy_two_get_one_free_gives_the_cheapest_pieces_across_lines():
    lines = [item("a", "COLA", 300, 4), item("b", "CHIPS", 500, 2)]
    offer = promo(
        "buy_x_get_y",
        buy=2,
        get=1,
        percent_bp=10_000,
        target=Target(skus=frozenset({"COLA", "CHIPS"})),
    )
    # 6 pieces: two groups of 3, so 2 pieces free, the cheapest: 2 colas = 600.
    assert price(lines, offer).discounts == {"a": 600}


def test_buy_one_get_one_half_price_with_an_odd_piece_out():
    lines = [item("a", "X1", 1000), item("b", "X2", 800), item("c", "X3", 600)]
    offer = promo("buy_x_get_y", buy=1, get=1, percent_bp=5000)
    # 3 pieces: one pair; the cheapest piece (600) at half price = 300.
    assert price(lines, offer).discounts == {"c": 300}


def test_bundle_any_three_for_ten_yuan_takes_the_dearest_pieces():
    lines = [item("a", "YOG-A", 450, 2), item("b", "YOG-B", 400, 2)]
    offer = promo("bundle", size=3, price=1000, target=Target(categories=frozenset({"grocery"})))
    # 4 pieces: one bundle of the 3 dearest, 450 + 450 + 400 = 1,300, for 1,000: 300 off,
    # spread 900:400 -> 207.7 and 92.3 -> 208 and 92.
    pricing = price(lines, offer)
    assert pricing.discounts == {"a": 208, "b": 92}
    assert pricing.applied[0].amount == 300


def test_bundle_dearer_than_the_pieces_takes_nothing():
    lines = [item("a", "YOG", 300, 3)]
    assert price(lines, promo("bundle", size=3, price=1000)).applied == ()


@pytest.mark.parametrize(
    ("spent", "off"),
    [(9_999, 0), (10_000, 1_000), (15_000, 1_000), (20_000, 2_500), (50_000, 2_500)],
)
def test_threshold_steps_take_the_highest_step_reached(spent, off):
    offer = promo(
        "threshold", stage="basket", steps=(Step(min=10_000, off=1_000), Step(20_000, 2_500))
    )
    assert price([item("a", "TV", spent)], offer).discounts.get("a", 0) == off


def test_every_hundred_off_twenty_with_a_cap():
    lines = [item("a", "A", 25_000)]
    every = promo("every", stage="basket", every=10_000, amount=2_000)
    assert price(lines, every).discounts == {"a": 4_000}  # two whole hundreds
    capped = promo("every", stage="basket", every=10_000, amount=2_000, cap=3_000)
    assert price(lines, capped).discounts == {"a": 3_000}


def test_a_cap_on_a_line_offer_is_spread_over_its_lines():
    lines = [item("a", "A", 1000), item("b", "B", 3000)]
    offer = promo("percent_off", percent_bp=5000, cap=1000)
    # 50 %: 500 and 1,500 = 2,000, capped at 1,000 and spread 500:1,500 -> 250 and 750.
    assert price(lines, offer).discounts == {"a": 250, "b": 750}


def test_min_spend_counts_the_eligible_amount_after_line_offers():
    lines = [item("a", "MILK", 1250, 8)]  # 10,000
    line_offer = promo("percent_off", percent_bp=1000, target=MILK)
    spend = promo("threshold", stage="basket", steps=(Step(10_000, 1_500),))
    # The line offer runs first: 1,000 off leaves 9,000, under the step.
    pricing = price(lines, line_offer, spend)
    assert pricing.discounts == {"a": 1_000}
    assert [a.promotion_id for a in pricing.applied] == ["p-percent_off"]


# --- who, where, when -------------------------------------------------------------------------


def test_tier_only_offer():
    offer = promo("percent_off", percent_bp=1000, tiers=frozenset({"gold"}))
    lines = [item("a", "A", 1000)]
    assert price(lines, offer).discounts == {}
    silver = Occasion(store_id="S001", local=SATURDAY_NOON, member_id="m2", tier="silver")
    assert price(lines, offer, occasion=silver).discounts == {}
    assert price(lines, offer, occasion=MEMBER).discounts == {"a": 100}


def test_store_targeting():
    offer = promo("percent_off", percent_bp=1000, stores=frozenset({"S002"}))
    lines = [item("a", "A", 1000)]
    assert price(lines, offer).discounts == {}
    other = Occasion(store_id="S002", local=SATURDAY_NOON)
    assert price(lines, offer, occasion=other).discounts == {"a": 100}


@pytest.mark.parametrize(
    ("local", "runs"),
    [
        (datetime(2026, 11, 28, 22, 0, tzinfo=SHANGHAI), True),  # Saturday night, from 22:00
        (datetime(2026, 11, 28, 21, 59, tzinfo=SHANGHAI), False),
        (datetime(2026, 11, 29, 1, 59, tzinfo=SHANGHAI), False),  # Sunday: not a weekday named
        (datetime(2026, 11, 21, 23, 0, tzinfo=SHANGHAI), False),  # before the first date
        (datetime(2026, 12, 5, 23, 30, tzinfo=SHANGHAI), True),  # the last date, included
        (datetime(2026, 12, 12, 23, 30, tzinfo=SHANGHAI), False),
    ],
)
def test_time_window_dates_weekdays_and_hours_past_midnight(local, runs):
    window = Window(
        starts=date(2026, 11, 22),
        ends=date(2026, 12, 5),
        weekdays=frozenset({6}),
        opens=time(22, 0),
        closes=time(2, 0),
    )
    offer = promo("percent_off", percent_bp=1000, window=window)
    occasion = Occasion(store_id="S001", local=local)
    assert bool(price([item("a", "A", 1000)], offer, occasion=occasion).applied) is runs


def test_hot_product_per_member_limit_counts_what_the_member_already_had():
    offer = promo("member_price", price=990, per_member_limit=2, target=MILK)
    lines = [item("a", "MILK", 1250, 3)]
    assert price(lines, offer).discounts == {}  # a limit per member needs a member
    # Two pieces a member; one taken last week: one piece at 9.90, 260 off.
    had_one = Occasion(
        store_id="S001", local=SATURDAY_NOON, member_id="m1", taken={"p-member_price": 1}
    )
    pricing = price(lines, offer, occasion=had_one)
    assert pricing.discounts == {"a": 260}
    assert pricing.applied[0].pieces == 1
    had_two = Occasion(
        store_id="S001", local=SATURDAY_NOON, member_id="m1", taken={"p-member_price": 2}
    )
    assert price(lines, offer, occasion=had_two).discounts == {}


def test_hot_product_limit_prices_the_dearest_pieces_first():
    lines = [item("a", "HOT-A", 500, 2), item("b", "HOT-B", 900, 2)]
    offer = promo("percent_off", percent_bp=5000, per_member_limit=3)
    # Three pieces at half price, the dearest: 2 x 900 -> 900, then 1 x 500 -> 250.
    assert price(lines, offer, occasion=MEMBER).discounts == {"a": 250, "b": 900}


# --- stacking ---------------------------------------------------------------------------------


def test_best_of_within_a_group():
    lines = [item("a", "MILK", 1250, 2)]
    ten = promo("percent_off", id="ten", percent_bp=1000, group="milk", target=MILK)
    two_hundred = promo("amount_off", id="two", amount=200, group="milk", target=MILK)
    # 10 % = 250; 200 a piece = 400: the better one alone.
    pricing = price(lines, ten, two_hundred)
    assert [a.promotion_id for a in pricing.applied] == ["two"]
    assert pricing.discounts == {"a": 400}


def test_groups_stack_and_the_base_decides_the_second_percentage():
    lines = [item("a", "A", 10_000)]
    first = promo("percent_off", id="first", percent_bp=1000, group="g1", priority=0)
    on_discounted = promo("percent_off", id="second", percent_bp=2000, group="g2", priority=1)
    # 10 % of 10,000 = 1,000; then 20 % of the 9,000 left = 1,800: 2,800.
    assert price(lines, first, on_discounted).discounts == {"a": 2_800}
    on_original = promo(
        "percent_off", id="second", percent_bp=2000, group="g2", priority=1, base="original"
    )
    # 20 % of the original 10,000 = 2,000: 3,000.
    assert price(lines, first, on_original).discounts == {"a": 3_000}


def test_line_then_basket_then_coupon():
    lines = [item("a", "MILK", 1250, 10), item("b", "BREAD", 800, 10)]  # 12,500 + 8,000
    line_offer = promo("percent_off", id="1-line", percent_bp=2000, target=MILK)
    basket = promo("threshold", id="2-basket", stage="basket", steps=(Step(18_000, 1_800),))
    coupon = promo("amount_off", id="3-coupon", stage="coupon", amount=500, min_spend=18_000)
    pricing = price(lines, line_offer, basket, coupons=[coupon])
    # line: 20 % of 12,500 = 2,500, leaving 10,000 + 8,000 = 18,000;
    # basket: 18,000 reaches 18,000: 1,800, split 10:8 -> 1,000 and 800, leaving 16,200;
    # coupon: needs 18,000 of what is left: 16,200 is short, so it takes nothing.
    assert [a.promotion_id for a in pricing.applied] == ["1-line", "2-basket"]
    assert pricing.discounts == {"a": 3_500, "b": 800}
    cheaper_coupon = promo("amount_off", id="3-coupon", stage="coupon", amount=500)
    pricing = price(lines, line_offer, basket, coupons=[cheaper_coupon])
    # 500 over 9,000 : 7,200 -> 277.8 and 222.2 -> 278 and 222.
    assert pricing.discounts == {"a": 3_778, "b": 1_022}
    assert [a.stage for a in pricing.applied] == ["line", "basket", "coupon"]


def test_the_scan_order_does_not_matter():
    lines = [item("b", "COLA", 300, 2), item("a", "COLA", 300, 1), item("c", "CHIPS", 500)]
    offer = promo("buy_x_get_y", buy=1, get=1, percent_bp=10_000)
    forward = price(lines, offer)
    backward = price(list(reversed(lines)), offer)
    # 4 pieces, 2 free, the cheapest: two colas, from line "a" first (same SKU: by line id).
    assert forward == backward
    assert forward.discounts == {"a": 300, "b": 300}


# --- refused numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "percent_off", "percent_bp": 0},
        {"kind": "percent_off", "percent_bp": 10_001},
        {"kind": "amount_off", "amount": -1},
        {"kind": "buy_x_get_y", "buy": 0, "get": 1, "percent_bp": 10_000},
        {"kind": "bundle", "size": 1, "price": 100},
        {"kind": "threshold", "stage": "line", "steps": (Step(100, 10),)},
        {"kind": "threshold", "stage": "basket"},
        {"kind": "every", "stage": "basket", "amount": 10},
        {"kind": "bundle", "size": 2, "price": 100, "per_member_limit": 1},
        {"kind": "percent_off", "percent_bp": 100, "window": Window(weekdays=frozenset({0}))},
        {"kind": "percent_off", "percent_bp": 100, "window": Window(opens=time(9))},
    ],
)
def test_numbers_that_make_no_promotion_are_refused(kw):
    with pytest.raises(PromotionInvalid):
        Promotion(id="x", name="x", **kw)
