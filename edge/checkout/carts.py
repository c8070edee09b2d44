"""Cart use cases: open a cart, scan into it, change and remove lines, attendant approval.

Carts live in the database, not in a worker's memory: any server worker can serve the next scan,
and a restarted server finds every open cart where it was. Scans are the busiest writes of the
store, so this module speaks plain SQL on a bare cursor (see :class:`edge.db.RawTransaction`)
and holds the write lock only for the statements that change the cart; the catalog lookup and
the pricing happen outside it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from edge.auth.service import ATTENDANT_ROLES, Principal
from edge.catalog.scan_rules import ScanRules
from edge.catalog.service import lookup_scan
from edge.coupons.service import OnCart, coupons_on
from edge.db import Database, RawTransaction, from_sql_time, to_sql_time
from edge.errors import Conflict, Forbidden, NotFound, Unprocessable
from edge.idempotency import Retryable, remember
from edge.pricing.cart_pricing import CartTotals, LineInput, PricedLine, price_lines
from edge.pricing.promotion_engine import Applied, Item, Occasion, PromotionBook, reprice
from edge.pricing.store_promotions import Shop, book_here, occasion_of
from shared.ids import new_id
from shared.money import MAX_AMOUNT

MAX_QUANTITY = 9_999
MAX_LINES = 500
CHANNELS = ("kiosk", "scan_to_buy")

_CART_BY_ID = "SELECT * FROM carts WHERE id = ?"
_LINES_OF = (
    "SELECT cart_lines.*, COALESCE(products.category, '') AS category FROM cart_lines "
    "LEFT JOIN products ON products.sku = cart_lines.sku WHERE cart_id = ? ORDER BY position"
)
_SAME_ITEM = (
    "SELECT id, quantity FROM cart_lines "
    "WHERE cart_id = ? AND sku = ? AND piece_price = ? AND weight_g IS NULL"
)
_LINE_STATS = "SELECT COUNT(*), MAX(position) FROM cart_lines WHERE cart_id = ?"
_INSERT_LINE = (
    "INSERT INTO cart_lines (id, cart_id, position, sku, name, sold_by, age_restricted, barcode, "
    "quantity, weight_g, unit_price, piece_price, tax_rate_bp) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CART = (
    "INSERT INTO carts (id, channel, status, device_id, currency, approved_by, approved_at, "
    "approved_lines, created_at, updated_at, member_id, member_online, member_by_code) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOUCH = (
    "UPDATE carts SET updated_at = ?, approved_at = ?, approved_by = ?, approved_lines = ?, "
    "approved_staff_id = ? WHERE id = ?"
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
    # {line id: quantity} of the age-restricted lines the attendant saw when approving.
    approved_lines: dict[str, int] | None
    created_at: datetime
    updated_at: datetime
    member_id: str | None = None
    member_online: bool = False
    member_by_code: bool = False  # attached by the member code their app shows
    points: int = 0  # the points the member spends on this cart
    points_value: int = 0  # what they pay, in minor units
    points_hold_id: str | None = None  # the cloud's hold on them (None: set offline)
    approved_staff_id: str | None = None  # the staff member signed in on the approving device

    @classmethod
    def of(cls, row: sqlite3.Row) -> CartHead:
        created = from_sql_time(row["created_at"])
        updated = from_sql_time(row["updated_at"])
        assert created is not None and updated is not None
        covered = row["approved_lines"]
        return cls(
            id=row["id"],
            channel=row["channel"],
            status=row["status"],
            device_id=row["device_id"],
            currency=row["currency"],
            approved_by=row["approved_by"],
            approved_at=from_sql_time(row["approved_at"]),
            approved_lines=None if covered is None else json.loads(covered),
            created_at=created,
            updated_at=updated,
            member_id=row["member_id"],
            member_online=bool(row["member_online"]),
            member_by_code=bool(row["member_by_code"]),
            points=row["points"],
            points_value=row["points_value"],
            points_hold_id=row["points_hold_id"],
            approved_staff_id=row["approved_staff_id"],
        )


@dataclass(frozen=True, slots=True)
class CartLineRow:
    """One line of a cart as stored: what was scanned and what one piece costs."""

    id: str
    position: int
    sku: str
    name: str
    sold_by: str
    age_restricted: bool
    barcode: str
    quantity: int
    weight_g: int | None
    unit_price: int
    piece_price: int
    tax_rate_bp: int
    category: str = ""  # the product's, for offers on a category

    @classmethod
    def of(cls, row: sqlite3.Row) -> CartLineRow:
        return cls(
            id=row["id"],
            position=row["position"],
            sku=row["sku"],
            name=row["name"],
            sold_by=row["sold_by"],
            age_restricted=bool(row["age_restricted"]),
            barcode=row["barcode"],
            quantity=row["quantity"],
            weight_g=row["weight_g"],
            unit_price=row["unit_price"],
            piece_price=row["piece_price"],
            tax_rate_bp=row["tax_rate_bp"],
            category=row["category"],
        )

    def item(self) -> Item:
        """The line as the promotion engine reads it."""
        return Item(
            self.id, self.sku, self.category, self.piece_price, self.quantity, self.weight_g
        )


@dataclass(frozen=True)
class CartView:
    """A cart as devices see it, priced."""

    cart: CartHead
    lines: list[CartLineRow]
    priced: list[PricedLine]
    totals: CartTotals
    # The attached member as this store knows them: id, masked phone, balance, tier, and
    # ``offline`` (the balance is the store's last word from the cloud, not the cloud's now).
    member: dict[str, Any] | None = None
    # The offers the cart takes, in the order they ran (each line's share is in its discount).
    discounts: tuple[Applied, ...] = ()
    # The coupons on the cart (their offers are among the discounts, at the coupon stage).
    coupons: tuple[OnCart, ...] = ()

    def coupon_amount(self, coupon: OnCart) -> int:
        """What ``coupon`` takes off the cart as now priced."""
        return sum(a.amount for a in self.discounts if a.promotion_id == coupon.offer.id)

    @property
    def needs_approval(self) -> bool:
        return any(line.age_restricted for line in self.lines)

    @property
    def approved(self) -> bool:
        """Whether an approval covers every age-restricted line at its current quantity."""
        return approval_covers(self.cart, self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def due(self) -> int:
        """What is left to pay once the member's points have paid their part."""
        return max(self.totals.total - self.cart.points_value, 0)

    def _points_dict(self) -> dict[str, Any] | None:
        cart = self.cart
        if not cart.points:
            return None
        return {
            "points": cart.points,
            "value": cart.points_value,
            "held": cart.points_hold_id is not None,
        }

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
            "discounts": [applied.to_dict() for applied in self.discounts],
            "coupons": [
                {
                    "coupon_id": c.coupon_id,
                    "campaign_id": c.campaign_id,
                    "name": c.name,
                    "amount": self.coupon_amount(c),
                    "reserved": c.reservation_id is not None,
                }
                for c in self.coupons
            ],
            "item_count": self.item_count,
            "approval": self._approval_dict(),
            "member": self.member,
            "points": self._points_dict(),
            "due": self.due,
            "created_at": self.cart.created_at.isoformat(),
            "updated_at": self.cart.updated_at.isoformat(),
        }

    def _approval_dict(self) -> dict[str, Any]:
        cart = self.cart
        return {
            "required": self.needs_approval,
            "approved": self.approved,
            "approved_by": cart.approved_by,
            "approved_staff_id": cart.approved_staff_id,
            "approved_at": cart.approved_at.isoformat() if cart.approved_at else None,
            "lines": [
                {"line_id": line_id, "quantity": quantity}
                for line_id, quantity in (cart.approved_lines or {}).items()
            ],
        }


