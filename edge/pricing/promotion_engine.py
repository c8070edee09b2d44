"""The promotion engine: what a cart's offers take off, line by line, to the minor unit.

Pure: it reads items, promotions and the occasion (store, the store's local time, the member)
and answers the discounts; the cart re-runs it at every change. The rules, once:

* **Order, fixed:** the line stage's offers first, then the basket stage's, then coupons; the
  points a member spends pay after every discount, as a tender (not here).
* **Groups:** offers of one group never combine: of those that apply, the one taking off the
  most applies (ties: lower ``priority``, then id). A group lives within a stage (a line offer
  and a coupon may share a group's name and still combine). An offer without a group is a
  group of its own, so it combines with every other. A stage's groups run one after the other in
  ``priority`` order (then by group name), each on what the groups before it left.
* **Bases:** a percentage is off the original price (``base="original"``) or off what earlier
  offers left (``"discounted"``); no line ever goes below zero either way.
* **Allocation:** an offer on several lines (a basket offer, a bundle, a cap) is split over its
  lines in proportion to what they had left, with :func:`shared.money.allocate`: the lines'
  shares add up to the offer exactly, and no share exceeds its line. A partial return then
  refunds exactly what was paid for the pieces returned.
* **Determinism:** lines are taken in (SKU, line id) order, whatever order they were scanned
  in; where pieces are chosen (the cheapest free, the dearest in a bundle or under a limit),
  equal prices are broken the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from shared.money import allocate
from shared.promotions import FULL_BP, STAGES, Promotion, Stage, Target


@dataclass(frozen=True, slots=True)
class Item:
    """A cart line as the engine sees it: ``piece_price`` is one piece's price (a weighed
    line: the weighed amount's price, one piece)."""

    line_id: str
    sku: str
    category: str
    piece_price: int
    quantity: int
    weight_g: int | None = None

    @property
    def subtotal(self) -> int:
        return self.piece_price * self.quantity


@dataclass(frozen=True, slots=True)
class Occasion:
    """Who buys where and when: the store, its local time, the member (if any) and the pieces
    the member already had at each offer with a per-member limit."""

    store_id: str
    local: datetime
    member_id: str | None = None
    tier: str | None = None
    taken: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Applied:
    """One offer as the cart and the receipt show it: its name, what it took off and from
    which lines (line id, amount), and the pieces it priced (what a per-member limit counts)."""

    promotion_id: str
    name: str
    stage: Stage
    amount: int
    lines: tuple[tuple[str, int], ...]
    pieces: int

    def to_dict(self) -> dict[str, object]:
        return {
            "promotion_id": self.promotion_id,
            "name": self.name,
            "stage": self.stage,
            "amount": self.amount,
            "lines": [{"line_id": line, "amount": amount} for line, amount in self.lines],
        }


@dataclass(frozen=True, slots=True)
class Pricing:
    """The engine's answer: the offers that applied, in the order they ran, and each line's
    discount (their sum)."""

    applied: tuple[Applied, ...]
    discounts: Mapping[str, int]

    @property
    def total_discount(self) -> int:
        return sum(a.amount for a in self.applied)

    def discount_of(self, line_id: str) -> int:
        return self.discounts.get(line_id, 0)


class PromotionBook:
    """A store's promotions, indexed once by SKU and category so that a cart looks only at the
    offers its lines can take (build it again when the promotions change)."""

    def __init__(self, promotions: Iterable[Promotion]) -> None:
        self.promotions: tuple[Promotion, ...] = tuple(sorted(promotions, key=lambda p: p.id))
        self._by_sku: dict[str, list[int]] = defaultdict(list)
        self._by_category: dict[str, list[int]] = defaultdict(list)
        self._everything: list[int] = []
        #: The offers with a per-member limit (the pieces a member already had count).
        self.limited_ids: tuple[str, ...] = tuple(
            p.id for p in self.promotions if p.per_member_limit is not None
        )
        for n, promo in enumerate(self.promotions):
            if promo.target.everything:
                self._everything.append(n)
            for sku in promo.target.skus:
                self._by_sku[sku].append(n)
            for category in promo.target.categories:
                self._by_category[category].append(n)

    def __len__(self) -> int:
        return len(self.promotions)

    def touching(self, lines: Sequence[Item]) -> dict[int, list[int]]:
        """Promotion index -> the indexes of ``lines`` it looks at, for every promotion that
        looks at one."""
        found: dict[int, list[int]] = defaultdict(list)
        for i, line in enumerate(lines):
            for n in self._by_sku.get(line.sku, ()):
                found[n].append(i)
            for n in self._by_category.get(line.category, ()):
                if line.sku not in self.promotions[n].target.skus:  # not found by its SKU
                    found[n].append(i)
        # Promotions with one target share one list (never changed by its readers), so that a
        # group works out what those lines have left once.
        shared: dict[Target, list[int]] = {}
        for n, eligible in found.items():
            found[n] = shared.setdefault(self.promotions[n].target, eligible)
        if lines:
            every_line = list(range(len(lines)))
            for n in self._everything:
                found[n] = every_line
        return found


