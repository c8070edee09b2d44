"""Cart use cases: open a cart, scan into it, change and remove lines, attendant approval.

Carts live in the database, not in a worker's memory: any server worker can serve the next scan,
and a restarted server finds every open cart where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from edge.auth.service import ATTENDANT_ROLES, Principal
from edge.catalog.barcodes import VariableMeasureLayout
from edge.catalog.service import lookup_scan
from edge.checkout.models import Cart, CartLine
from edge.db import Database
from edge.errors import Conflict, Forbidden, NotFound, Unprocessable
from edge.pricing.cart_pricing import LineInput, PricedLine, Totals, price_lines
from sync.ids import new_id

MAX_QUANTITY = 9_999
MAX_LINES = 500
CHANNELS = ("kiosk", "scan_to_buy")


_CARTS = cast(Table, Cart.__table__)
_LINES = cast(Table, CartLine.__table__)
_CART_BY_ID = select(_CARTS).where(_CARTS.c.id == bindparam("id"))
_LINES_OF = (
    select(_LINES).where(_LINES.c.cart_id == bindparam("cart_id")).order_by(_LINES.c.position)
)
_SAME_ITEM = select(_LINES.c.id, _LINES.c.quantity).where(
    _LINES.c.cart_id == bindparam("cart_id"),
    _LINES.c.sku == bindparam("sku"),
    _LINES.c.piece_price == bindparam("piece_price"),
    _LINES.c.weight_g.is_(None),
)
_LINE_STATS = select(func.count(), func.max(_LINES.c.position)).where(
    _LINES.c.cart_id == bindparam("cart_id")
)


@dataclass(frozen=True, slots=True)
class CartHead:
    """A cart's own columns (its lines live in :class:`CartView`)."""

    id: str
    channel: str
    status: str
    device_id: str
    currency: str
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Row[Any] | Cart) -> CartHead:
        return cls(
            id=row.id,
            channel=row.channel,
            status=row.status,
            device_id=row.device_id,
            currency=row.currency,
            approved_by=row.approved_by,
            approved_at=row.approved_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class CartView:
    """A cart as devices see it, priced."""

    cart: CartHead
    lines: list[Row[Any]]
    priced: list[PricedLine]
    totals: Totals

    @property
    def needs_approval(self) -> bool:
        return any(line.age_restricted for line in self.lines)

    @property
    def approved(self) -> bool:
        return self.cart.approved_at is not None

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.cart.id,
            "channel": self.cart.channel,
            "status": self.cart.status,
            "currency": self.cart.currency,
            "lines": [
                _line_dict(line, priced)
                for line, priced in zip(self.lines, self.priced, strict=True)
            ],
            "totals": self.totals.to_dict(),
            "item_count": self.item_count,
            "approval": {"required": self.needs_approval, "approved": self.approved},
            "created_at": self.cart.created_at.isoformat(),
            "updated_at": self.cart.updated_at.isoformat(),
        }


def _line_dict(line: Row[Any], priced: PricedLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "sku": line.sku,
        "name": line.name,
        "barcode": line.barcode,
        "sold_by": line.sold_by,
        "quantity": line.quantity,
        "weight_g": line.weight_g,
        "unit_price": line.unit_price,
        "price": line.piece_price,
        "tax_rate_bp": line.tax_rate_bp,
        "age_restricted": bool(line.age_restricted),
        "subtotal": priced.subtotal,
        "discount": priced.discount,
        "tax": priced.tax,
        "total": priced.total,
    }


def load_cart(session: Session, principal: Principal, cart_id: str) -> CartHead:
    """The cart, if this caller may touch it: a phone only its own carts."""
    row = session.connection().execute(_CART_BY_ID, {"id": cart_id}).first()
    if row is None or (principal.role == "phone" and row.device_id != principal.device_id):
        # A phone is answered as if another's cart did not exist: it must not learn cart ids.
        raise NotFound(f"no cart {cart_id}", code="unknown_cart", details={"cart_id": cart_id})
    return CartHead.of(row)


def _open(cart: CartHead) -> None:
    if cart.status != "open":
        raise Conflict(
            "this cart is already checked out", code="cart_closed", details={"cart_id": cart.id}
        )


def view_of(session: Session, cart: CartHead) -> CartView:
    """The cart with its lines, priced by the pricing rules."""
    lines = list(session.connection().execute(_LINES_OF, {"cart_id": cart.id}).all())
    priced, totals = price_lines(
        [LineInput(line.piece_price, line.quantity, line.tax_rate_bp) for line in lines]
    )
    return CartView(cart, lines, priced, totals)


def create_cart(
    db: Database, principal: Principal, *, channel: str, currency: str, now: datetime
) -> CartView:
    """Open an empty cart for this device."""
    if channel not in CHANNELS:
        raise Unprocessable("channel must be kiosk or scan_to_buy", details={"field": "channel"})
    if principal.role == "phone" and channel != "scan_to_buy":
        raise Forbidden("a phone opens scan_to_buy carts only", details={"channel": channel})
    cart = CartHead(
        id=new_id(),
        channel=channel,
        status="open",
        device_id=principal.device_id,
        currency=currency,
        approved_by=None,
        approved_at=None,
        created_at=now,
        updated_at=now,
    )
    with db.write(durable=False) as uow:
        uow.session.connection().execute(insert(_CARTS).values(**_columns(cart)))
        uow.commit()
    return CartView(cart, [], [], Totals(0, 0, 0, 0))


