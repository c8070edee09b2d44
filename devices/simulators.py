"""Shoppers that drive an edge server the way real kiosks, phones and exit gates do.

Each simulator runs one shopping trip per call through :class:`~devices.client.AisleClient`: open a
cart, scan, sometimes change or remove a line, get an attendant's approval when the server asks for
it, pay, and (scan-to-buy) show the exit pass at the gate. :func:`run_fleet` runs one thread per
device until a deadline and returns :class:`FleetStats`; the demo and the load tests use it.

Failures are counted, never raised out of a trip: a fleet against a dead server finishes on time
with every request in ``failed_requests`` and the causes in ``errors``.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from biip.checksums import gs1_standard_check_digit

from devices.client import (
    CHECKOUT_BACKOFF_S,
    CHECKOUT_RETRIES,
    AisleClient,
    AisleClientError,
    AisleConnectionError,
    AisleHTTPError,
    AisleProtocolError,
)

#: Error codes a healthy store still produces: the simulated payment provider declines or times
#: out now and then, and the shopper pays another way. Anything else is a finding.
EXPECTED_ERROR_CODES = frozenset({"payment_declined", "payment_timeout"})

PAYMENT_METHODS = ("cash", "card", "wallet")

#: Latency samples kept per operation; past this a reservoir keeps a uniform sample, so a long
#: load test has bounded memory and unbiased percentiles.
LATENCY_SAMPLE_CAP = 100_000

#: Safety bound on trips per device, so a fleet ends even if the clock misbehaves.
DEFAULT_MAX_TRIPS = 100_000


def make_weighed_code(
    plu: str,
    price_minor: int,
    prefix: str = "2",
    plu_length: int = 6,
    value_length: int = 5,
) -> str:
    """Build a price-embedded EAN-13 as a store scale prints it: prefix, PLU, price, check digit.

    The store default is ``2`` + 6-digit PLU + 5-digit price in minor units + GS1 check digit,
    e.g. PLU ``100023`` at 12.34 -> ``2100023012347``-style codes. Raises ``ValueError`` when a
    part does not fit, because a silently truncated price would charge the wrong amount.
    """
    if not prefix.isdigit():
        raise ValueError(f"prefix must be digits, got {prefix!r}")
    if not plu.isdigit() or len(plu) > plu_length:
        raise ValueError(f"PLU must be at most {plu_length} digits, got {plu!r}")
    if isinstance(price_minor, bool) or not isinstance(price_minor, int):
        raise TypeError("price_minor must be an int of minor units")
    if not 0 <= price_minor < 10**value_length:
        raise ValueError(f"price {price_minor} does not fit in {value_length} digits")
    payload = f"{prefix}{plu.zfill(plu_length)}{price_minor:0{value_length}d}"
    if len(payload) != 12:
        raise ValueError(f"layout gives {len(payload) + 1} digits, an EAN-13 needs 13")
    return payload + str(gs1_standard_check_digit(payload))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile by nearest rank (always an observed value); ``None`` if empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


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


@dataclass
class FleetStats:
    """What a fleet did and saw; thread-safe to update, cheap to read while it runs.

    ``requests`` counts every call the simulators made; ``failed_requests`` those that ended in an
    error (recorded by code in ``errors``, with the first message per code in ``error_samples``).
    A fleet where everything failed shows ``sales == 0`` and ``all_failed``.
    """

    devices: int = 0
    trips: int = 0
    abandoned_trips: int = 0
    sales: int = 0
    items: int = 0
    revenue: int = 0
    scans: int = 0
    weighed_scans: int = 0
    line_changes: int = 0
    line_removals: int = 0
    approvals: int = 0
    exit_passes_verified: int = 0
    audits: int = 0
    requests: int = 0
    failed_requests: int = 0
    stuck_devices: int = 0
    elapsed_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    #: The plain counters :meth:`add` may increment; money and sales go through record_sale.
    _COUNTERS: ClassVar[frozenset[str]] = frozenset(
        (
            "trips",
            "abandoned_trips",
            "scans",
            "weighed_scans",
            "line_changes",
            "line_removals",
            "approvals",
            "exit_passes_verified",
            "audits",
            "requests",
        )
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        # Fixed seed: which samples the reservoir keeps must not depend on the run.
        self._reservoir_rng = random.Random(0)

    def add(self, counter: str, n: int = 1) -> None:
        """Increment one of the plain counters (``trips``, ``scans``, ``audits``, ...)."""
        if counter not in self._COUNTERS:
            raise ValueError(f"not a counter: {counter}")
        with self._lock:
            setattr(self, counter, getattr(self, counter) + n)

    def record_sale(self, total: int, items: int) -> None:
        """Count a completed sale and its money (int minor units)."""
        with self._lock:
            self.sales += 1
            self.items += items
            self.revenue += total

    def record_error(self, code: str, detail: str = "") -> None:
        """Count a failed request by code; keep the first message per code for the report."""
        with self._lock:
            self.failed_requests += 1
            self.errors[code] += 1
            self.error_samples.setdefault(code, detail[:300])

    def record_latency(self, operation: str, seconds: float) -> None:
        """Latency sink for :class:`AisleClient`: keep a bounded, uniform sample per operation."""
        with self._lock:
            self._seen[operation] += 1
            samples = self.latencies.setdefault(operation, [])
            if len(samples) < LATENCY_SAMPLE_CAP:
                samples.append(seconds)
            else:
                slot = self._reservoir_rng.randrange(self._seen[operation])
                if slot < LATENCY_SAMPLE_CAP:
                    samples[slot] = seconds

    @property
    def scan_latencies(self) -> list[float]:
        """Seconds per scan-to-cart request (``POST .../lines``), a copy."""
        with self._lock:
            return list(self.latencies.get("add_line", ()))

    def latency_percentile(self, operation: str, q: float) -> float | None:
        """Percentile ``q`` of one operation's latencies in seconds; ``None`` without samples."""
        with self._lock:
            samples = list(self.latencies.get(operation, ()))
        return percentile(samples, q)

    def scan_p50(self) -> float | None:
        """Median scan latency in seconds."""
        return self.latency_percentile("add_line", 50)

    def scan_p99(self) -> float | None:
        """99th percentile scan latency in seconds."""
        return self.latency_percentile("add_line", 99)

    def unexpected_errors(self) -> dict[str, int]:
        """Errors by code, without the ones a healthy store produces (declined payments)."""
        with self._lock:
            return {c: n for c, n in self.errors.items() if c not in EXPECTED_ERROR_CODES}

    @property
    def all_failed(self) -> bool:
        """True when requests were made and not one succeeded: the server is down or refusing."""
        return self.requests > 0 and self.failed_requests >= self.requests

    @property
    def ok(self) -> bool:
        """At least one sale and no unexpected error."""
        return self.sales > 0 and not self.unexpected_errors()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (benchmarks write it to their results)."""
        with self._lock:
            counts: dict[str, Any] = {
                f.name: getattr(self, f.name)
                for f in fields(self)
                if f.name not in ("errors", "error_samples", "latencies")
            }
            errors = dict(self.errors)
        counts["errors"] = errors
        counts["scan_p50_s"] = self.scan_p50()
        counts["scan_p99_s"] = self.scan_p99()
        return counts


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


def run_fleet(
    base_url: str,
    *,
    kiosk_tokens: Sequence[str],
    phone_tokens: Sequence[str],
    attendant_token: str,
    exit_token: str,
    barcodes: list[str],
    weighed: list[tuple[str, int]],
    duration_s: float,
    seed: int,
    on_progress: Callable[[FleetStats], None] | None = None,
    profile: ShopperProfile | None = None,
    max_trips_per_device: int = DEFAULT_MAX_TRIPS,
    timeout: float = 5.0,
    progress_interval_s: float = 0.5,
) -> FleetStats:
    """Run one thread per kiosk and phone token, each shopping until ``duration_s`` has passed.

    No trip starts after the deadline; trips in flight finish, and are cut short after a grace
    period. Every request has ``timeout``, so the whole run is bounded in time. ``on_progress`` is
    called from the calling thread about every ``progress_interval_s`` and once at the end.
    Each device gets its own rng derived from ``seed`` and its own connection pool.
    """
    if duration_s < 0:
        raise ValueError("duration_s must not be negative")
    stats = FleetStats(devices=len(kiosk_tokens) + len(phone_tokens))
    stop = threading.Event()
    started = time.monotonic()
    deadline = started + duration_s

    def device(role: str, index: int, token: str) -> None:
        def client(tok: str) -> AisleClient:
            return AisleClient(base_url, tok, timeout=timeout, latency_sink=stats.record_latency)

        rng = random.Random(f"{seed}:{role}:{index}")
        try:
            with (
                client(token) as own,
                client(attendant_token) as attendant,
                client(exit_token) as gate,
            ):
                shopper: ShopperSimulator
                common: dict[str, Any] = {
                    "barcodes": barcodes,
                    "weighed": weighed,
                    "profile": profile,
                    "rng": rng,
                    "stats": stats,
                    "stop": stop,
                }
                if role == "phone":
                    shopper = PhoneSimulator(own, attendant, gate, **common)
                else:
                    shopper = KioskSimulator(own, attendant, **common)
                _shop_until(shopper, deadline, stop, max_trips_per_device)
        except Exception as exc:
            # A device thread must not die silently: a crash shows in the stats like any error.
            stats.record_error("device_crashed", f"{role}-{index + 1}: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=device, args=(role, i, tok), name=f"{role}-{i + 1}", daemon=True)
        for role, tokens in (("kiosk", kiosk_tokens), ("phone", phone_tokens))
        for i, tok in enumerate(tokens)
    ]
    # After the deadline, trips in flight get this long to pay before they are told to stop...
    grace = max(2 * timeout, 5.0)
    # ...and a stopped device finishes at most one request, a checkout with its retries.
    backoff = CHECKOUT_BACKOFF_S * (2**CHECKOUT_RETRIES - 1)
    hard_end = deadline + grace + (CHECKOUT_RETRIES + 1) * timeout + backoff + 1.0
    try:
        for thread in threads:
            thread.start()
        while alive := [t for t in threads if t.is_alive()]:
            alive[0].join(progress_interval_s)
            now = time.monotonic()
            if now > deadline + grace:
                stop.set()
            if now > hard_end:
                break
            if on_progress is not None:
                on_progress(stats)
    finally:
        stop.set()
        for thread in threads:
            thread.join(max(0.0, min(hard_end - time.monotonic(), timeout)))
    stats.stuck_devices = sum(t.is_alive() for t in threads)
    stats.elapsed_s = time.monotonic() - started
    if on_progress is not None:
        on_progress(stats)
    return stats


def _shop_until(
    shopper: ShopperSimulator, deadline: float, stop: threading.Event, max_trips: int
) -> None:
    """Loop trips until the deadline, the trip cap or a stop; back off while trips fail."""
    failures = 0
    for _ in range(max_trips):
        if stop.is_set() or time.monotonic() >= deadline:
            return
        if shopper.run_trip() is None:
            failures += 1
            # A dead server answers "refused" in microseconds; do not spin on it.
            if stop.wait(min(0.05 * 2 ** min(failures, 5), 1.0)):
                return
        else:
            failures = 0
