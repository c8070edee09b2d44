"""Reading the sales projection for HQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
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
            "staff_id": s.staff_id,
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


def daily_sales(db: Database, *, since: datetime) -> list[dict[str, Any]]:
    """Each store's sales and their total per day of the store's own calendar (its time zone),
    for sales made since ``since``, newest day first. Counted per hour of UTC in the database
    and put on the store's days here (a zone whose offset is not whole hours puts the half
    hour after midnight on the day before)."""
    with db.read() as session:
        if session.get_bind().dialect.name == "postgresql":
            hour = func.to_char(Sale.created_at, 'YYYY-MM-DD"T"HH24')
        else:
            hour = func.strftime("%Y-%m-%dT%H", Sale.created_at)
        buckets = session.execute(
            select(Sale.store_id, hour, func.count(), func.sum(Sale.total))
            .where(Sale.created_at >= since)
            .group_by(Sale.store_id, hour)
        ).all()
        stores = {
            store_id: (ZoneInfo(zone), currency)
            for store_id, zone, currency in session.execute(
                select(Store.id, Store.timezone, Store.currency)
            )
        }
    days: dict[tuple[str, str], list[int]] = {}
    for store_id, at_hour, count, total in buckets:
        zone = stores[store_id][0] if store_id in stores else UTC
        local = datetime.fromisoformat(f"{at_hour}:00:00+00:00").astimezone(zone)
        tally = days.setdefault((store_id, local.date().isoformat()), [0, 0])
        tally[0] += int(count)
        tally[1] += int(total or 0)
    return [
        {
            "store_id": store_id,
            "date": day,
            "sales": count,
            "total": total,
            "currency": stores[store_id][1] if store_id in stores else "",
        }
        for (store_id, day), (count, total) in sorted(
            days.items(), key=lambda kv: (kv[0][1], kv[0][0]), reverse=True
        )
    ]