def approval_covers(cart: CartHead, lines: list[CartLineRow]) -> bool:
    """An attendant approved this cart, and saw every age-restricted line at least at its
    present quantity: raising a quantity or adding a restricted line is not covered."""
    if cart.approved_at is None or cart.approved_lines is None:
        return False
    return all(
        line.quantity <= cart.approved_lines.get(line.id, 0)
        for line in lines
        if line.age_restricted
    )


def _line_dict(line: CartLineRow, priced: PricedLine) -> dict[str, Any]:
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


def load_cart(tx: RawTransaction, principal: Principal, cart_id: str) -> CartHead:
    """The cart, if this caller may touch it: a kiosk or phone only its own, staff any."""
    row = tx.one(_CART_BY_ID, (cart_id,))
    if row is None or (not principal.is_staff and row["device_id"] != principal.device_id):
        # Another device's cart is answered as if it did not exist: a shopper's device must not
        # learn cart ids, nor pay for, change or replay another's.
        raise NotFound(f"no cart {cart_id}", code="unknown_cart", details={"cart_id": cart_id})
    return CartHead.of(row)


def require_open(cart: CartHead) -> None:
    if cart.status != "open":
        raise Conflict(
            "this cart is already checked out", code="cart_closed", details={"cart_id": cart.id}
        )


