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
from datetime import time as dt_time
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


@dataclass(frozen=True, slots=True)
class _Filed:
    """What the book works out once about a promotion: its stage's place in the order, its
    group, the eligible amount it needs, which target it shares with others, whether it takes
    its amount off the lines together (``whole``), and the most it can ever take off (``bound``;
    None: it depends on the cart)."""

    stage: int
    group: str
    least_spend: int
    target: int
    whole: bool
    bound: int | None
    place: tuple[int, str, int, str]  # stage, group, then within it: priority, id

    @classmethod
    def of(cls, promo: Promotion, target: int) -> _Filed:
        whole = promo.kind in ("threshold", "every") or (
            promo.kind in ("percent_off", "amount_off") and promo.stage != "line"
        )
        bound: int | None = None
        if whole and promo.kind == "amount_off":
            bound = promo.amount
        elif promo.kind == "threshold":
            bound = max(step.off for step in promo.steps)
        if promo.cap is not None:
            bound = promo.cap if bound is None else min(bound, promo.cap)
        return cls(
            STAGES.index(promo.stage),
            promo.group_key,
            promo.least_spend,
            target,
            whole,
            bound,
            (STAGES.index(promo.stage), promo.group_key, promo.priority, promo.id),
        )


#: A promotion as a book files it under its target: least spend, place (with its index),
#: index, the promotion, its filing.
_Entry = tuple[int, tuple[int, str, int, str, int], int, Promotion, "_Filed"]

#: Occasions whose runnable offers a book remembers (store, member or not, tier, minute).
_OCCASIONS_KEPT = 256
#: Kinds of line (SKU and category) whose covering targets a book remembers.
_LINES_KEPT = 100_000


class PromotionBook:
    """A store's promotions, indexed once by SKU and category so that a cart looks only at the
    offers its lines can take (build it again when the promotions change)."""

    def __init__(self, promotions: Iterable[Promotion]) -> None:
        self.promotions: tuple[Promotion, ...] = tuple(sorted(promotions, key=lambda p: p.id))
        self._by_sku: dict[str, list[int]] = defaultdict(list)
        self._by_category: dict[str, list[int]] = defaultdict(list)
        #: The offers with a per-member limit (the pieces a member already had count).
        self.limited_ids: tuple[str, ...] = tuple(
            p.id for p in self.promotions if p.per_member_limit is not None
        )
        targets: dict[Target, int] = {}
        self.filed: tuple[_Filed, ...] = tuple(
            _Filed.of(p, targets.setdefault(p.target, len(targets))) for p in self.promotions
        )
        #: The promotions of each distinct target (by the target's number in ``filed``), as
        #: (least spend, place, index, promotion, filing), the least spend first.
        of_target: list[list[_Entry]] = [[] for _ in targets]
        self._everything_target: int | None = None
        for n, promo in enumerate(self.promotions):
            filing = self.filed[n]
            of_target[filing.target].append(
                (filing.least_spend, (*filing.place, n), n, promo, filing)
            )
            if promo.target.everything:
                self._everything_target = filing.target
            for sku in promo.target.skus:
                self._by_sku[sku].append(n)
            for category in promo.target.categories:
                self._by_category[category].append(n)
        self._of_target: tuple[tuple[_Entry, ...], ...] = tuple(
            tuple(sorted(entries, key=lambda e: (e[0], e[1]))) for entries in of_target
        )
        #: (SKU, category) -> the targets (other than everything) covering such a line.
        self._targets_of: dict[tuple[str, str], tuple[int, ...]] = {}
        # Windows open and close on whole minutes (the feed's times are HH:MM), so whether an
        # offer runs is the same all minute long: worked out once a minute per kind of shopper.
        self._by_minute = all(
            w.opens is None
            or w.closes is None
            or (_whole_minute(w.opens) and _whole_minute(w.closes))
            for w in (p.window for p in self.promotions)
        )
        self._runnable: dict[tuple[object, ...], tuple[bool, ...]] = {}

    def __len__(self) -> int:
        return len(self.promotions)

    def runnable(self, occasion: Occasion) -> tuple[bool, ...]:
        """For each promotion, whether it runs on this occasion (:func:`runs_for`)."""
        if not self._by_minute:
            return tuple(runs_for(p, occasion) for p in self.promotions)
        minute = occasion.local.replace(second=0, microsecond=0)
        key = (occasion.store_id, occasion.member_id is None, occasion.tier, minute)
        found = self._runnable.get(key)
        if found is None:
            if len(self._runnable) >= _OCCASIONS_KEPT:
                self._runnable.clear()
            at = Occasion(occasion.store_id, minute, occasion.member_id, occasion.tier)
            found = self._runnable[key] = tuple(runs_for(p, at) for p in self.promotions)
        return found

    def _targets_covering(self, sku: str, category: str) -> tuple[int, ...]:
        key = (sku, category)
        found = self._targets_of.get(key)
        if found is None:
            filed = self.filed
            found = tuple(
                sorted(
                    {filed[n].target for n in self._by_sku.get(sku, ())}
                    | {filed[n].target for n in self._by_category.get(category, ())}
                )
            )
            if len(self._targets_of) >= _LINES_KEPT:
                self._targets_of.clear()
            self._targets_of[key] = found
        return found

    def touching(self, lines: Sequence[Item]) -> dict[int, list[int]]:
        """Target number -> the indexes of ``lines`` it covers, for every target that covers
        one. The promotions with one target share its list (never changed by its readers),
        so that a group works out what those lines have left once."""
        by_target: dict[int, list[int]] = {}
        known = self._targets_of
        for i, line in enumerate(lines):
            targets = known.get((line.sku, line.category))
            if targets is None:
                targets = self._targets_covering(line.sku, line.category)
            for t in targets:
                eligible = by_target.get(t)
                if eligible is None:
                    by_target[t] = [i]
                else:
                    eligible.append(i)
        if lines and self._everything_target is not None:
            by_target[self._everything_target] = list(range(len(lines)))
        return by_target

    def of_target(self, target: int) -> tuple[_Entry, ...]:
        """The promotions of a target, the least spend first."""
        return self._of_target[target]


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
    lines = sorted(items, key=_line_order)
    run = _Run(lines, occasion)
    runnable = book.runnable(occasion)
    original = run.original
    # (place, promotion, filing, eligible lines): sorted by place, each group's offers come
    # together in their order within the group.
    entries: list[tuple[tuple[int, str, int, str, int], Promotion, _Filed, list[int]]] = []
    for target, eligible in book.touching(lines).items():
        worth = -1  # what the lines are worth, once an offer needs to know
        for need, place, n, promo, filing in book.of_target(target):
            if need:
                if worth < 0:
                    worth = sum(map(original.__getitem__, eligible))
                if worth < need:
                    break  # out of reach, as are the rest (offers only lower what lines are worth)
            if runnable[n]:
                entries.append((place, promo, filing, eligible))
    for k, coupon in enumerate(coupons, start=len(book)):
        eligible = [
            i for i, line in enumerate(lines) if coupon.target.covers(line.sku, line.category)
        ]
        if not eligible or not runs_for(coupon, occasion):
            continue
        if sum(map(original.__getitem__, eligible)) < coupon.least_spend:
            continue
        filing = _Filed.of(coupon, -1)
        entries.append(((*filing.place, k), coupon, filing, eligible))
    entries.sort()
    groups: list[list[tuple[Promotion, _Filed, list[int]]]] = []
    last: tuple[int, str] | None = None
    for place, promo, filing, eligible in entries:
        if place[:2] == last:
            groups[-1].append((promo, filing, eligible))
        else:
            groups.append([(promo, filing, eligible)])
            last = place[:2]
    # A stage's groups in the order of their first offer's priority, then their name.
    groups.sort(key=_group_order)
    applied = [a for group in groups if (a := run.best_of(group)) is not None]
    discounts: dict[str, int] = {}
    left = run.left
    for i, line in enumerate(lines):
        taken = original[i] - left[i]
        if taken:
            discounts[line.line_id] = taken
    return Pricing(tuple(applied), discounts)