def _columns(cart: CartHead) -> dict[str, Any]:
    return {name: getattr(cart, name) for name in CartHead.__slots__}


def get_cart(db: Database, principal: Principal, cart_id: str) -> CartView:
    with db.read() as session:
        return view_of(session, load_cart(session, principal, cart_id))


def _touch(conn: Connection, cart: CartHead, **changes: Any) -> CartHead:
    cart = replace(cart, **changes)
    conn.execute(
        update(_CARTS)
        .where(_CARTS.c.id == cart.id)
        .values(
            updated_at=cart.updated_at, approved_at=cart.approved_at, approved_by=cart.approved_by
        )
    )
    return cart


def add_line(
    db: Database,
    principal: Principal,
    cart_id: str,
    *,
    barcode: str,
    quantity: int | None,
    layout: VariableMeasureLayout,
    now: datetime,
) -> CartView:
    """Scan ``barcode`` into the cart; the same plain item scanned again adds to its line.

    The busiest write of the store (every scan of every device), so it runs on Core statements.
    """
    qty = 1 if quantity is None else quantity
    _check_quantity(qty)
    # The catalog lookup and the pricing happen outside the write transaction: the store has
    # one writer at a time, so the lock is held only for the few statements that change the cart.
    with db.read() as session:
        item = lookup_scan(session, barcode, layout)
    with db.write(durable=False) as uow:
        conn = uow.session.connection()
        cart = load_cart(uow.session, principal, cart_id)
        _open(cart)
        existing = None
        if item.weight_g is None:
            existing = conn.execute(
                _SAME_ITEM,
                {"cart_id": cart.id, "sku": item.sku, "piece_price": item.piece_price},
            ).first()
        if existing is not None:
            _check_quantity(existing.quantity + qty)
            conn.execute(
                update(_LINES)
                .where(_LINES.c.id == existing.id)
                .values(quantity=existing.quantity + qty)
            )
        else:
            count, last = conn.execute(_LINE_STATS, {"cart_id": cart.id}).one()
            if count >= MAX_LINES:
                raise Conflict(
                    f"a cart holds at most {MAX_LINES} lines", code="cart_full", details={}
                )
            conn.execute(
                insert(_LINES).values(
                    id=new_id(),
                    cart_id=cart.id,
                    position=(last or 0) + 1,
                    sku=item.sku,
                    name=item.name,
                    sold_by=item.sold_by,
                    age_restricted=item.age_restricted,
                    barcode=item.barcode,
                    quantity=qty,
                    weight_g=item.weight_g,
                    unit_price=item.unit_price,
                    piece_price=item.piece_price,
                    tax_rate_bp=item.tax_rate_bp,
                )
            )
        changes: dict[str, Any] = {"updated_at": now}
        if item.age_restricted and cart.approved_at is not None:
            # An approval covers what the attendant saw; a new restricted item needs a new look.
            changes.update(approved_at=None, approved_by=None)
        cart = _touch(conn, cart, **changes)
        uow.commit()
    return _view_after(db, cart)


def _view_after(db: Database, cart: CartHead) -> CartView:
    """The cart as just committed, read and priced outside the write lock."""
    with db.read() as session:
        return view_of(session, cart)


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise Unprocessable(
            f"quantity must be between 1 and {MAX_QUANTITY}",
            details={"field": "quantity", "value": quantity},
        )


def _line_id(conn: Connection, cart: CartHead, line_id: str) -> str:
    found = conn.execute(
        select(_LINES.c.id).where(_LINES.c.id == line_id, _LINES.c.cart_id == cart.id)
    ).first()
    if found is None:
        raise NotFound(
            f"no line {line_id} in this cart", code="unknown_line", details={"line_id": line_id}
        )
    return line_id


def update_line(
    db: Database, principal: Principal, cart_id: str, line_id: str, *, quantity: int, now: datetime
) -> CartView:
    """Set a line's quantity."""
    _check_quantity(quantity)
    with db.write(durable=False) as uow:
        conn = uow.session.connection()
        cart = load_cart(uow.session, principal, cart_id)
        _open(cart)
        conn.execute(
            update(_LINES)
            .where(_LINES.c.id == _line_id(conn, cart, line_id))
            .values(quantity=quantity)
        )
        cart = _touch(conn, cart, updated_at=now)
        uow.commit()
    return _view_after(db, cart)


def remove_line(
    db: Database, principal: Principal, cart_id: str, line_id: str, *, now: datetime
) -> CartView:
    """Take a line out of the cart."""
    with db.write(durable=False) as uow:
        conn = uow.session.connection()
        cart = load_cart(uow.session, principal, cart_id)
        _open(cart)
        conn.execute(delete(_LINES).where(_LINES.c.id == _line_id(conn, cart, line_id)))
        cart = _touch(conn, cart, updated_at=now)
        uow.commit()
    return _view_after(db, cart)


def approve(db: Database, principal: Principal, cart_id: str, *, now: datetime) -> CartView:
    """An attendant has checked the shopper's age: age-restricted lines may be paid for."""
    if principal.role not in ATTENDANT_ROLES:
        raise Forbidden("only an attendant may approve", details={"role": principal.role})
    with db.write(durable=False) as uow:
        conn = uow.session.connection()
        cart = load_cart(uow.session, principal, cart_id)
        _open(cart)
        cart = _touch(conn, cart, updated_at=now, approved_at=now, approved_by=principal.device_id)
        uow.commit()
    return _view_after(db, cart)