_MEMBER = "SELECT id, masked_phone, balance, tier FROM members WHERE id = ?"


class MemberChanged(Conflict):
    """The member a cart write names is no longer kept under that id (merged into another)."""


def view_of(
    tx: RawTransaction, cart: CartHead, shop: Shop, *, extra_coupons: tuple[OnCart, ...] = ()
) -> CartView:
    """The cart with its lines, priced by the pricing rules and the store's promotions, and its
    member. 409 ``member_changed`` when the cart names a member the store no longer keeps: a
    write that names a member looked up a moment ago and merged away since by the store's pull
    (the merge moves the carts that already named them), which the caller's transaction then
    drops."""
    lines = _lines_of(tx, cart)
    return _with_member(tx, _priced(cart, lines, _offers(tx, cart, shop, extra_coupons)))


def _with_member(tx: RawTransaction, view: CartView) -> CartView:
    """The view with the cart's member shown (409 ``member_changed``: see :func:`view_of`)."""
    cart = view.cart
    if cart.member_id is None:
        return view
    row = tx.one(_MEMBER, (cart.member_id,))
    if row is None:
        raise MemberChanged(
            "the member was merged into another since they were looked up: look them up again",
            code="member_changed",
            details={"member_id": cart.member_id},
        )
    member = {
        "id": row["id"],
        "masked_phone": row["masked_phone"],
        "balance": row["balance"],
        "tier": row["tier"],
        "offline": not cart.member_online,
    }
    return replace(view, member=member)


def set_member(
    db: Database,
    principal: Principal,
    cart_id: str,
    member_id: str | None,
    *,
    shop: Shop,
    now: datetime,
    online: bool = False,
    by_code: bool = False,
) -> tuple[CartView, str | None]:
    """Attach ``member_id`` to an open cart (None: detach), found at the cloud (``online``) or
    in the store's copy, by the member code their app shows (``by_code``) or by a phone number;
    the cart's ``updated_at`` moves, so a payment under way for the cart
    as it was is refused as changed. Points set for another member come off the cart: answers
    the view and the hold the caller gives back to the cloud, if any."""
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        same = member_id == cart.member_id
        changed = replace(
            cart,
            member_id=member_id,
            member_online=online,
            member_by_code=by_code and member_id is not None,
            updated_at=now,
            points=cart.points if same else 0,
            points_value=cart.points_value if same else 0,
            points_hold_id=cart.points_hold_id if same else None,
        )
        tx.run(
            "UPDATE carts SET member_id = ?, member_online = ?, member_by_code = ?, points = ?, "
            "points_value = ?, points_hold_id = ?, updated_at = ? WHERE id = ?",
            (
                member_id,
                online,
                changed.member_by_code,
                changed.points,
                changed.points_value,
                changed.points_hold_id,
                to_sql_time(now),
                cart.id,
            ),
        )
        view = view_of(tx, changed, shop)
        tx.commit()
    return view, None if same else cart.points_hold_id


