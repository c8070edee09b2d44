"""What each event type becomes at the cloud: payloads read by their schema, then rows.

A projection is a pure function from an event to the rows it adds. The payload is read with its
type's schema in :mod:`sync.contract` (its version brought up to date there); anything wrong with
it raises :class:`PoisonEvent` with a reason, and the event goes to quarantine instead of
blocking the store's queue. Unknown fields are ignored (newer edges may send more); missing or
mistyped ones are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cloud.coupons.service import CouponEffect, ReturnCoupons, SaleCoupons
from cloud.members.effects import Effect, ReturnPoints, SalePoints, SignedUp
from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from sync import contract
from sync.contract import (
    EventRefused,
    ExitPassUsed,
    MemberSignedUp,
    ReturnCreated,
    SaleCompleted,
    SaleDoc,
    StockMoved,
    UnreadableEvent,
    read_event,
    utc_time,
)
from sync.protocol import WireEvent


class PoisonEvent(Exception):
    """An event the cloud cannot apply; the reason is kept with it in quarantine."""


@dataclass
class Rows:
    """Rows an event adds, by table, in insert order (parents first), and what it does to
    members and points (applied after the rows, in the same transaction)."""

    by_table: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    effects: list[Effect] = field(default_factory=list)
    coupons: list[CouponEffect] = field(default_factory=list)

    def add(self, table: Any, row: dict[str, Any]) -> None:
        self.by_table.setdefault(table, []).append(row)

    def extend(self, other: Rows) -> None:
        for table, rows in other.by_table.items():
            self.by_table.setdefault(table, []).extend(rows)
        self.effects.extend(other.effects)
        self.coupons.extend(other.coupons)


def _time(text: str, what: str) -> datetime:
    # The schema checked it already; a check that failed here would be a bug, not a bad event.
    return utc_time(text, what)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _check_store(payload_store: str, store_id: str) -> None:
    if payload_store != store_id:
        raise PoisonEvent(f"payload names store {payload_store!r}, the batch is {store_id!r}")


#: The fields of a sale and of its lines that HQ keeps as they came: the wire's names that are
#: also columns of the cloud's tables.
_SALE_FIELDS = tuple(
    sorted(
        set(SaleDoc.model_fields)
        & set(Sale.__table__.columns.keys())
        - {
            "created_at",  # checked and kept as a time
            "payments",  # kept as JSON
        }
    )
)
_LINE_FIELDS = tuple(
    sorted(set(contract.SaleLine.model_fields) & set(SaleLine.__table__.columns.keys()))
)


def _fields(doc: Any, names: tuple[str, ...]) -> dict[str, Any]:
    # A validated schema keeps its field values in __dict__; reading them there is several
    # times cheaper than model_dump, and ingest does it for every line of every sale.
    values = doc.__dict__
    return {name: values[name] for name in names}


def _sale(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, SaleCompleted)
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
            **_fields(sale, _SALE_FIELDS),
            "store_id": store_id,
            "seq": event.seq,
            "payments": json.dumps([p.model_dump() for p in sale.payments], separators=(",", ":")),
            "created_at": _time(sale.created_at, "sale.created_at"),
            "received_at": received_at,
        },
    )
    for position, line in enumerate(sale.lines, start=1):
        rows.add(
            SaleLine,
            {**_fields(line, _LINE_FIELDS), "sale_id": sale.id, "position": position},
        )
    if sale.member is not None:
        rows.effects.append(
            SalePoints(store_id, sale.id, sale.member, _time(sale.created_at, "sale.created_at"))
        )
    if sale.coupons:
        rows.coupons.append(
            SaleCoupons(
                store_id,
                sale.id,
                sale.currency,
                tuple(sale.coupons),
                _time(sale.created_at, "sale.created_at"),
            )
        )
    return rows


def _return(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, ReturnCreated)
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
            "lines": _json([line.model_dump() for line in doc.lines]),
            "refunds": _json([refund.model_dump() for refund in doc.refunds]),
            "created_at": _time(doc.at, "at"),
            "received_at": received_at,
        },
    )
    if doc.refund_total > 0 or doc.points_back > 0:
        rows.effects.append(
            ReturnPoints(
                store_id,
                doc.return_id,
                doc.sale_id,
                refunded=max(doc.refund_total, 0),
                points_back=doc.points_back,
                at=_time(doc.at, "at"),
            )
        )
    if doc.coupons_back:
        rows.coupons.append(
            ReturnCoupons(store_id, doc.return_id, doc.sale_id, tuple(doc.coupons_back))
        )
    return rows


def _stock(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, StockMoved)
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


def _exit_pass(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, ExitPassUsed)
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


def _signed_up(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, MemberSignedUp)
    _check_store(doc.store_id, store_id)
    rows = Rows()
    rows.effects.append(SignedUp(store_id, doc, _time(doc.at, "at")))
    return rows


def _refused(event: WireEvent, doc: Any, store_id: str, received_at: datetime) -> Rows:
    assert isinstance(doc, EventRefused)
    raise PoisonEvent(
        f"the store could not send this {doc.refused_type[:64]} event: {doc.reason[:300]}"
    )


Projection = Callable[[WireEvent, Any, str, datetime], Rows]

#: What each event type becomes; every type of sync.contract.EVENTS has one.
PROJECTIONS: dict[str, Projection] = {
    SaleCompleted.TYPE: _sale,
    ReturnCreated.TYPE: _return,
    StockMoved.TYPE: _stock,
    ExitPassUsed.TYPE: _exit_pass,
    MemberSignedUp.TYPE: _signed_up,
    EventRefused.TYPE: _refused,
}


def project(event: WireEvent, store_id: str, received_at: datetime) -> Rows:
    """The rows ``event`` adds; :class:`PoisonEvent` if it cannot be applied."""
    projection = PROJECTIONS.get(event.type)
    if projection is None:
        raise PoisonEvent(f"unknown event type {event.type!r}")
    if not isinstance(event.payload, dict):
        raise PoisonEvent("payload is not a JSON object")
    try:
        doc = read_event(event.type, event.payload)
    except UnreadableEvent as exc:
        raise PoisonEvent(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:5]
        )
        raise PoisonEvent(f"invalid {event.type} payload: {problems}") from None
    return projection(event, doc, store_id, received_at)