def _line_order(line: Item) -> tuple[str, str]:
    return (line.sku, line.line_id)


def _group_order(group: list[tuple[Promotion, _Filed, list[int]]]) -> tuple[int, int, str]:
    promo, filing, _ = group[0]
    return (filing.stage, promo.priority, filing.group)


def _whole_minute(clock: dt_time) -> bool:
    return clock.second == 0 and clock.microsecond == 0


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
        self.original = [line.piece_price * line.quantity for line in lines]
        self.left = list(self.original)

    def best_of(self, group: list[tuple[Promotion, _Filed, list[int]]]) -> Applied | None:
        """Apply the group's offer that takes off the most; None when none takes anything.
        ``group``: in order of priority, then id (the first of equals wins)."""
        best: _Offer | None = None
        most = 0  # what the best so far takes off
        # Offers of a group on the same lines (the same list) see the same amounts left.
        seen: dict[int, tuple[list[int], int]] = {}
        for promo, filed, eligible in group:
            if filed.bound is not None and filed.bound <= most:
                continue  # it cannot beat the best so far (a tie goes to the earlier one)
            live = seen.get(id(eligible))
            if live is None:
                live = seen[id(eligible)] = self._live(eligible)
            lines, current = live
            if filed.whole:
                # Worked out here rather than by offer(): a basket group holds many of these.
                if not lines or current < promo.min_spend:
                    continue
                amount = self._whole(promo, lines, current)
                if promo.cap is not None and amount > promo.cap:
                    amount = promo.cap
                if amount > most:
                    best, most = _Offer(promo, amount, None, 0, lines), amount
                continue
            offer = self.offer(promo, lines, current)
            if offer is not None and offer.amount > most:
                best, most = offer, offer.amount
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
        return live, sum(map(left.__getitem__, live))

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
