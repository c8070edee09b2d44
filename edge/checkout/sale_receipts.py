"""The receipt of a recorded sale: the sale dict and the store's settings as a :class:`Receipt`.

:mod:`edge.checkout.receipts` lays receipts out for paper; this module only fills one in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.checkout.receipts import Receipt, ReceiptLine, ReceiptPayment, render_text
from edge.context import StoreContext

#: Columns of the text rendering included in the JSON receipt (the 80 mm roll).
JSON_TEXT_WIDTH = 48


def _offers_by_line(sale: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """Each sale line's shares of the offers, by the offers' names, in the order they ran."""
    shares: dict[str, list[tuple[str, int]]] = {}
    for offer in sale.get("discounts", ()):
        for share in offer["lines"]:
            shares.setdefault(share["line_id"], []).append((offer["name"], share["amount"]))
    return shares


def receipt_of(ctx: StoreContext, sale: dict[str, Any]) -> Receipt:
    """The receipt of a sale, for JSON and for the printer."""
    offers = _offers_by_line(sale)
    return Receipt(
        store_name=ctx.settings.store.name,
        store_id=ctx.store_id,
        sale_number=sale["number"],
        sale_id=sale["id"],
        sold_at=datetime.fromisoformat(sale["created_at"]),
        timezone=ctx.settings.store.timezone,
        currency=sale["currency"],
        lines=tuple(
            ReceiptLine(
                name=line["name"],
                quantity=line["quantity"],
                weight_g=line["weight_g"],
                unit_price=line["unit_price"],
                subtotal=line["subtotal"],
                discount=line["discount"],
                total=line["total"],
                tax_rate_bp=line["tax_rate_bp"],
                offers=tuple(offers.get(line["id"], ())),
            )
            for line in sale["lines"]
        ),
        subtotal=sale["subtotal"],
        discount=sale["discount"],
        tax=sale["tax"],
        total=sale["total"],
        payments=tuple(ReceiptPayment(p["method"], p["amount"]) for p in sale["payments"]),
        change=sale["change"],
        offers=tuple((d["name"], d["amount"]) for d in sale.get("discounts", ())),
        points=None
        if sale.get("points") is None
        else (
            sale["points"]["earned"],
            sale["points"]["burned"],
            sale["points"]["balance_after"],
        ),
    )


def receipt_dict(ctx: StoreContext, sale: dict[str, Any]) -> dict[str, Any]:
    """The receipt as JSON, with its text for an 80 mm printer under ``text``."""
    receipt = receipt_of(ctx, sale)
    out = receipt.to_dict()
    out["text"] = render_text(receipt, JSON_TEXT_WIDTH)
    return out
