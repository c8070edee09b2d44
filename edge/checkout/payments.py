"""The payment-provider port and a simulator that behaves like a card acquirer.

Card and wallet payments are authorised before the sale is written, outside the database
transaction (a slow acquirer must not hold the store's write lock). Each authorisation is asked
for under a reference the store made and wrote down first (a payment intent,
``edge/checkout/payment_intents.py``), and acquirers answer a repeated reference with the
authorisation they already gave: so a checkout retried after a crash never charges twice.

The port has what a real terminal offers: authorise (idempotent per reference), void, and query
by reference.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.errors import PaymentFailed
from shared.ids import new_id


@dataclass(frozen=True, slots=True)
class Authorization:
    reference: str  # the acquirer's own reference of this authorisation
    method: str
    amount: int


class PaymentDeclined(PaymentFailed):
    code = "payment_declined"


class PaymentTimeout(PaymentFailed):
    code = "payment_timeout"


class PaymentProvider(Protocol):
    """What checkout needs from an acquirer."""

    def authorize(self, *, method: str, amount: int, reference: str) -> Authorization:
        """Authorise ``amount`` under the store's ``reference``; the same reference again gets
        the same authorisation. Raises :class:`PaymentDeclined` or :class:`PaymentTimeout`."""
        ...

    def void(self, authorization: Authorization) -> None:
        """Release an authorisation whose sale was not written (again: nothing more)."""
        ...

    def query(self, reference: str) -> Authorization | None:
        """The live authorisation given under the store's ``reference``, if any."""
        ...


_LEDGER = """
CREATE TABLE IF NOT EXISTS authorizations (
    store_reference TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    amount INTEGER NOT NULL,
    voided INTEGER NOT NULL DEFAULT 0
)
"""


class SimulatedProvider:
    """An acquirer with latency, declines and timeouts, configurable per store.

    ``decline_rate_bp`` and ``timeout_rate_bp`` are chances in basis points. A timeout waits the
    full ``timeout_s`` before failing, as a real terminal does, and half the time the acquirer
    authorised all the same (the answer was lost on the way). With ``ledger`` the acquirer's
    books live in that SQLite file, outside the store's database, so they outlast a crash of
    the store server as a real acquirer's do; without, in memory.
    """

    def __init__(
        self,
        *,
        latency_ms: int = 30,
        decline_rate_bp: int = 0,
        timeout_rate_bp: int = 0,
        timeout_s: float = 10.0,
        seed: int | None = None,
        ledger: Path | None = None,
    ) -> None:
        self.latency_ms = latency_ms
        self.decline_rate_bp = decline_rate_bp
        self.timeout_rate_bp = timeout_rate_bp
        self.timeout_s = timeout_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._path = ":memory:" if ledger is None else str(ledger)
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if ledger is not None else "PRAGMA cache_size=0")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_LEDGER)

    def _draw(self) -> int:
        with self._lock:
            return self._rng.randrange(10_000)

    def _find(self, store_reference: str) -> tuple[str, str, int, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT reference, method, amount, voided FROM authorizations "
                "WHERE store_reference = ?",
                (store_reference,),
            ).fetchone()
        return None if row is None else (row[0], row[1], int(row[2]), int(row[3]))

    def authorize(self, *, method: str, amount: int, reference: str) -> Authorization:
        if self.latency_ms:
            # Real acquirers vary: jitter the latency by up to half again.
            time.sleep(self.latency_ms / 1000 * (1 + self._draw() / 20_000))
        known = self._find(reference)
        if known is not None and not known[3]:
            if (known[1], known[2]) != (method, amount):
                raise PaymentDeclined(
                    "this payment reference was authorised for another amount",
                    details={"method": method, "amount": amount, "reason": "reference_reused"},
                )
            return Authorization(known[0], known[1], known[2])
        draw = self._draw()
        if draw < self.timeout_rate_bp:
            if draw % 2:
                # Half the time the acquirer did authorise and only its answer was lost, as
                # happens with real terminals: the store must void by reference to be sure.
                self._record(reference, method, amount)
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
        return self._record(reference, method, amount)

    def _record(self, store_reference: str, method: str, amount: int) -> Authorization:
        auth = Authorization(reference=f"sim_{new_id()}", method=method, amount=amount)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO authorizations (store_reference, reference, method, "
                "amount, voided) VALUES (?, ?, ?, ?, 0)",
                (store_reference, auth.reference, method, amount),
            )
        return auth

    def void(self, authorization: Authorization) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE authorizations SET voided = 1 WHERE reference = ?",
                (authorization.reference,),
            )

    def query(self, reference: str) -> Authorization | None:
        known = self._find(reference)
        if known is None or known[3]:
            return None
        return Authorization(known[0], known[1], known[2])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # For tests and the demo: what the acquirer's books say.

    @property
    def authorized(self) -> dict[str, Authorization]:
        """Live (not voided) authorisations by the acquirer's reference."""
        with self._lock:
            rows = self._db.execute(
                "SELECT reference, method, amount FROM authorizations WHERE voided = 0"
            ).fetchall()
        return {r[0]: Authorization(r[0], r[1], int(r[2])) for r in rows}

    @property
    def voided(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT reference FROM authorizations WHERE voided = 1"
            ).fetchall()
        return [r[0] for r in rows]
