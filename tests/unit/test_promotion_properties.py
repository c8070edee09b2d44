"""Properties of the promotion engine over any cart and any mix of promotions: never a negative
total, no offer beyond what it may touch, allocations exact, a full refund pays back exactly
what was paid, and the scan order changes nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.pricing.cart_pricing import LineInput, price_lines
from edge.pricing.promotion_engine import Item, Occasion, PromotionBook, reprice
from shared.money import prorate
from shared.promotions import Promotion, Step, Target

SKUS = ("A", "B", "C", "D", "E")
CATEGORIES = ("dairy", "bakery", "drinks")
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@st.composite
def items(draw: st.DrawFn) -> list[Item]:
    count = draw(st.integers(1, 10))
    lines = []
    for n in range(count):
        weighed = draw(st.booleans())
        lines.append(
            Item(
                line_id=f"line-{n:02d}",
                sku=draw(st.sampled_from(SKUS)),
                category=draw(st.sampled_from(CATEGORIES)),
                piece_price=draw(st.integers(1, 40_000)),
                quantity=1 if weighed else draw(st.integers(1, 12)),
                weight_g=draw(st.integers(1, 5_000)) if weighed else None,
            )
        )
    return lines


targets = st.builds(
    Target,
    skus=st.frozensets(st.sampled_from(SKUS), max_size=2),
    categories=st.frozensets(st.sampled_from(CATEGORIES), max_size=1),
)


@st.composite
def promotions(draw: st.DrawFn, n: int) -> Promotion:
    kind = draw(
        st.sampled_from(
            [
                "percent_off",
                "amount_off",
                "member_price",
                "buy_x_get_y",
                "bundle",
                "threshold",
                "every",
            ]
        )
    )
    stage = draw(
        st.sampled_from(["basket", "coupon"] if kind in ("threshold", "every") else STAGE_CHOICES)
    )
    limited = kind in ("percent_off", "amount_off", "member_price") and stage == "line"
    steps = draw(
        st.lists(
            st.builds(Step, min=st.integers(1, 200_000), off=st.integers(1, 50_000)),
            min_size=1,
            max_size=3,
        )
    )
    return Promotion(
        id=f"p{n:02d}",
        name=f"offer {n}",
        kind=kind,
        stage=stage,
        target=draw(targets),
        group=draw(st.sampled_from([None, "g1", "g2"])),
        priority=draw(st.integers(0, 2)),
        base=draw(st.sampled_from(["original", "discounted"])),
        percent_bp=draw(st.integers(1, 10_000)),
        amount=draw(st.integers(1, 30_000)),
        price=draw(st.integers(0, 40_000)),
        buy=draw(st.integers(1, 4)),
        get=draw(st.integers(1, 3)),
        size=draw(st.integers(2, 5)),
        steps=tuple(steps) if kind == "threshold" else (),
        every=draw(st.integers(1, 50_000)),
        min_spend=draw(st.sampled_from([0, 0, 5_000, 50_000])),
        cap=draw(st.one_of(st.none(), st.integers(0, 20_000))),
        per_member_limit=draw(st.one_of(st.none(), st.integers(1, 6))) if limited else None,
        members_only=draw(st.booleans()),
    )


STAGE_CHOICES = ["line", "line", "basket", "coupon"]


@st.composite
def books(draw: st.DrawFn) -> list[Promotion]:
    count = draw(st.integers(0, 8))
    return [draw(promotions(n)) for n in range(count)]


occasions = st.builds(
    Occasion,
    store_id=st.just("S001"),
    local=st.just(NOON),
    member_id=st.sampled_from([None, "m1"]),
    tier=st.sampled_from([None, "gold"]),
    taken=st.dictionaries(st.sampled_from([f"p{n:02d}" for n in range(8)]), st.integers(0, 6)),
)


def _priced(lines: list[Item], promos: list[Promotion], occasion: Occasion):
    coupons = [p for p in promos if p.stage == "coupon"]
    book = PromotionBook(p for p in promos if p.stage != "coupon")
    return reprice(lines, book, occasion, coupons)


@settings(max_examples=150, deadline=None)
@given(items(), books(), occasions)
def test_offers_stay_within_what_they_touch_and_add_up(lines, promos, occasion):
    pricing = _priced(lines, promos, occasion)
    by_id = {line.line_id: line for line in lines}
    offers = {p.id: p for p in promos}
    per_line: Counter[str] = Counter()
    groups = Counter((a.stage, offers[a.promotion_id].group_key) for a in pricing.applied)
    assert all(count == 1 for count in groups.values()), "one offer a group in a stage"
    for applied in pricing.applied:
        promo = offers[applied.promotion_id]
        assert applied.amount > 0
        # The allocation adds up to the offer exactly, on lines it targets only.
        assert sum(amount for _, amount in applied.lines) == applied.amount
        touched = [by_id[line_id] for line_id, _ in applied.lines]
        assert all(
            promo.target.everything
            or line.sku in promo.target.skus
            or line.category in promo.target.categories
            for line in touched
        )
        # Never more than the lines it touches are worth, nor than its cap.
        assert applied.amount <= sum(line.subtotal for line in touched)
        assert promo.cap is None or applied.amount <= promo.cap
        if promo.needs_member:
            assert occasion.member_id is not None
        for line_id, amount in applied.lines:
            assert amount > 0
            per_line[line_id] += amount
    assert dict(per_line) == dict(pricing.discounts)
    assert pricing.total_discount == sum(pricing.discounts.values())
    for line in lines:
        assert 0 <= pricing.discount_of(line.line_id) <= line.subtotal


@settings(max_examples=150, deadline=None)
@given(items(), books(), occasions, st.data())
def test_refunding_every_piece_pays_back_exactly_what_was_paid(lines, promos, occasion, data):
    pricing = _priced(lines, promos, occasion)
    inputs = [
        LineInput(line.piece_price, line.quantity, 1300, pricing.discount_of(line.line_id))
        for line in lines
    ]
    priced, totals = price_lines(inputs)
    assert totals.total >= 0
    assert totals.total == sum(line.subtotal for line in lines) - pricing.total_discount
    refunded = 0
    for line, paid in zip(lines, priced, strict=True):
        # Returned in random parts, as returns refund them: cumulative, prorated.
        returned = done = 0
        while returned < line.quantity:
            part = data.draw(st.integers(1, line.quantity - returned))
            returned += part
            after = prorate(paid.total, returned, line.quantity)
            assert after >= done
            refunded += after - done
            done = after
    assert refunded == totals.total


@settings(max_examples=150, deadline=None)
@given(items(), books(), occasions, st.randoms(use_true_random=False))
def test_the_order_lines_were_scanned_in_changes_nothing(lines, promos, occasion, rnd):
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    promos_shuffled = list(promos)
    rnd.shuffle(promos_shuffled)
    assert _priced(lines, promos, occasion) == _priced(shuffled, promos_shuffled, occasion)
