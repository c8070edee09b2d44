"""What a fleet of simulated devices did and saw: counts, errors and latency percentiles.

:class:`FleetStats` is the thread-safe sink the shoppers and :func:`~devices.fleet.run_fleet`
write to; :func:`percentile` is the one nearest-rank percentile the benchmarks use too.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

#: Error codes a healthy store still produces: the simulated payment provider declines or times
#: out now and then, and the shopper pays another way. Anything else is a finding.
EXPECTED_ERROR_CODES = frozenset({"payment_declined", "payment_timeout"})

#: Latency samples kept per operation; past this a reservoir keeps a uniform sample, so a long
#: load test has bounded memory and unbiased percentiles.
LATENCY_SAMPLE_CAP = 100_000


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile by nearest rank (always an observed value); ``None`` if empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


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