def set_points(
    db: Database,
    principal: Principal,
    cart_id: str,
    *,
    points: int,
    value: int,
    hold_id: str | None,
    expected: CartHead,
    shop: Shop,
    now: datetime,
) -> CartView:
    """Set the points the member spends on the cart (0: none), as checked against ``expected``
    (the cart as it was when the points were checked and held): a cart whose member or points
    changed meanwhile is refused as changed."""
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        if (cart.member_id, cart.points_hold_id, cart.points) != (
            expected.member_id,
            expected.points_hold_id,
            expected.points,
        ):
            raise Conflict(
                "the cart's member or points changed meanwhile; try again",
                code="cart_changed",
                details={"cart_id": cart.id},
            )
        changed = replace(
            cart, points=points, points_value=value, points_hold_id=hold_id, updated_at=now
        )
        tx.run(
            "UPDATE carts SET points = ?, points_value = ?, points_hold_id = ?, updated_at = ? "
            "WHERE id = ?",
            (points, value, hold_id, to_sql_time(now), cart.id),
        )
        view = view_of(tx, changed, shop)
        tx.commit()
    return view


def _lines_of(tx: RawTransaction, cart: CartHead) -> list[CartLineRow]:
    return [CartLineRow.of(row) for row in tx.all(_LINES_OF, (cart.id,))]


@dataclass(frozen=True)
class _Offers:
    """What pricing a cart reads besides its lines: the promotions and the occasion."""

    book: PromotionBook
    occasion: Occasion | None
    coupons: tuple[OnCart, ...] = ()


def _offers(
    tx: RawTransaction, cart: CartHead, shop: Shop, extra_coupons: tuple[OnCart, ...] = ()
) -> _Offers:
    """Read in the cart's transaction, so that the pricing itself may run after it
    (``extra_coupons``: priced as if on the cart too, to see what one would take off)."""
    book = book_here(tx)
    coupons = coupons_on(tx, cart.id) + extra_coupons
    if not len(book) and not coupons:
        return _Offers(book, None)
    return _Offers(
        book,
        occasion_of(tx, shop, book, member_id=cart.member_id, at=cart.updated_at),
        coupons,
    )


def _priced(cart: CartHead, lines: list[CartLineRow], offers: _Offers) -> CartView:
    applied: tuple[Applied, ...] = ()
    discounts: Mapping[str, int] = {}
    if offers.occasion is not None and lines:
        pricing = reprice(
            [line.item() for line in lines],
            offers.book,
            offers.occasion,
            coupons=[c.offer for c in offers.coupons],
        )
        applied, discounts = pricing.applied, pricing.discounts
    priced, totals = price_lines(
        [
            LineInput(line.piece_price, line.quantity, line.tax_rate_bp, discounts.get(line.id, 0))
            for line in lines
        ]
    )
    return CartView(cart, lines, priced, totals, discounts=applied, coupons=offers.coupons)


def check_channel(principal: Principal, channel: str) -> None:
    """The channel a cart opens on, for this device: 422 or 403 when it may not."""
    if channel not in CHANNELS:
        raise Unprocessable("channel must be kiosk or scan_to_buy", details={"field": "channel"})
    if principal.role == "phone" and channel != "scan_to_buy":
        raise Forbidden("a phone opens scan_to_buy carts only", details={"channel": channel})


@dataclass(frozen=True)
class CartMember:
    """The member a cart opens for: their id, whether the cloud gave them (``online``) and
    whether the member code their app shows named them (``by_code``)."""

    member_id: str
    online: bool
    by_code: bool


