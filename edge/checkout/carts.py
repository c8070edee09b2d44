"""Cart use cases: open a cart, scan into it, change and remove lines, attendant approval.

Carts live in the database, not in a worker's memory: any server worker can serve the next scan,
and a restarted server finds every open cart where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
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


@dataclass(frozen=True)
class CartView:
    """A cart as devices see it, priced."""

    cart: Cart
    lines: list[CartLine]
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


def _line_dict(line: CartLine, priced: PricedLine) -> dict[str, Any]:
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
        "age_restricted": line.age_restricted,
        "subtotal": priced.subtotal,
        "discount": priced.discount,
        "tax": priced.tax,
        "total": priced.total,
    }


def load_cart(session: Session, principal: Principal, cart_id: str) -> Cart:
    """The cart, if this caller may touch it: a phone only its own carts."""
    cart = session.get(Cart, cart_id)
    if cart is None:
        raise NotFound(f"no cart {cart_id}", code="unknown_cart", details={"cart_id": cart_id})
    if principal.role == "phone" and cart.device_id != principal.device_id:
        # Answer as if it did not exist: a phone must not learn other shoppers' cart ids.
        raise NotFound(f"no cart {cart_id}", code="unknown_cart", details={"cart_id": cart_id})
    return cart


def _open(cart: Cart) -> None:
    if cart.status != "open":
        raise Conflict(
            "this cart is already checked out", code="cart_closed", details={"cart_id": cart.id}
        )


def view_of(session: Session, cart: Cart) -> CartView:
    lines = list(
        session.execute(
            select(CartLine).where(CartLine.cart_id == cart.id).order_by(CartLine.position)
        ).scalars()
    )
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
    cart = Cart(
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
    with db.write() as uow:
        uow.session.add(cart)
        uow.commit()
    return CartView(cart, [], [], Totals(0, 0, 0, 0))


def get_cart(db: Database, principal: Principal, cart_id: str) -> CartView:
    with db.read() as session:
        return view_of(session, load_cart(session, principal, cart_id))


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
    """Scan ``barcode`` into the cart; the same plain item scanned again adds to its line."""
    qty = 1 if quantity is None else quantity
    _check_quantity(qty)
    with db.write() as uow:
        session = uow.session
        cart = load_cart(session, principal, cart_id)
        _open(cart)
        item = lookup_scan(session, barcode, layout)
        existing = None
        if item.weight_g is None:
            existing = session.execute(
                select(CartLine).where(
                    CartLine.cart_id == cart.id,
                    CartLine.sku == item.sku,
                    CartLine.piece_price == item.piece_price,
                    CartLine.weight_g.is_(None),
                )
            ).scalar()
        if existing is not None:
            _check_quantity(existing.quantity + qty)
            existing.quantity += qty
        else:
            count, last = session.execute(
                select(func.count(), func.max(CartLine.position)).where(CartLine.cart_id == cart.id)
            ).one()
            if count >= MAX_LINES:
                raise Conflict(
                    f"a cart holds at most {MAX_LINES} lines", code="cart_full", details={}
                )
            session.add(
                CartLine(
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
        if item.age_restricted and cart.approved_at is not None:
            # An approval covers what the attendant saw; a new restricted item needs a new look.
            cart.approved_at = None
            cart.approved_by = None
        cart.updated_at = now
        session.flush()
        view = view_of(session, cart)
        uow.commit()
    return view


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise Unprocessable(
            f"quantity must be between 1 and {MAX_QUANTITY}",
            details={"field": "quantity", "value": quantity},
        )


def _line(session: Session, cart: Cart, line_id: str) -> CartLine:
    line = session.get(CartLine, line_id)
    if line is None or line.cart_id != cart.id:
        raise NotFound(
            f"no line {line_id} in this cart", code="unknown_line", details={"line_id": line_id}
        )
    return line


def update_line(
    db: Database, principal: Principal, cart_id: str, line_id: str, *, quantity: int, now: datetime
) -> CartView:
    """Set a line's quantity."""
    _check_quantity(quantity)
    with db.write() as uow:
        session = uow.session
        cart = load_cart(session, principal, cart_id)
        _open(cart)
        _line(session, cart, line_id).quantity = quantity
        cart.updated_at = now
        session.flush()
        view = view_of(session, cart)
        uow.commit()
    return view


def remove_line(
    db: Database, principal: Principal, cart_id: str, line_id: str, *, now: datetime
) -> CartView:
    """Take a line out of the cart."""
    with db.write() as uow:
        session = uow.session
        cart = load_cart(session, principal, cart_id)
        _open(cart)
        session.delete(_line(session, cart, line_id))
        cart.updated_at = now
        session.flush()
        view = view_of(session, cart)
        uow.commit()
    return view


def approve(db: Database, principal: Principal, cart_id: str, *, now: datetime) -> CartView:
    """An attendant has checked the shopper's age: age-restricted lines may be paid for."""
    if principal.role not in ATTENDANT_ROLES:
        raise Forbidden("only an attendant may approve", details={"role": principal.role})
    with db.write() as uow:
        session = uow.session
        cart = load_cart(session, principal, cart_id)
        _open(cart)
        cart.approved_at = now
        cart.approved_by = principal.device_id
        cart.updated_at = now
        session.flush()
        view = view_of(session, cart)
        uow.commit()
    return view
