"""What each event type becomes at the cloud: payloads checked, then rows to insert.

A projection is a pure function from an event to the rows it adds. Anything wrong with the
payload raises :class:`PoisonEvent` with a reason, and the event goes to quarantine instead of
blocking the store's queue. Unknown fields are ignored (newer edges may send more); missing or
mistyped ones are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from sync.protocol import WireEvent


class PoisonEvent(Exception):
    """An event the cloud cannot apply; the reason is kept with it in quarantine."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


Text64 = Field(min_length=1, max_length=64)


class SaleLineIn(_Payload):
    id: str = Text64
    sku: str = Text64
    name: str = Field(max_length=200)
    barcode: str = Field(default="", max_length=64)
    quantity: StrictInt
    weight_g: StrictInt | None = None
    unit_price: StrictInt
    price: StrictInt
    subtotal: StrictInt
    discount: StrictInt
    tax: StrictInt
    total: StrictInt
    tax_rate_bp: StrictInt


class PaymentIn(_Payload):
    method: str = Field(min_length=1, max_length=32)
    amount: StrictInt
    reference: str | None = None


class SaleIn(_Payload):
    id: str = Text64
    number: str = Text64
    channel: str = Field(default="", max_length=32)
    currency: str = Field(min_length=3, max_length=3)
    subtotal: StrictInt
    discount: StrictInt
    tax: StrictInt
    total: StrictInt
    paid: StrictInt
    change: StrictInt
    item_count: StrictInt
    device_id: str | None = None
    created_at: str
    lines: list[SaleLineIn]
    payments: list[PaymentIn]


class SaleCompleted(_Payload):
    store_id: str
    sale: SaleIn


class ReturnCreated(_Payload):
    store_id: str
    return_id: str = Text64
    sale_id: str = Text64
    sale_number: str = Field(default="", max_length=64)
    reason: str = ""
    refund_total: StrictInt
    currency: str = Field(min_length=3, max_length=3)
    lines: list[dict[str, Any]]
    refunds: list[dict[str, Any]] = []
    at: str


class StockMoved(_Payload):
    movement_id: str = Text64
    sku: str = Text64
    quantity: StrictInt
    kind: str = Field(min_length=1, max_length=16)
    reason: str = ""
    ref_id: str | None = None
    on_hand_after: StrictInt
    at: str


class ExitPassUsed(_Payload):
    store_id: str
    sale_id: str = Text64
    audit: StrictBool
    at: str


@dataclass
class Rows:
    """Rows an event adds, by table, in insert order (parents first)."""

    by_table: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: Any, row: dict[str, Any]) -> None:
        self.by_table.setdefault(table, []).append(row)

    def extend(self, other: Rows) -> None:
        for table, rows in other.by_table.items():
            self.by_table.setdefault(table, []).extend(rows)


def _time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PoisonEvent(f"{what} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise PoisonEvent(f"{what} {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def _check_store(payload_store: str, store_id: str) -> None:
    if payload_store != store_id:
        raise PoisonEvent(f"payload names store {payload_store!r}, the batch is {store_id!r}")


def _sale(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    doc = SaleCompleted.model_validate(event.payload)
    _check_store(doc.store_id, store_id)
    sale = doc.sale
    if sale.id != event.aggregate_id:
        raise PoisonEvent(f"sale id {sale.id} is not the event's aggregate {event.aggregate_id}")
    if sum(line.total for line in sale.lines) != sale.total:
        raise PoisonEvent(f"sale {sale.number}: line totals do not add up to {sale.total}")
    rows = Rows()
    rows.add(
        Sale,
        {
            "id": sale.id,
            "store_id": store_id,
            "seq": event.seq,
            "number": sale.number,
            "channel": sale.channel,
            "currency": sale.currency,
            "subtotal": sale.subtotal,
            "discount": sale.discount,
            "tax": sale.tax,
            "total": sale.total,
            "paid": sale.paid,
            "change": sale.change,
            "item_count": sale.item_count,
            "device_id": sale.device_id,
            "payments": json.dumps([p.model_dump() for p in sale.payments], separators=(",", ":")),
            "created_at": _time(sale.created_at, "sale.created_at"),
            "received_at": received_at,
        },
    )
    for position, line in enumerate(sale.lines, start=1):
        rows.add(
            SaleLine,
            {
                "id": line.id,
                "sale_id": sale.id,
                "position": position,
                "sku": line.sku,
                "name": line.name,
                "barcode": line.barcode,
                "quantity": line.quantity,
                "weight_g": line.weight_g,
                "unit_price": line.unit_price,
                "price": line.price,
                "subtotal": line.subtotal,
                "discount": line.discount,
                "tax": line.tax,
                "total": line.total,
                "tax_rate_bp": line.tax_rate_bp,
            },
        )
    return rows


def _return(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    doc = ReturnCreated.model_validate(event.payload)
    _check_store(doc.store_id, store_id)
    rows = Rows()
    rows.add(
        Return,
        {
            "id": doc.return_id,
            "store_id": store_id,
            "seq": event.seq,
            "sale_id": doc.sale_id,
            "sale_number": doc.sale_number,
            "reason": doc.reason,
            "refund_total": doc.refund_total,
            "currency": doc.currency,
            "lines": json.dumps(doc.lines, separators=(",", ":"), ensure_ascii=False),
            "refunds": json.dumps(doc.refunds, separators=(",", ":"), ensure_ascii=False),
            "created_at": _time(doc.at, "at"),
            "received_at": received_at,
        },
    )
    return rows


def _stock(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    doc = StockMoved.model_validate(event.payload)
    rows = Rows()
    rows.add(
        StockMovement,
        {
            "id": doc.movement_id,
            "store_id": store_id,
            "seq": event.seq,
            "sku": doc.sku,
            "quantity": doc.quantity,
            "kind": doc.kind,
            "reason": doc.reason,
            "ref_id": doc.ref_id,
            "on_hand_after": doc.on_hand_after,
            "created_at": _time(doc.at, "at"),
            "received_at": received_at,
        },
    )
    return rows


def _exit_pass(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    doc = ExitPassUsed.model_validate(event.payload)
    _check_store(doc.store_id, store_id)
    rows = Rows()
    rows.add(
        ExitPassUse,
        {
            "event_id": event.id,
            "store_id": store_id,
            "seq": event.seq,
            "sale_id": doc.sale_id,
            "audit": doc.audit,
            "used_at": _time(doc.at, "at"),
        },
    )
    return rows


Projection = Callable[[WireEvent, str, datetime], Rows]

PROJECTIONS: dict[str, Projection] = {
    "sale.completed": _sale,
    "return.created": _return,
    "stock.moved": _stock,
    "exit_pass.used": _exit_pass,
}


def project(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    """The rows ``event`` adds; :class:`PoisonEvent` if it cannot be applied."""
    projection = PROJECTIONS.get(event.type)
    if projection is None:
        raise PoisonEvent(f"unknown event type {event.type!r}")
    if not isinstance(event.payload, dict):
        raise PoisonEvent("payload is not a JSON object")
    try:
        return projection(event, store_id, received_at)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:5]
        )
        raise PoisonEvent(f"invalid {event.type} payload: {problems}") from None