def create_cart(
    db: Database,
    principal: Principal,
    *,
    channel: str,
    currency: str,
    now: datetime,
    retry: Retryable | None = None,
    member: CartMember | None = None,
) -> CartView:
    """Open an empty cart for this device, for ``member`` when one was named."""
    check_channel(principal, channel)
    cart = CartHead(
        id=new_id(),
        channel=channel,
        status="open",
        device_id=principal.device_id,
        currency=currency,
        approved_by=None,
        approved_at=None,
        approved_lines=None,
        created_at=now,
        updated_at=now,
        member_id=None if member is None else member.member_id,
        member_online=member is not None and member.online,
        member_by_code=member is not None and member.by_code,
    )
    stamp = to_sql_time(now)
    with db.raw_write(durable=False) as tx:
        tx.run(
            _INSERT_CART,
            (
                cart.id,
                channel,
                "open",
                cart.device_id,
                currency,
                None,
                None,
                None,
                stamp,
                stamp,
                cart.member_id,
                cart.member_online,
                cart.member_by_code,
            ),
        )
        # Nothing to price yet; 409 member_changed when merged away since the lookup.
        view = _with_member(tx, CartView(cart, [], [], CartTotals(0, 0, 0, 0)))
        remember(tx, retry, status=201, body=view.to_dict(), now=now)
        tx.commit()
    return view


def get_cart(db: Database, principal: Principal, cart_id: str, *, shop: Shop) -> CartView:
    with db.raw_read() as tx:
        return view_of(tx, load_cart(tx, principal, cart_id), shop)


def _touch(tx: RawTransaction, cart: CartHead, **changes: Any) -> CartHead:
    cart = replace(cart, **changes)
    approved_at = to_sql_time(cart.approved_at) if cart.approved_at else None
    covered = None if cart.approved_lines is None else json.dumps(cart.approved_lines)
    tx.run(
        _TOUCH,
        (
            to_sql_time(cart.updated_at),
            approved_at,
            cart.approved_by,
            covered,
            cart.approved_staff_id,
            cart.id,
        ),
    )
    return cart


def _settle(
    tx: RawTransaction, cart: CartHead, now: datetime
) -> tuple[CartHead, list[CartLineRow]]:
    """After a change to the lines: void an approval the lines outgrew, refuse a cart nobody
    could pay, stamp the cart. Returns the cart and its lines as they will be committed."""
    lines = _lines_of(tx, cart)
    changes: dict[str, Any] = {"updated_at": now}
    if cart.approved_at is not None and not approval_covers(cart, lines):
        # An approval covers what the attendant saw; more needs another look.
        changes.update(
            approved_at=None, approved_by=None, approved_lines=None, approved_staff_id=None
        )
    # Before discounts: what the cart can come to at most, without pricing it under the lock.
    gross = sum(line.piece_price * line.quantity for line in lines)
    if gross > MAX_AMOUNT:
        raise Unprocessable(
            f"the cart would come to more than {MAX_AMOUNT} minor units, which cannot be paid",
            code="cart_total_too_large",
            details={"subtotal": gross, "max": MAX_AMOUNT},
        )
    return _touch(tx, cart, **changes), lines


def add_line(
    db: Database,
    principal: Principal,
    cart_id: str,
    *,
    barcode: str,
    quantity: int | None,
    rules: ScanRules,
    shop: Shop,
    now: datetime,
    retry: Retryable | None = None,
) -> CartView:
    """Scan ``barcode`` into the cart; the same plain item scanned again adds to its line."""
    qty = 1 if quantity is None else quantity
    _check_quantity(qty)
    with db.raw_read() as tx:
        item = lookup_scan(tx, barcode, rules)
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        existing = None
        if item.weight_g is None:
            existing = tx.one(_SAME_ITEM, (cart.id, item.sku, item.piece_price))
        if existing is not None:
            _check_quantity(existing["quantity"] + qty)
            tx.run(
                "UPDATE cart_lines SET quantity = ? WHERE id = ?",
                (existing["quantity"] + qty, existing["id"]),
            )
        else:
            count, last = tx.one(_LINE_STATS, (cart.id,))
            if count >= MAX_LINES:
                raise Conflict(
                    f"a cart holds at most {MAX_LINES} lines", code="cart_full", details={}
                )
            tx.run(
                _INSERT_LINE,
                (
                    new_id(),
                    cart.id,
                    (last or 0) + 1,
                    item.sku,
                    item.name,
                    item.sold_by,
                    item.age_restricted,
                    item.barcode,
                    qty,
                    item.weight_g,
                    item.unit_price,
                    item.piece_price,
                    item.tax_rate_bp,
                ),
            )
        cart, lines = _settle(tx, cart, now)
        offers = _offers(tx, cart, shop)
        view = _answered(tx, retry, cart, lines, offers, now)
        tx.commit()
    # Priced after the commit, outside the write lock, unless a retry's answer had to be kept.
    return view or _priced(cart, lines, offers)