def runs_for(promo: Promotion, occasion: Occasion) -> bool:
    """Whether ``promo`` runs at this store, now, for this shopper (before looking at lines)."""
    if promo.stores and occasion.store_id not in promo.stores:
        return False
    if promo.needs_member and occasion.member_id is None:
        return False
    if promo.tiers and occasion.tier not in promo.tiers:
        return False
    return promo.window.covers(occasion.local)


def reprice(
    items: Sequence[Item],
    book: PromotionBook,
    occasion: Occasion,
    coupons: Sequence[Promotion] = (),
) -> Pricing:
    """Every discount the cart's ``items`` take from ``book``'s promotions and the cart's
    ``coupons`` (their value rules, at the coupon stage), by the rules in the module docstring."""
    lines = sorted(items, key=lambda line: (line.sku, line.line_id))
    run = _Run(lines, occasion)
    found = book.touching(lines)
    candidates: list[tuple[Promotion, list[int]]] = [
        (book.promotions[n], eligible) for n, eligible in sorted(found.items())
    ]
    for coupon in coupons:
        eligible = [
            i for i, line in enumerate(lines) if coupon.target.covers(line.sku, line.category)
        ]
        if eligible:
            candidates.append((coupon, eligible))
    groups: dict[tuple[int, str], list[tuple[Promotion, list[int]]]] = defaultdict(list)
    worth: dict[int, int] = {}  # what the lines of one eligible list are worth, by the list
    for promo, eligible in candidates:
        need = promo.least_spend
        if need:
            key = id(eligible)
            if key not in worth:
                worth[key] = sum(run.original[i] for i in eligible)
            if worth[key] < need:
                continue  # out of reach: offers only ever lower what lines are worth
        if runs_for(promo, occasion):
            groups[(STAGES.index(promo.stage), promo.group_key)].append((promo, eligible))
    order = sorted(
        groups,
        key=lambda key: (key[0], min(p.priority for p, _ in groups[key]), key[1]),
    )
    applied = [a for key in order if (a := run.best_of(groups[key])) is not None]
    discounts: dict[str, int] = {}
    for i, line in enumerate(lines):
        taken = line.subtotal - run.left[i]
        if taken:
            discounts[line.line_id] = taken
    return Pricing(tuple(applied), discounts)


def _half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class _Offer:
    """One offer's take at its turn: its amount, and its shares by line index (None for an
    offer on the lines together until it is chosen and spread over ``lines``)."""

    promotion: Promotion
    amount: int
    shares: dict[int, int] | None
    pieces: int
    lines: list[int]


