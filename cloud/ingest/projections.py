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
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from shared.text import FREE_TEXT_PATTERN
from sync.protocol import EVENT_REFUSED, WireEvent

#: Every integer in an event fits a 64-bit column with room to add a few of them (and is exact
#: in a JSON double): larger is not a quantity or an amount a store can have.
MAX_INT = 2**53
#: Event times a store can have: its clock may be far off, never outside these years.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(3000, 1, 1, tzinfo=UTC)

Int = Annotated[StrictInt, Field(ge=-MAX_INT, le=MAX_INT)]


def _text(max_length: int, min_length: int = 0) -> Any:
    """A bounded string with no control or text-direction characters (shared/text.py)."""
    return Field(min_length=min_length, max_length=max_length, pattern=FREE_TEXT_PATTERN)


class PoisonEvent(Exception):
    """An event the cloud cannot apply; the reason is kept with it in quarantine."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


Text64 = _text(64, 1)
Time = Field(min_length=10, max_length=40)


class SaleLineIn(_Payload):
    id: str = Text64
    sku: str = Text64
    name: str = _text(200)
    barcode: str = Field(default="", max_length=128)  # a GS1 code may carry FNC1 separators
    quantity: Int
    weight_g: Int | None = None
    unit_price: Int
    price: Int
    subtotal: Int
    discount: Int
    tax: Int
    total: Int
    tax_rate_bp: Int


class PaymentIn(_Payload):
    method: str = _text(32, 1)
    amount: Int
    reference: str | None = _text(128)


class SaleIn(_Payload):
    id: str = Text64
    number: str = Text64
    channel: str = _text(32)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    subtotal: Int
    discount: Int
    tax: Int
    total: Int
    paid: Int
    change: Int
    item_count: Int
    device_id: str | None = _text(64)
    created_at: str = Time
    lines: list[SaleLineIn] = Field(max_length=1000)
    payments: list[PaymentIn] = Field(max_length=20)


class SaleCompleted(_Payload):
    store_id: str = Text64
    sale: SaleIn


class ReturnCreated(_Payload):
    store_id: str = Text64
    return_id: str = Text64
    sale_id: str = Text64
    sale_number: str = _text(64)
    reason: str = _text(500)
    refund_total: Int
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[dict[str, Any]] = Field(max_length=1000)
    refunds: list[dict[str, Any]] = Field(default=[], max_length=20)
    at: str = Time


class StockMoved(_Payload):
    movement_id: str = Text64
    sku: str = Text64
    quantity: Int
    kind: str = _text(16, 1)
    reason: str = _text(500)
    ref_id: str | None = _text(64)
    on_hand_after: Int
    at: str = Time


class ExitPassUsed(_Payload):
    store_id: str = Text64
    sale_id: str = Text64
    audit: StrictBool
    at: str = Time


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
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 ahead of UTC, year 9999 behind it
        raise PoisonEvent(f"{what} {text!r} is outside the calendar once in UTC") from None
    if not EARLIEST <= moment < LATEST:
        raise PoisonEvent(f"{what} {text!r} is not a time a store can have sold at")
    return moment


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


def _refused(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    payload = event.payload if isinstance(event.payload, dict) else {}
    kind = str(payload.get("refused_type", "?"))[:64]
    reason = str(payload.get("reason", "?"))[:300]
    raise PoisonEvent(f"the store could not send this {kind} event: {reason}")


Projection = Callable[[WireEvent, str, datetime], Rows]

PROJECTIONS: dict[str, Projection] = {
    "sale.completed": _sale,
    "return.created": _return,
    "stock.moved": _stock,
    "exit_pass.used": _exit_pass,
    EVENT_REFUSED: _refused,
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
