"""The exit gate: verify a scan-to-buy shopper's pass, offline, once, and pick audits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.auth.service import Principal
from edge.checkout.exit_pass import pick_for_audit, verify_exit_pass
from edge.checkout.models import ExitPass, Sale, SaleLine
from edge.context import StoreContext
from edge.errors import ExitPassInvalid
from edge.idempotency import Retryable, remember
from edge.outbox.service import record_event
from sync.contract import ExitPassUsed


@dataclass(frozen=True)
class GateResult:
    valid: bool
    sale_id: str | None
    audit: bool
    reason: str | None = None
    sale_number: str | None = None
    item_count: int | None = None
    total: int | None = None
    # An audited exit: what the attendant checks in the bag.
    items: tuple[tuple[str, int, int | None], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "sale_id": self.sale_id,
            "audit": self.audit,
            "reason": self.reason,
            "sale_number": self.sale_number,
            "item_count": self.item_count,
            "total": self.total,
            "items": None
            if self.items is None
            else [
                {"name": name, "quantity": quantity, "weight_g": weight}
                for name, quantity, weight in self.items
            ],
        }


def verify_at_exit(
    ctx: StoreContext, principal: Principal, token: str, *, retry: Retryable | None = None
) -> GateResult:
    """Check a pass's signature and expiry, then use it up; a second use is refused.

    The answer is a verdict, not an error: a refused pass answers ``valid: false`` with the reason
    (``malformed``, ``forged``, ``expired``, ``used``) so the gate can show it to the attendant.
    """
    now = ctx.clock.now()
    try:
        claims = verify_exit_pass(token, ctx.store_key.public_key(), now=now, store_id=ctx.store_id)
    except ExitPassInvalid as exc:
        return GateResult(False, None, False, reason=str(exc.details.get("reason", "invalid")))
    with ctx.db.write() as uow:
        row = uow.session.get(ExitPass, claims.pass_id)
        if row is None or row.sale_id != claims.sale_id:
            # Signed by this store's key but unknown here: the database was restored or the key
            # leaked. Either way, not a pass to open the gate for.
            return GateResult(False, claims.sale_id, False, reason="unknown")
        sale = uow.session.get(Sale, row.sale_id)
        assert sale is not None
        if row.used_at is not None:
            return GateResult(
                False,
                sale.id,
                False,
                reason="used",
                sale_number=sale.number,
                item_count=sale.item_count,
                total=sale.total,
            )
        row.used_at = now
        row.used_by = principal.device_id
        row.audit = pick_for_audit(claims, ctx.audit_policy, ctx.rng)
        record_event(
            uow.session,
            ExitPassUsed(
                store_id=ctx.store_id, sale_id=sale.id, audit=bool(row.audit), at=now.isoformat()
            ),
            now=now,
        )
        verdict = GateResult(
            True,
            sale.id,
            bool(row.audit),
            sale_number=sale.number,
            item_count=sale.item_count,
            total=sale.total,
            items=_items(uow.session, sale.id) if row.audit else None,
        )
        # A gate that retries (its answer lost) gets this verdict again, not "used".
        remember(uow.session, retry, status=200, body=verdict.to_dict(), now=now)
        uow.commit()
        return verdict


def _items(session: Session, sale_id: str) -> tuple[tuple[str, int, int | None], ...]:
    lines = session.execute(
        select(SaleLine.name, SaleLine.quantity, SaleLine.weight_g)
        .where(SaleLine.sale_id == sale_id)
        .order_by(SaleLine.position)
    )
    return tuple((name, quantity, weight) for name, quantity, weight in lines)
