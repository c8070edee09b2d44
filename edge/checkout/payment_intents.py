"""Payment intents: a card or wallet payment written down before the acquirer is asked.

Between the acquirer's "authorised" and the sale's commit the store can crash. Without a record
the authorisation is orphaned (the shopper's money held for nothing) and the device's retry
authorises again (charged twice). So, for each card or wallet payment of a checkout:

1. an intent is committed (durably) before the acquirer is called; its id is the reference the
   acquirer is asked under, and acquirers answer a repeated reference with the authorisation they
   already gave;
2. the sale's transaction marks the intents ``captured`` with the sale's id;
3. a failure before that voids the authorisations and marks the intents ``voided`` (through
   ``voiding``, so that an intent a concurrent request captured is never voided, and a sale is
   never written on an intent being voided).

A retry with the same ``Idempotency-Key`` finds the intent it left and asks again under the same
reference: the acquirer hands back the same authorisation, nothing more is held. Intents a crash
left open (``pending`` long after any checkout could still be running) are reconciled by
:func:`reconcile` (the server's maintenance job): the acquirer is asked, and what it holds is
voided; the cart stays open for the shopper to pay again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.checkout.payments import PaymentProvider
from edge.db import Base, Database, IdPk, RawTransaction, to_sql_time
from edge.errors import Conflict
from edge.settings import EdgeSettings
from shared.ids import new_id


class PaymentIntent(Base):
    __tablename__ = "payment_intents"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'captured', 'voiding', 'voided')", name="status_known"
        ),
        Index("ix_payment_intents_key", "device_id", "idempotency_key", "position"),
        Index("ix_payment_intents_status", "status", "updated_at"),
    )

    id: Mapped[IdPk]  # the store's reference for the acquirer
    device_id: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    cart_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int]  # which payment of the checkout
    method: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    sale_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    method: str
    amount: int


_OPEN_FOR_KEY = (
    "SELECT id, cart_id, method, amount, status FROM payment_intents WHERE device_id = ? "
    "AND idempotency_key = ? AND position = ? AND status IN ('pending', 'voiding') "
    "ORDER BY created_at DESC"
)
_INSERT = (
    "INSERT INTO payment_intents (id, device_id, idempotency_key, cart_id, position, method, "
    "amount, status, sale_id, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, ?)"
)


def abandoned_after(settings: EdgeSettings) -> timedelta:
    """How old an open card payment is before no checkout can still be running it: the
    acquirer's timeout twice over (a split payment), the write lock's wait, and a grace."""
    return timedelta(
        seconds=2 * settings.payments.timeout_s
        + settings.server.write_lock_timeout_s
        + settings.maintenance.abandoned_payment_grace_s
    )


def begin(
    db: Database,
    *,
    device_id: str,
    key: str,
    cart_id: str,
    position: int,
    method: str,
    amount: int,
    now: datetime,
) -> tuple[Intent, list[Intent]]:
    """The intent to ask the acquirer under, committed durably before it is asked; and any open
    intents of this key and payment that no longer match (the cart changed, or a release was
    cut short), to void before asking."""
    stamp = to_sql_time(now)
    with db.raw_write() as tx:
        rows = tx.all(_OPEN_FOR_KEY, (device_id, key, position))
        for row in rows:
            same = (row["cart_id"], row["method"], row["amount"]) == (cart_id, method, amount)
            if same and row["status"] == "pending":
                # A retry: ask again under the same reference. Touched, so that the reconciler
                # does not take it for abandoned while this checkout runs.
                tx.run("UPDATE payment_intents SET updated_at = ? WHERE id = ?", (stamp, row["id"]))
                tx.commit()
                stale = [Intent(r["id"], r["method"], r["amount"]) for r in rows if r is not row]
                return Intent(row["id"], method, amount), stale
        intent = Intent(new_id(), method, amount)
        tx.run(
            _INSERT, (intent.id, device_id, key, cart_id, position, method, amount, stamp, stamp)
        )
        tx.commit()
    return intent, [Intent(r["id"], r["method"], r["amount"]) for r in rows]


def release_leftovers(
    db: Database, provider: PaymentProvider, *, device_id: str, key: str, now: datetime
) -> None:
    """After a sale under ``key``: whatever else this key left open (a payment the retry no
    longer has, a release a crash cut short) is released."""
    with db.raw_read() as tx:
        rows = tx.all(
            "SELECT id, method, amount FROM payment_intents WHERE device_id = ? "
            "AND idempotency_key = ? AND status IN ('pending', 'voiding')",
            (device_id, key),
        )
    release(db, provider, [Intent(r["id"], r["method"], r["amount"]) for r in rows], now)


def capture(tx: RawTransaction, intent_ids: list[str], sale_id: str, now: datetime) -> None:
    """In the sale's own transaction: these intents became this sale.

    Each must still be ``pending``: one a concurrent request released (its own authorisation
    under the same reference failed, and it voided what the acquirer held) cannot pay for a
    sale, so the sale is refused and rolled back, and the device pays again.
    """
    stamp = to_sql_time(now)
    for intent_id in intent_ids:
        tx.run(
            "UPDATE payment_intents SET status = 'captured', sale_id = ?, updated_at = ? "
            "WHERE id = ? AND status = 'pending'",
            (sale_id, stamp, intent_id),
        )
        if tx.cur.rowcount != 1:
            raise Conflict(
                "the card payment was released while the sale was being written; pay again",
                code="payment_released",
                details={"intent_id": intent_id},
            )


def release(db: Database, provider: PaymentProvider, intents: list[Intent], now: datetime) -> None:
    """Void whatever the acquirer holds under these intents, unless a sale captured them.

    Each intent is claimed first (``voiding``, in one write transaction, so serialised with the
    sale's): one a sale captured is left alone, and a sale that would capture one claimed here
    is refused instead (:func:`capture` wants ``pending``). One already voided is voided again
    (the void is idempotent): a concurrent request under the same reference may have had its
    authorisation granted after the first void looked. A crash between the claim and the
    acquirer's void leaves ``voiding``, which :func:`reconcile` finishes.
    """
    if not intents:
        return
    stamp = to_sql_time(now)
    with db.raw_write() as tx:
        claimed = [
            intent
            for intent in intents
            if tx.cur.execute(
                "UPDATE payment_intents SET status = 'voiding', updated_at = ? "
                "WHERE id = ? AND status != 'captured'",
                (stamp, intent.id),
            ).rowcount
        ]
        tx.commit()
    _void(db, provider, claimed, now)


def _void(db: Database, provider: PaymentProvider, intents: list[Intent], now: datetime) -> None:
    for intent in intents:
        held = provider.query(intent.id)
        if held is not None:
            provider.void(held)
    with db.raw_write() as tx:
        tx.cur.executemany(
            "UPDATE payment_intents SET status = 'voided', updated_at = ? WHERE id = ?",
            [(to_sql_time(now), intent.id) for intent in intents],
        )
        tx.commit()


def reconcile(
    db: Database, provider: PaymentProvider, *, now: datetime, older_than: timedelta
) -> int:
    """Release intents a crash left open (older than any checkout can run); returns how many."""
    cutoff = to_sql_time(now - older_than)
    with db.raw_read() as tx:
        rows = tx.all(
            "SELECT id, method, amount FROM payment_intents "
            "WHERE status IN ('pending', 'voiding') AND updated_at <= ?",
            (cutoff,),
        )
    release(db, provider, [Intent(r["id"], r["method"], r["amount"]) for r in rows], now)
    return len(rows)


def open_intents(db: Database) -> list[dict[str, object]]:
    """Intents still open, oldest first (for the status and for tests)."""
    with db.raw_read() as tx:
        rows = tx.all(
            "SELECT id, method, amount, created_at FROM payment_intents WHERE status = 'pending' "
            "ORDER BY created_at"
        )
    return [
        {"id": r["id"], "method": r["method"], "amount": r["amount"], "since": r["created_at"]}
        for r in rows
    ]