def _answered(
    tx: RawTransaction,
    retry: Retryable | None,
    cart: CartHead,
    lines: list[CartLineRow],
    offers: _Offers,
    now: datetime,
    status: int = 200,
) -> CartView | None:
    """With an Idempotency-Key, the answer priced now and kept with the write."""
    if retry is None:
        return None
    view = _priced(cart, lines, offers)
    remember(tx, retry, status=status, body=view.to_dict(), now=now)
    return view


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise Unprocessable(
            f"quantity must be between 1 and {MAX_QUANTITY}",
            code="quantity_out_of_range",
            details={"field": "quantity", "value": quantity},
        )


def _line_id(tx: RawTransaction, cart: CartHead, line_id: str) -> str:
    if tx.one("SELECT 1 FROM cart_lines WHERE id = ? AND cart_id = ?", (line_id, cart.id)) is None:
        raise NotFound(
            f"no line {line_id} in this cart", code="unknown_line", details={"line_id": line_id}
        )
    return line_id


def update_line(
    db: Database,
    principal: Principal,
    cart_id: str,
    line_id: str,
    *,
    quantity: int,
    shop: Shop,
    now: datetime,
) -> CartView:
    """Set a line's quantity."""
    _check_quantity(quantity)
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        tx.run(
            "UPDATE cart_lines SET quantity = ? WHERE id = ?",
            (quantity, _line_id(tx, cart, line_id)),
        )
        cart, lines = _settle(tx, cart, now)
        offers = _offers(tx, cart, shop)
        tx.commit()
    return _priced(cart, lines, offers)


def remove_line(
    db: Database, principal: Principal, cart_id: str, line_id: str, *, shop: Shop, now: datetime
) -> CartView:
    """Take a line out of the cart."""
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        tx.run("DELETE FROM cart_lines WHERE id = ?", (_line_id(tx, cart, line_id),))
        cart, lines = _settle(tx, cart, now)
        offers = _offers(tx, cart, shop)
        tx.commit()
    return _priced(cart, lines, offers)


def approve(
    db: Database,
    principal: Principal,
    cart_id: str,
    *,
    shop: Shop,
    now: datetime,
    retry: Retryable | None = None,
) -> CartView:
    """An attendant has checked the shopper's age: the age-restricted lines, at the quantities
    they have now, may be paid for. The approval records those quantities and who gave it."""
    if principal.role not in ATTENDANT_ROLES:
        raise Forbidden("only an attendant may approve", details={"role": principal.role})
    with db.raw_write(durable=False) as tx:
        cart = load_cart(tx, principal, cart_id)
        require_open(cart)
        lines = _lines_of(tx, cart)
        covered = {line.id: line.quantity for line in lines if line.age_restricted}
        if not covered:
            raise Conflict(
                "nothing in this cart needs an approval",
                code="nothing_to_approve",
                details={"cart_id": cart.id},
            )
        cart = _touch(
            tx,
            cart,
            updated_at=now,
            approved_at=now,
            approved_by=principal.device_id,
            approved_staff_id=principal.staff_id,
            approved_lines=covered,
        )
        offers = _offers(tx, cart, shop)
        view = _answered(tx, retry, cart, lines, offers, now)
        tx.commit()
    return view or _priced(cart, lines, offers)
