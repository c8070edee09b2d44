"""Shoppers that drive an edge server the way real kiosks, phones and exit gates do.

Each simulator runs one shopping trip per call through :class:`~devices.client.AisleClient`: open a
cart, scan, sometimes change or remove a line, get an attendant's approval when the server asks for
it, pay, and (scan-to-buy) show the exit pass at the gate. :func:`~devices.fleet.run_fleet` runs
many of them at once; what they did goes to a :class:`~devices.statistics.FleetStats`.

Failures are counted, never raised out of a trip: a trip against a dead server ends with the
request in ``failed_requests`` and the cause in ``errors``.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from devices.barcodes import make_weighed_code
from devices.client import (
    AisleClient,
    AisleClientError,
    AisleConnectionError,
    AisleHTTPError,
    AisleProtocolError,
)
from devices.statistics import EXPECTED_ERROR_CODES, FleetStats

PAYMENT_METHODS = ("cash", "card", "wallet")


@dataclass(frozen=True)
class ShopperProfile:
    """How a simulated shopper behaves; probabilities are per trip unless said otherwise."""

    #: Scans per basket, inclusive bounds.
    items_per_basket: tuple[int, int] = (1, 12)
    #: Per scan: send an explicit quantity of 2..4 (a six-pack scanned once).
    multi_quantity_chance: float = 0.1
    change_quantity_chance: float = 0.15
    remove_line_chance: float = 0.08
    #: Per scan: a weighed item with a price-embedded code instead of a packaged one.
    weighed_item_chance: float = 0.12
    #: Relative weights of tenders; cash is rounded up to whole 100 minor units (change given).
    payment_mix: tuple[tuple[str, float], ...] = (("cash", 0.2), ("card", 0.4), ("wallet", 0.4))
    #: Pause between scans in seconds (min, max); zero drives the server as fast as it answers.
    think_time_s: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        low, high = self.items_per_basket
        if not 1 <= low <= high:
            raise ValueError("items_per_basket must be (min, max) with 1 <= min <= max")
        for name in (
            "multi_quantity_chance",
            "change_quantity_chance",
            "remove_line_chance",
            "weighed_item_chance",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not self.payment_mix or any(w < 0 for _, w in self.payment_mix):
            raise ValueError("payment_mix needs at least one method and no negative weight")
        if sum(w for _, w in self.payment_mix) <= 0:
            raise ValueError("payment_mix weights must not all be zero")
        unknown = {m for m, _ in self.payment_mix} - set(PAYMENT_METHODS)
        if unknown:
            raise ValueError(f"unknown payment methods {sorted(unknown)}")
        if not 0 <= self.think_time_s[0] <= self.think_time_s[1]:
            raise ValueError("think_time_s must be (min, max) with 0 <= min <= max")


@dataclass(frozen=True)
class TripResult:
    """One completed shopping trip."""

    cart_id: str
    sale_id: str
    total: int
    items: int
    approved: bool
    exit_verified: bool = False
    audit: bool = False


class _Abandon(Exception):
    """Ends a trip early (stop requested, nothing in the cart); already counted."""


class ShopperSimulator:
    """A shopper at one device; subclasses set the channel and what happens after paying."""

    channel: ClassVar[str] = ""

    def __init__(
        self,
        client: AisleClient,
        attendant: AisleClient,
        *,
        barcodes: Sequence[str],
        weighed: Sequence[tuple[str, int]] = (),
        profile: ShopperProfile | None = None,
        rng: random.Random | None = None,
        stats: FleetStats | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if not barcodes and not weighed:
            raise ValueError("a shopper needs barcodes or weighed PLUs to scan")
        self.client = client
        self.attendant = attendant
        self.barcodes = list(barcodes)
        self.weighed = list(weighed)
        self.profile = profile or ShopperProfile()
        self.rng = rng or random.Random()
        self.stats = stats if stats is not None else FleetStats()
        self.stop = stop or threading.Event()
        methods, weights = zip(*self.profile.payment_mix, strict=True)
        self._methods: list[str] = list(methods)
        self._method_weights: list[float] = list(weights)

    # -- one trip ---------------------------------------------------------------------------

    def run_trip(self) -> TripResult | None:
        """Shop once, start to finish; ``None`` when the trip was abandoned (already counted)."""
        self.stats.add("trips")
        try:
            return self._trip()
        except (_Abandon, AisleClientError):
            # Client errors were recorded where they happened, with their code.
            self.stats.add("abandoned_trips")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            # An answer without the contract's shape; count it like any failed request.
            self.stats.record_error("unexpected_response", f"{type(exc).__name__}: {exc}")
            self.stats.add("abandoned_trips")
        return None

    def _trip(self) -> TripResult:
        profile, rng = self.profile, self.rng
        cart = self._call(self.client.create_cart, self.channel)
        cart_id = str(cart["id"])
        for _ in range(rng.randint(*profile.items_per_basket)):
            self._think()
            cart = self._scan(cart_id, cart)
        if not cart["lines"]:
            raise _Abandon("nothing scanned")
        cart = self._maybe_edit(cart_id, cart)
        total = int(cart["totals"]["total"])
        items = sum(int(line["quantity"]) for line in cart["lines"])
        result, approved = self._pay(cart_id, total)
        sale = result["sale"]
        if int(sale["total"]) != total:
            self.stats.record_error(
                "total_mismatch", f"cart {cart_id} total {total}, sale total {sale['total']}"
            )
        self.stats.record_sale(int(sale["total"]), items)
        trip = TripResult(
            cart_id=cart_id,
            sale_id=str(sale["id"]),
            total=int(sale["total"]),
            items=items,
            approved=approved,
        )
        return self._after_sale(trip, result)

    def _after_sale(self, trip: TripResult, result: dict[str, Any]) -> TripResult:
        """What the shopper does once paid; a kiosk shopper just leaves."""
        return trip

    def _scan(self, cart_id: str, cart: dict[str, Any]) -> dict[str, Any]:
        """Scan one item; a refused code is counted and the shopper carries on, as at a till."""
        profile, rng = self.profile, self.rng
        weighed = bool(self.weighed) and (
            not self.barcodes or rng.random() < profile.weighed_item_chance
        )
        quantity: int | None = None
        if weighed:
            plu, unit_price = rng.choice(self.weighed)
            code = make_weighed_code(plu, self._weighed_price(unit_price))
        else:
            code = rng.choice(self.barcodes)
            if rng.random() < profile.multi_quantity_chance:
                quantity = rng.randint(2, 4)
        try:
            cart = self._call(self.client.add_line, cart_id, code, quantity)
        except AisleHTTPError:
            return cart
        self.stats.add("scans")
        if weighed:
            self.stats.add("weighed_scans")
        return cart

    def _weighed_price(self, unit_price_per_kg: int) -> int:
        """Price the scale prints for a random weight, rounded half up, within 5 digits."""
        grams = self.rng.randint(150, 2500)
        price = (unit_price_per_kg * grams + 500) // 1000
        return min(max(price, 1), 99_999)

    def _maybe_edit(self, cart_id: str, cart: dict[str, Any]) -> dict[str, Any]:
        """Sometimes change a packaged line's quantity, sometimes remove a line."""
        profile, rng = self.profile, self.rng
        countable = [line for line in cart["lines"] if not line.get("weight_g")]
        if countable and rng.random() < profile.change_quantity_chance:
            line = rng.choice(countable)
            quantity = rng.choice([q for q in range(1, 6) if q != line["quantity"]])
            cart = self._call(self.client.update_line, cart_id, str(line["id"]), quantity)
            self.stats.add("line_changes")
        if len(cart["lines"]) > 1 and rng.random() < profile.remove_line_chance:
            line = rng.choice(cart["lines"])
            answer = self._call(self.client.remove_line, cart_id, str(line["id"]))
            self.stats.add("line_removals")
            # The contract returns the repriced cart; a bare 204 would need a fresh read.
            cart = answer or self._call(self.client.get_cart, cart_id)
        return cart

    def _pay(self, cart_id: str, total: int) -> tuple[dict[str, Any], bool]:
        """Check out; on ``approval_required`` fetch the attendant and repeat with the same key.

        The same key is right after an approval (it is the same payment, asked again); a declined
        payment is retried once with cash under a new key, because it is a different request.
        """
        payments = [self._payment(self._pick_method(), total)]
        key = str(uuid.uuid4())
        approved = declined = False
        while True:
            handled = frozenset() if approved else frozenset({"approval_required"})
            try:
                result = self._call(self.client.checkout, cart_id, payments, key, handled=handled)
            except AisleHTTPError as exc:
                if exc.code == "approval_required" and not approved:
                    self._call(self.attendant.approve, cart_id)
                    self.stats.add("approvals")
                    approved = True
                    continue
                if exc.code in EXPECTED_ERROR_CODES and not declined:
                    declined = True
                    payments = [self._payment("cash", total)]
                    key = str(uuid.uuid4())
                    continue
                raise
            return result, approved

    def _pick_method(self) -> str:
        return self.rng.choices(self._methods, weights=self._method_weights)[0]

    @staticmethod
    def _payment(method: str, total: int) -> dict[str, Any]:
        """Card and wallet pay exactly; cash hands over the next whole 100 minor units."""
        amount = -(-total // 100) * 100 if method == "cash" else total
        return {"method": method, "amount": amount}

    # -- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        fn: Callable[..., dict[str, Any]],
        *args: Any,
        handled: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Make one client call, counting it and recording any failure by code.

        ``handled`` codes are part of the normal flow (the caller reacts to them), so they are
        not errors.
        """
        if self.stop.is_set():
            raise _Abandon("fleet stopping")
        self.stats.add("requests")
        try:
            return fn(*args)
        except AisleHTTPError as exc:
            if exc.code not in handled:
                self.stats.record_error(exc.code, str(exc))
            raise
        except AisleConnectionError as exc:
            self.stats.record_error("connection_error", str(exc))
            raise
        except AisleProtocolError as exc:
            self.stats.record_error("protocol_error", str(exc))
            raise
        except AisleClientError as exc:
            self.stats.record_error("client_error", str(exc))
            raise

    def _think(self) -> None:
        low, high = self.profile.think_time_s
        if high > 0 and self.stop.wait(self.rng.uniform(low, high)):
            raise _Abandon("fleet stopping")


class KioskSimulator(ShopperSimulator):
    """A shopper at a self-checkout kiosk (channel ``kiosk``); an attendant approves ID checks."""

    channel = "kiosk"


class PhoneSimulator(ShopperSimulator):
    """A scan-to-buy shopper on a phone; after paying, the exit gate verifies the exit pass."""

    channel = "scan_to_buy"

    def __init__(
        self,
        client: AisleClient,
        attendant: AisleClient,
        exit_gate: AisleClient,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, attendant, **kwargs)
        self.exit_gate = exit_gate

    def _after_sale(self, trip: TripResult, result: dict[str, Any]) -> TripResult:
        exit_pass = result.get("exit_pass")
        if not exit_pass:
            self.stats.record_error("missing_exit_pass", f"sale {trip.sale_id} has no exit pass")
            return trip
        verdict = self._call(self.exit_gate.verify_exit_pass, str(exit_pass["token"]))
        if not verdict.get("valid") or str(verdict.get("sale_id")) != trip.sale_id:
            self.stats.record_error(
                "exit_pass_rejected",
                f"sale {trip.sale_id}: valid={verdict.get('valid')} "
                f"sale_id={verdict.get('sale_id')} reason={verdict.get('reason')}",
            )
            return trip
        audit = bool(verdict.get("audit"))
        self.stats.add("exit_passes_verified")
        if audit:
            self.stats.add("audits")
        return TripResult(
            cart_id=trip.cart_id,
            sale_id=trip.sale_id,
            total=trip.total,
            items=trip.items,
            approved=trip.approved,
            exit_verified=True,
            audit=audit,
        )
