"""The payment-provider port and a simulator that behaves like a card acquirer.

Card and wallet payments are authorised before the sale is written, outside the database
transaction (a slow acquirer must not hold the store's write lock). If the sale then cannot be
written, the authorisations are voided.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from edge.errors import PaymentFailed
from sync.ids import new_id


@dataclass(frozen=True, slots=True)
class Authorization:
    reference: str
    method: str
    amount: int


class PaymentDeclined(PaymentFailed):
    code = "payment_declined"


class PaymentTimeout(PaymentFailed):
    code = "payment_timeout"


class PaymentProvider(Protocol):
    """What checkout needs from an acquirer."""

    def authorize(self, *, method: str, amount: int, reference: str) -> Authorization:
        """Authorise ``amount``; raises :class:`PaymentDeclined` or :class:`PaymentTimeout`."""
        ...

    def void(self, authorization: Authorization) -> None:
        """Release an authorisation whose sale was not written."""
        ...


class SimulatedProvider:
    """An acquirer with latency, declines and timeouts, configurable per store.

    ``decline_rate_bp`` and ``timeout_rate_bp`` are chances in basis points. A timeout waits the
    full ``timeout_s`` before failing, as a real terminal does.
    """

    def __init__(
        self,
        *,
        latency_ms: int = 30,
        decline_rate_bp: int = 0,
        timeout_rate_bp: int = 0,
        timeout_s: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.decline_rate_bp = decline_rate_bp
        self.timeout_rate_bp = timeout_rate_bp
        self.timeout_s = timeout_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.authorized: dict[str, Authorization] = {}
        self.voided: list[str] = []

    def _draw(self) -> int:
        with self._lock:
            return self._rng.randrange(10_000)

    def authorize(self, *, method: str, amount: int, reference: str) -> Authorization:
        if self.latency_ms:
            # Real acquirers vary: jitter the latency by up to half again.
            time.sleep(self.latency_ms / 1000 * (1 + self._draw() / 20_000))
        draw = self._draw()
        if draw < self.timeout_rate_bp:
            time.sleep(self.timeout_s)
            raise PaymentTimeout(
                f"the {method} provider did not answer within {self.timeout_s:g} s",
                details={"method": method, "amount": amount},
            )
        if draw < self.timeout_rate_bp + self.decline_rate_bp:
            raise PaymentDeclined(
                f"the {method} payment was declined",
                details={"method": method, "amount": amount, "reason": "do_not_honor"},
            )
        auth = Authorization(reference=f"sim_{new_id()}", method=method, amount=amount)
        with self._lock:
            self.authorized[auth.reference] = auth
        return auth

    def void(self, authorization: Authorization) -> None:
        with self._lock:
            self.authorized.pop(authorization.reference, None)
            self.voided.append(authorization.reference)
