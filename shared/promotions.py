"""Promotions as the store's engine reads them: what a promotion takes off, which lines it looks
at, when and for whom it runs. Plain frozen values; the engine (:mod:`promotion_engine`) applies
them and the feed that brings them from the cloud builds them.

The kinds, and what their numbers mean (amounts in minor units, percentages in basis points):

* ``percent_off``: ``percent_bp`` off each eligible line (the line stage) or off the eligible
  lines together (the basket and coupon stages); ``base`` says off what (below).
* ``amount_off``: ``amount`` off each eligible piece (the line stage), or off the eligible lines
  together (the basket and coupon stages).
* ``member_price``: each eligible piece costs ``price`` (a weighed line: ``price`` a kilogram).
* ``buy_x_get_y``: of every ``buy + get`` eligible pieces, the cheapest ``get`` are
  ``percent_bp`` off (10000: free). Pieces from every eligible line count together.
* ``bundle``: any ``size`` eligible pieces for ``price``; the dearest pieces form the bundles.
* ``threshold``: spend at least ``min`` of a step's eligible amount, save its ``off`` (several
  steps: the highest reached counts; one step is "spend X save Y").
* ``every``: ``amount`` off every whole ``every`` of the eligible amount ("every 100 off 20").

Percentages state their ``base``: ``"original"`` (the lines' prices before any offer) or
``"discounted"`` (what is left after the offers applied before this one). Either way no line
goes below zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

Kind = Literal[
    "percent_off", "amount_off", "member_price", "buy_x_get_y", "bundle", "threshold", "every"
]
Stage = Literal["line", "basket", "coupon"]
Base = Literal["original", "discounted"]

KINDS: tuple[Kind, ...] = (
    "percent_off",
    "amount_off",
    "member_price",
    "buy_x_get_y",
    "bundle",
    "threshold",
    "every",
)
#: The fixed order the stages run in; points then pay as a tender, after every discount.
STAGES: tuple[Stage, ...] = ("line", "basket", "coupon")
#: Kinds that price the pieces a shopper takes (the ones a per-member limit counts).
PIECE_KINDS: frozenset[Kind] = frozenset({"percent_off", "amount_off", "member_price"})
#: Kinds that need the eligible amount as a whole, so they cannot run line by line.
BASKET_KINDS: frozenset[Kind] = frozenset({"threshold", "every"})
FULL_BP = 10_000


class PromotionInvalid(ValueError):
    """A promotion whose numbers do not make one (refused where it is authored)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The lines a promotion looks at: those whose SKU or category is named; none named, every
    line."""

    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not self.skus and not self.categories

    def covers(self, sku: str, category: str) -> bool:
        """Whether a line of ``sku`` in ``category`` is one the promotion looks at."""
        return self.everything or sku in self.skus or category in self.categories


@dataclass(frozen=True, slots=True)
class Window:
    """When a promotion runs, on the store's own clock: from ``starts`` to ``ends`` (dates, both
    included), on ``weekdays`` (1 Monday .. 7 Sunday; none named, every day), between ``opens``
    and ``closes`` (``closes`` not included; a window may pass midnight)."""

    starts: date | None = None
    ends: date | None = None
    weekdays: frozenset[int] = frozenset()
    opens: time | None = None
    closes: time | None = None

    def covers(self, local: datetime) -> bool:
        day = local.date()
        if self.starts is not None and day < self.starts:
            return False
        if self.ends is not None and day > self.ends:
            return False
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return False
        if self.opens is None or self.closes is None:
            return True
        now = local.time().replace(tzinfo=None)
        if self.opens <= self.closes:
            return self.opens <= now < self.closes
        return now >= self.opens or now < self.closes  # past midnight


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a threshold: at least ``min`` eligible spend takes ``off`` off."""

    min: int
    off: int


@dataclass(frozen=True, slots=True)
class Promotion:
    """One promotion (or a coupon's value rule, at the coupon stage)."""

    id: str
    name: str
    kind: Kind
    stage: Stage = "line"
    target: Target = field(default_factory=Target)
    group: str | None = None  # offers of one group never combine: the best one applies
    priority: int = 0  # groups of a stage run in this order (lower first), then by name
    base: Base = "discounted"
    percent_bp: int = 0
    amount: int = 0
    price: int = 0
    buy: int = 0
    get: int = 0
    size: int = 0
    steps: tuple[Step, ...] = ()
    every: int = 0
    min_spend: int = 0  # eligible amount (after earlier offers) needed before it applies
    cap: int | None = None  # the most it takes off one cart
    window: Window = field(default_factory=Window)
    stores: frozenset[str] = frozenset()  # none named: every store
    tiers: frozenset[str] = frozenset()  # named: only members of these tiers
    members_only: bool = False
    per_member_limit: int | None = None  # pieces one member gets at this offer (hot products)

    def __post_init__(self) -> None:
        check(self)

    @property
    def group_key(self) -> str:
        return self.group if self.group is not None else f"~{self.id}"

    @property
    def least_spend(self) -> int:
        """The eligible amount below which the promotion cannot take anything."""
        if self.kind == "threshold":
            return max(self.min_spend, min(step.min for step in self.steps))
        if self.kind == "every":
            return max(self.min_spend, self.every)
        return self.min_spend

    @property
    def needs_member(self) -> bool:
        return self.members_only or bool(self.tiers) or self.per_member_limit is not None


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise PromotionInvalid(message)


def check(p: Promotion) -> None:
    """Refuse numbers that do not make a promotion of ``p.kind``."""
    _require(p.kind in KINDS, f"unknown kind {p.kind!r}")
    _require(p.stage in STAGES, f"unknown stage {p.stage!r}")
    _require(p.base in ("original", "discounted"), f"unknown base {p.base!r}")
    _require(
        min(p.percent_bp, p.amount, p.price, p.buy, p.get, p.size, p.every, p.min_spend) >= 0,
        "numbers must not be negative",
    )
    _require(p.cap is None or p.cap >= 0, "cap must not be negative")
    _require(not (p.kind in BASKET_KINDS and p.stage == "line"), f"{p.kind} is a basket offer")
    if p.kind == "percent_off":
        _require(0 < p.percent_bp <= FULL_BP, "percent_bp must be 1..10000")
    elif p.kind in ("amount_off", "every"):
        _require(p.amount > 0, "amount must be positive")
    elif p.kind == "buy_x_get_y":
        _require(p.buy > 0 and p.get > 0, "buy and get must be positive")
        _require(0 < p.percent_bp <= FULL_BP, "percent_bp must be 1..10000")
    elif p.kind == "bundle":
        _require(p.size >= 2, "a bundle holds at least 2 pieces")
    elif p.kind == "threshold":
        _require(bool(p.steps), "a threshold needs at least one step")
        _require(all(s.min > 0 and s.off > 0 for s in p.steps), "steps need min and off > 0")
    if p.kind == "every":
        _require(p.every > 0, "every must be positive")
    if p.per_member_limit is not None:
        _require(p.per_member_limit > 0, "per_member_limit must be positive")
        _require(
            p.kind in PIECE_KINDS and p.stage == "line",
            "a per-member limit counts pieces: percent_off, amount_off or member_price, "
            "at the line stage",
        )
    for day in p.window.weekdays:
        _require(1 <= day <= 7, "weekdays are 1 (Monday) to 7 (Sunday)")
    _require((p.window.opens is None) == (p.window.closes is None), "opens needs closes")
    if p.window.starts is not None and p.window.ends is not None:
        _require(p.window.starts <= p.window.ends, "starts must not be after ends")
