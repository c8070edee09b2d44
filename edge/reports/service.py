"""The day so far at this store, in the store's own timezone."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from edge.checkout.models import Return, Sale
from edge.context import StoreContext
from edge.inventory.models import StockMovement
from edge.outbox.service import outbox_status


def day_report(ctx: StoreContext) -> dict[str, Any]:
    """Sales, items, revenue, returns and stock movements since local midnight; outbox depth."""
    now = ctx.clock.now()
    tz = ZoneInfo(ctx.settings.store.timezone)
    start = datetime.combine(now.astimezone(tz).date(), time(0), tz)
    with ctx.db.read() as session:
        sales, items, revenue = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Sale.item_count), 0),
                func.coalesce(func.sum(Sale.total), 0),
            ).where(Sale.created_at >= start)
        ).one()
        returns, refunded = session.execute(
            select(func.count(), func.coalesce(func.sum(Return.refund_total), 0)).where(
                Return.created_at >= start
            )
        ).one()
        movements = session.execute(
            select(func.count()).where(StockMovement.created_at >= start)
        ).scalar_one()
        below_zero = session.execute(
            select(func.count()).where(StockMovement.created_at >= start, StockMovement.below_zero)
        ).scalar_one()
        outbox = outbox_status(session)
    return {
        "store_id": ctx.store_id,
        "date": start.date().isoformat(),
        "currency": ctx.currency,
        "sales": int(sales),
        "items": int(items),
        "revenue": int(revenue),
        "returns": int(returns),
        "refunded": int(refunded),
        "net_revenue": int(revenue) - int(refunded),
        "stock_movements": int(movements),
        "below_zero_movements": int(below_zero),
        "outbox_pending": outbox.pending,
    }
