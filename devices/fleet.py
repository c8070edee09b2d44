"""Many simulated devices at once: one thread per kiosk and phone, until a deadline.

:func:`run_fleet` is what the demo and the load tests use; it returns the
:class:`~devices.statistics.FleetStats` every device wrote to. A fleet against a dead server
finishes on time with every request in ``failed_requests`` and the causes in ``errors``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from devices.client import CHECKOUT_BACKOFF_S, CHECKOUT_RETRIES, AisleClient
from devices.shoppers import KioskSimulator, PhoneSimulator, ShopperProfile, ShopperSimulator
from devices.statistics import FleetStats

#: Safety bound on trips per device, so a fleet ends even if the clock misbehaves.
DEFAULT_MAX_TRIPS = 100_000


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