class _Run:
    """One repricing: the lines and what each has left after the offers applied so far."""

    def __init__(self, lines: list[Item], occasion: Occasion) -> None:
        self.lines = lines
        self.occasion = occasion
        self.original = [line.subtotal for line in lines]
        self.left = list(self.original)

    def best_of(self, group: list[tuple[Promotion, list[int]]]) -> Applied | None:
        """Apply the group's offer that takes off the most; None when none takes anything."""
        best: _Offer | None = None
        if len(group) > 1:
            group = sorted(group, key=lambda pair: (pair[0].priority, pair[0].id))
        # Offers of a group on the same lines (the same list) see the same amounts left.
        seen: dict[int, tuple[list[int], int]] = {}
        for promo, eligible in group:
            live = seen.get(id(eligible))
            if live is None:
                live = seen[id(eligible)] = self._live(eligible)
            offer = self.offer(promo, *live)
            if offer is not None and (best is None or offer.amount > best.amount):
                best = offer
        if best is None:
            return None
        shares = best.shares if best.shares is not None else self._spread(best.amount, best.lines)
        for i, share in shares.items():
            self.left[i] -= share
        return Applied(
            promotion_id=best.promotion.id,
            name=best.promotion.name,
            stage=best.promotion.stage,
            amount=best.amount,
            lines=tuple((self.lines[i].line_id, shares[i]) for i in sorted(shares) if shares[i]),
            pieces=best.pieces,
        )

    # --- one offer ------------------------------------------------------------------------

    def _live(self, eligible: list[int]) -> tuple[list[int], int]:
        """The eligible lines with something left, and what they have left together."""
        left = self.left
        live = [i for i in eligible if left[i] > 0]
        return live, sum(left[i] for i in live)

    def offer(self, promo: Promotion, eligible: list[int], current: int) -> _Offer | None:
        """What ``promo`` would take off now from ``eligible`` (lines with something left,
        ``current`` together), within what they have left; None when nothing. An offer on the
        lines together is spread over them only once chosen."""
        if not eligible or current < promo.min_spend:
            return None
        if promo.kind in ("threshold", "every") or (
            promo.kind in ("percent_off", "amount_off") and promo.stage != "line"
        ):
            amount = self._whole(promo, eligible, current)
            if promo.cap is not None:
                amount = min(amount, promo.cap)
            return _Offer(promo, amount, None, 0, eligible) if amount > 0 else None
        pieces = 0
        if promo.kind == "buy_x_get_y":
            shares = self._buy_x_get_y(promo, eligible)
        elif promo.kind == "bundle":
            shares = self._bundle(promo, eligible)
        else:
            shares, pieces = self._per_piece(promo, eligible)
        amount = sum(shares.values())
        if promo.cap is not None and amount > promo.cap:
            keys = sorted(shares)
            shares = dict(zip(keys, allocate(promo.cap, [shares[i] for i in keys]), strict=True))
            amount = promo.cap
        return _Offer(promo, amount, shares, pieces, eligible) if amount > 0 else None

    def _spread(self, amount: int, eligible: list[int]) -> dict[int, int]:
        """``amount`` (at most what ``eligible`` have left) split in proportion to it."""
        return dict(zip(eligible, allocate(amount, [self.left[i] for i in eligible]), strict=True))

    def _whole(self, promo: Promotion, eligible: list[int], current: int) -> int:
        """What an offer on the eligible lines together takes off (at most what they have
        left)."""
        if promo.kind == "percent_off":
            base = sum(self.original[i] for i in eligible) if promo.base == "original" else current
            amount = _half_up(base * promo.percent_bp, FULL_BP)
        elif promo.kind == "amount_off":
            amount = promo.amount
        elif promo.kind == "every":
            amount = (current // promo.every) * promo.amount
        else:  # threshold: the highest step reached
            reached = [step for step in promo.steps if step.min <= current]
            amount = max(reached, key=lambda step: step.min).off if reached else 0
        return min(amount, current)

    def _value(self, i: int) -> Fraction:
        """What one piece of line ``i`` has left."""
        return Fraction(self.left[i], self.lines[i].quantity)

    def _percent_of(self, promo: Promotion, i: int, pieces: int) -> int:
        """``promo.percent_bp`` of ``pieces`` of line ``i``, off its base, within what is left."""
        base = self.original[i] if promo.base == "original" else self.left[i]
        quantity = self.lines[i].quantity
        return min(self.left[i], _half_up(base * pieces * promo.percent_bp, quantity * FULL_BP))

    def _per_piece(self, promo: Promotion, eligible: list[int]) -> tuple[dict[int, int], int]:
        """A line offer priced piece by piece, within a per-member limit if it has one (the
        dearest pieces first)."""
        counts = {i: self.lines[i].quantity for i in eligible}
        if promo.per_member_limit is not None:
            allowed = max(0, promo.per_member_limit - self.occasion.taken.get(promo.id, 0))
            counts = {}
            for i in sorted(eligible, key=lambda i: (-self._value(i), i)):
                if allowed == 0:
                    break
                counts[i] = min(allowed, self.lines[i].quantity)
                allowed -= counts[i]
        shares: dict[int, int] = {}
        pieces = 0
        for i, count in counts.items():
            line = self.lines[i]
            if promo.kind == "percent_off":
                share = self._percent_of(promo, i, count)
            elif promo.kind == "amount_off":
                share = min(self.left[i], promo.amount * count)
            else:  # member_price: a price each piece (a weighed line: a price a kilogram)
                price = (
                    promo.price
                    if line.weight_g is None
                    else _half_up(promo.price * line.weight_g, 1000)
                )
                share = min(self.left[i], max(0, line.piece_price - price) * count)
            if share:
                shares[i] = share
                pieces += count
        return shares, pieces

    def _buy_x_get_y(self, promo: Promotion, eligible: list[int]) -> dict[int, int]:
        """Of every ``buy + get`` eligible pieces, the cheapest ``get`` at ``percent_bp`` off."""
        total = sum(self.lines[i].quantity for i in eligible)
        free = (total // (promo.buy + promo.get)) * promo.get
        shares: dict[int, int] = {}
        for i in sorted(eligible, key=lambda i: (self._value(i), i)):
            if free == 0:
                break
            count = min(free, self.lines[i].quantity)
            free -= count
            share = self._percent_of(promo, i, count)
            if share:
                shares[i] = share
        return shares

    def _bundle(self, promo: Promotion, eligible: list[int]) -> dict[int, int]:
        """Any ``size`` eligible pieces for ``price``: the dearest pieces form the bundles."""
        total = sum(self.lines[i].quantity for i in eligible)
        bundles = total // promo.size
        wanted = bundles * promo.size
        worth: dict[int, int] = {}
        for i in sorted(eligible, key=lambda i: (-self._value(i), i)):
            if wanted == 0:
                break
            count = min(wanted, self.lines[i].quantity)
            wanted -= count
            worth[i] = _half_up(self.left[i] * count, self.lines[i].quantity)
        saving = sum(worth.values()) - bundles * promo.price
        if saving <= 0:
            return {}
        keys = sorted(worth)
        return dict(zip(keys, allocate(saving, [worth[i] for i in keys]), strict=True))
