"""Reading the sales projection for HQ."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import Database
from cloud.errors import NotFound
from cloud.sales.models import Sale, SaleLine
from cloud.stores.models import Store

#: A sale line as HQ reads it: every column but the sale it belongs to and its position.
_LINE_FIELDS = [c.name for c in SaleLine.__table__.columns if c.name not in ("sale_id", "position")]


def _sales_page(
    session: Session, store_id: str, *, after_seq: int, limit: int
) -> tuple[list[dict[str, Any]], int, bool]:
    """Sales of ``store_id`` after ``after_seq`` in the store's sequence order: (sales, last seq,
    more after). Sequence order is also commit order (one batch of a store at a time), so a
    page boundary never skips or repeats a sale."""
    if session.get(Store, store_id) is None:
        raise NotFound(f"no store {store_id!r}", code="unknown_store")
    sales = list(
        session.execute(
            select(Sale)
            .where(Sale.store_id == store_id, Sale.seq > after_seq)
            .order_by(Sale.seq)
            .limit(limit + 1)
        ).scalars()
    )
    more = len(sales) > limit
    sales = sales[:limit]
    lines: dict[str, list[dict[str, Any]]] = {}
    if sales:
        for line in session.execute(
            select(SaleLine)
            .where(SaleLine.sale_id.in_([s.id for s in sales]))
            .order_by(SaleLine.sale_id, SaleLine.position)
        ).scalars():
            lines.setdefault(line.sale_id, []).append(
                {name: getattr(line, name) for name in _LINE_FIELDS}
            )
    out = [
        {
            "id": s.id,
            "number": s.number,
            "store_id": s.store_id,
            "seq": s.seq,
            "channel": s.channel,
            "currency": s.currency,
            "subtotal": s.subtotal,
            "discount": s.discount,
            "tax": s.tax,
            "total": s.total,
            "paid": s.paid,
            "change": s.change,
            "item_count": s.item_count,
            "device_id": s.device_id,
            "created_at": s.created_at.isoformat(),
            "received_at": s.received_at.isoformat(),
            "lines": lines.get(s.id, []),
            "payments": json.loads(s.payments),
        }
        for s in sales
    ]
    return out, (sales[-1].seq if sales else after_seq), more


def sales_page(
    db: Database, store_id: str, *, after_seq: int, limit: int
) -> tuple[list[dict[str, Any]], int, bool]:
    """A page of a store's sales for HQ, after ``after_seq``."""
    with db.read() as session:
        return _sales_page(session, store_id, after_seq=after_seq, limit=limit)
