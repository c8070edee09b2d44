"""Checkout: turn an open cart into a paid sale, exactly once per idempotency key.

The order of work matters:

1. read the cart and check it can be paid (open, approved if it must be, payments add up);
2. authorise card and wallet payments with the provider, outside any database transaction;
3. in one write transaction: sale number, sale and lines, payments, stock movements, the exit
   pass and the outbox event; the cart closes in the same transaction.

If step 3 fails, the authorisations are voided. A retry with the same key returns the first
sale; the key reused on another cart is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.auth.service import Principal
from edge.checkout import payment_intents
from edge.checkout.carts import CartHead, CartView, load_cart, view_of
from edge.checkout.exit_pass import issue_exit_pass
from edge.checkout.models import Sale
from edge.checkout.payment_rules import PaymentRequest, change_due
from edge.checkout.payments import Authorization
from edge.checkout.sale_lines import INSERT_SALE_LINE, line_rows, stock_units
from edge.checkout.sale_points import POINTS_TENDER, member_points, points_tender
from edge.checkout.sale_reads import CheckoutResult, ExitPassInfo, result_of, stored_result
from edge.context import StoreContext
from edge.counters import next_value
from edge.coupons.service import record_sale_coupons
from edge.db import RawTransaction, from_sql_time, to_sql_time
from edge.errors import Conflict
from edge.idempotency import Retryable, check_key, remember
from edge.inventory.service import apply_movement
from edge.members.earning import EarningLine, points_earned, rules_here
from edge.outbox.service import record_event
from edge.pricing.store_promotions import record_discounts
from shared.faults import fault_point
from shared.ids import new_id
from sync.contract import SaleCompleted, SaleDoc

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class _Written:
    """What :func:`_write_sale` did: wrote ``sale`` (with its exit pass), or found that another
    request with the same key had written ``replayed_sale_id`` first."""

    sale: dict[str, Any] | None = None
    exit_pass: ExitPassInfo | None = None
    replayed_sale_id: str | None = None


def _check_key(key: str | None) -> str:
    checked = check_key(key, required=True)
    assert checked is not None
    return checked


def _replayed_sale_id(tx: RawTransaction, key: str, cart_id: str) -> str | None:
    """The sale already made with this key, if any; the key on another cart is refused."""
    row = tx.one("SELECT id, cart_id FROM sales WHERE idempotency_key = ?", (key,))
    if row is None:
        return None
    if row["cart_id"] != cart_id:
        raise Conflict(
            "this Idempotency-Key was used for another cart",
            code="idempotency_key_reused",
            details={"cart_id": cart_id, "sale_id": row["id"]},
        )
    return str(row["id"])


def replay(ctx: StoreContext, sale_id: str) -> dict[str, Any]:
    """The checkout answer of a sale already made: what a retry of its checkout gets."""
    return _replay(ctx, sale_id).to_dict()


def _replay(ctx: StoreContext, sale_id: str) -> CheckoutResult:
    with ctx.db.read() as session:
        sale = session.get(Sale, sale_id)
        assert sale is not None
        return stored_result(ctx, session, sale, replayed=True)


def checkout(
    ctx: StoreContext,
    principal: Principal,
    cart_id: str,
    *,
    payments: list[PaymentRequest],
    idempotency_key: str | None,
    retry: Retryable | None = None,
) -> CheckoutResult:
    """Pay for the cart and record the sale; see the module docstring for the order of work."""
    key = _check_key(idempotency_key)
    with ctx.db.raw_read() as tx:
        cart = load_cart(tx, principal, cart_id)  # first: a phone sees only its own carts
        done = _replayed_sale_id(tx, key, cart_id)
        if done is None:
            if cart.status != "open":
                raise Conflict(
                    "this cart is already checked out",
                    code="cart_closed",
                    details={"cart_id": cart_id},
                )
            view = view_of(tx, cart, ctx.shop)
    if done is not None:
        return _replay(ctx, done)
    if not view.lines:
        raise Conflict("the cart is empty", code="cart_empty", details={"cart_id": cart_id})
    if view.needs_approval and not view.approved:
        raise Conflict(
            "age-restricted items need an attendant's approval before payment",
            code="approval_required",
            details={
                "cart_id": cart_id,
                "skus": sorted({line.sku for line in view.lines if line.age_restricted}),
            },
        )
    if view.cart.points_value > view.totals.total:
        raise Conflict(
            "the member's points pay more than the cart now costs; spend fewer points",
            code="points_exceed_total",
            details={"cart_id": cart_id, "total": view.totals.total, "points": view.cart.points},
        )
    change = change_due(payments, view.due)

    authorizations: list[Authorization | None] = []
    begun: list[payment_intents.Intent] = []
    try:
        for position, p in enumerate(payments):
            if p.method == "cash":
                authorizations.append(None)
                continue
            # Written down before the acquirer is asked: a crash from here on leaves a record,
            # and a retry asks again under the same reference (no second charge).
            intent, stale = payment_intents.begin(
                ctx.db,
                device_id=principal.device_id,
                key=key,
                cart_id=cart_id,
                position=position,
                method=p.method,
                amount=p.amount,
                now=ctx.clock.now(),
            )
            begun.append(intent)
            payment_intents.release(ctx.db, ctx.payments, stale, ctx.clock.now())
            with ctx.gate.stepped_out():  # a terminal takes its time; let others work
                authorized = ctx.payments.authorize(
                    method=p.method, amount=p.amount, reference=intent.id
                )
            fault_point("edge.checkout.after_authorize")
            authorizations.append(authorized)
        written = _write_sale(
            ctx,
            principal,
            view,
            payments,
            authorizations,
            change,
            key,
            retry,
            [intent.id for intent in begun],
        )
    except BaseException:
        # Whatever the acquirer holds under these intents is released (a declined or timed-out
        # one holds nothing, and is closed all the same).
        payment_intents.release(ctx.db, ctx.payments, begun, ctx.clock.now())
        raise
    if written.replayed_sale_id is not None:
        # Another request with this key won the race: ours must not charge twice.
        payment_intents.release(ctx.db, ctx.payments, begun, ctx.clock.now())
        return _replay(ctx, written.replayed_sale_id)
    assert written.sale is not None
    # A card payment this key left open (a retry paid in cash, or with fewer cards) is released.
    payment_intents.release_leftovers(
        ctx.db, ctx.payments, device_id=principal.device_id, key=key, now=ctx.clock.now()
    )
    # Receipt text and the QR code are rendered after the write lock is released.
    return result_of(ctx, written.sale, written.exit_pass, replayed=False)


_INSERT_SALE = (
    "INSERT INTO sales (id, number, cart_id, idempotency_key, channel, device_id, approved_by, "
    "currency, subtotal, discount, tax, total, paid, change, item_count, created_at, "
    "member_id, points_earned, points_burned, points_balance_after, points_value, "
    "points_hold_id, staff_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The member's points on their balance here, in the sale's transaction.
_MOVED = "UPDATE members SET balance = balance + ?, updated_at = ? WHERE id = ? RETURNING balance"
_INSERT_PAYMENT = (
    "INSERT INTO payments (id, sale_id, method, amount, provider_ref) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_EXIT = (
    "INSERT INTO exit_passes (pass_id, sale_id, token, issued_at, expires_at, used_at, used_by, "
    "audit) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)"
)


def _write_sale(
    ctx: StoreContext,
    principal: Principal,
    view: CartView,
    payments: list[PaymentRequest],
    authorizations: list[Authorization | None],
    change: int,
    key: str,
    retry: Retryable | None = None,
    intent_ids: list[str] | None = None,
) -> _Written:
    """Write the sale in one transaction: the new sale, or the id of the sale this key made.

    Everything that can be prepared without the lock (ids, the sale's shape, the exit pass
    signature) is prepared first; the transaction itself is a short run of plain inserts.
    """
    now = ctx.clock.now()
    stamp = to_sql_time(now)
    cart = view.cart
    sale = _sale_shape(view, principal, payments, authorizations, change, now)
    points_per_unit = ctx.settings.members.points_per_unit
    exit_pass: ExitPassInfo | None = None
    claims = None
    if cart.channel == "scan_to_buy":
        token, claims = issue_exit_pass(
            ctx.store_key,
            store_id=ctx.store_id,
            sale_id=sale["id"],
            total=sale["total"],
            item_count=sale["item_count"],
            issued_at=now,
            ttl_s=ctx.settings.exit_pass.ttl_s,
        )
        exit_pass = (token, datetime.fromtimestamp(claims.expires_at, UTC))
    with ctx.db.raw_write() as tx:
        done = _replayed_sale_id(tx, key, cart.id)
        if done is not None:
            return _Written(replayed_sale_id=done)
        row = tx.one("SELECT status, updated_at FROM carts WHERE id = ?", (cart.id,))
        if row["status"] != "open":
            raise Conflict(
                "this cart is already checked out", code="cart_closed", details={"cart_id": cart.id}
            )
        if from_sql_time(row["updated_at"]) != cart.updated_at:
            raise Conflict(
                "the cart changed while it was being paid; review it and pay again",
                code="cart_changed",
                details={"cart_id": cart.id},
            )
        sale["number"] = f"{ctx.store_id}-{next_value(tx, 'sale'):06d}"
        if cart.member_id is not None:
            _record_points(tx, sale, cart, points_per_unit, stamp)
        points = sale["points"] or {"earned": 0, "burned": 0, "balance_after": None}
        tx.run(
            _INSERT_SALE,
            (
                sale["id"],
                sale["number"],
                cart.id,
                key,
                cart.channel,
                principal.device_id,
                cart.approved_by,
                cart.currency,
                sale["subtotal"],
                sale["discount"],
                sale["tax"],
                sale["total"],
                sale["paid"],
                change,
                sale["item_count"],
                stamp,
                cart.member_id,
                points["earned"],
                points["burned"],
                points["balance_after"],
                cart.points_value if points["burned"] else 0,
                cart.points_hold_id if points["burned"] else None,
                principal.staff_id,
            ),
        )
        tx.cur.executemany(INSERT_SALE_LINE, line_rows(sale["id"], sale["lines"]))
        record_discounts(
            tx,
            sale["id"],
            cart.member_id,
            sale["discounts"],
            [applied.pieces for applied in view.discounts],
        )
        record_sale_coupons(tx, sale["id"], sale["coupons"])
        for line in sale["lines"]:
            apply_movement(
                tx,
                sku=line["sku"],
                quantity=-stock_units(line["quantity"], line["weight_g"]),
                kind="sale",
                reason="",
                now=now,
                ref_id=sale["id"],
                device_id=principal.device_id,
                emit_event=False,  # the sale event carries its lines; HQ derives the movements
            )
        tx.cur.executemany(
            _INSERT_PAYMENT,
            [
                (new_id(), sale["id"], p["method"], p["amount"], p["reference"])
                for p in sale["payments"]
                if p["method"] != POINTS_TENDER  # kept on the sale's own row
            ],
        )
        if exit_pass is not None and claims is not None:
            tx.run(
                _INSERT_EXIT,
                (claims.pass_id, sale["id"], exit_pass[0], stamp, to_sql_time(exit_pass[1])),
            )
        record_event(tx, _sale_event(sale, ctx.store_id), now=now)
        remember(tx, retry, status=201, resource_id=sale["id"], now=now)
        payment_intents.capture(tx, intent_ids or [], sale["id"], now)
        tx.run(
            "UPDATE carts SET status = 'checked_out', updated_at = ? WHERE id = ?",
            (stamp, cart.id),
        )
        tx.commit()
    fault_point("edge.sale.after_commit")  # paid and on disk, the device not yet answered
    return _Written(sale=sale, exit_pass=exit_pass)


def _sale_shape(
    view: CartView,
    principal: Principal,
    payments: list[PaymentRequest],
    authorizations: list[Authorization | None],
    change: int,
    now: datetime,
) -> dict[str, Any]:
    """The sale as :func:`~edge.checkout.sale_reads.sale_dict` reads it back, built before the
    write (its number is drawn inside the write transaction).

    The line dicts have the keys of :data:`~edge.checkout.sale_lines.FIELDS`, in that order.
    """
    line_ids = {line.id: new_id() for line in view.lines}  # cart line -> sale line
    return {
        "id": new_id(),
        "number": "",
        "cart_id": view.cart.id,
        "channel": view.cart.channel,
        "currency": view.cart.currency,
        "subtotal": view.totals.subtotal,
        "discount": view.totals.discount,
        "tax": view.totals.tax,
        "total": view.totals.total,
        "paid": sum(p.amount for p in payments) + view.cart.points_value,
        "change": change,
        "item_count": view.item_count,
        "device_id": principal.device_id,
        "approved_by": view.cart.approved_by,
        "staff_id": principal.staff_id,
        "created_at": now.isoformat(),
        "lines": [
            {
                "id": line_ids[line.id],
                "sku": line.sku,
                "name": line.name,
                "barcode": line.barcode,
                "quantity": line.quantity,
                "weight_g": line.weight_g,
                "unit_price": line.unit_price,
                "price": line.piece_price,
                "subtotal": priced.subtotal,
                "discount": priced.discount,
                "tax": priced.tax,
                "total": priced.total,
                "tax_rate_bp": line.tax_rate_bp,
                "returned_quantity": 0,
                "refunded_amount": 0,
            }
            for line, priced in zip(view.lines, view.priced, strict=True)
        ],
        "discounts": [
            {
                **applied.to_dict(),
                "lines": [
                    {"line_id": line_ids[line_id], "amount": amount}
                    for line_id, amount in applied.lines
                ],
            }
            for applied in view.discounts
        ],
        "payments": _points_tender(view)
        + [
            {"method": p.method, "amount": p.amount, "reference": auth.reference if auth else None}
            for p, auth in zip(payments, authorizations, strict=True)
        ],
        "coupons": [
            {
                "coupon_id": c.coupon_id,
                "campaign_id": c.campaign_id,
                "amount": view.coupon_amount(c),
                "reservation_id": c.reservation_id,
            }
            for c in view.coupons
            if view.coupon_amount(c) > 0  # a coupon that took nothing off is not used
        ],
        "member": None,
        "points": None,
    }


def _points_tender(view: CartView) -> list[dict[str, Any]]:
    """The member's points as a tender of the sale: what they paid, under the cloud's hold."""
    cart = view.cart
    if not cart.points_value:
        return []
    return points_tender(cart.points_value, cart.points_hold_id)


_MEMBER_TIER = "SELECT tier FROM members WHERE id = ?"


def _record_points(
    tx: RawTransaction, sale: dict[str, Any], cart: CartHead, per_unit: int, stamp: str
) -> None:
    """The points the sale moves for its member, on their balance here and in the sale (written
    with it): the points spent on the cart, and the points earned by the chain's earn rules
    (:mod:`edge.members.earning`; points do not earn points). The cloud's ledger gets them by
    the sale's event, the burn under the cart's hold when there is one."""
    assert cart.member_id is not None
    tier_row = tx.one(_MEMBER_TIER, (cart.member_id,))
    lines = sale["lines"]
    skus = sorted({line["sku"] for line in lines})
    categories = dict(
        tx.all(
            f"SELECT sku, category FROM products WHERE sku IN ({', '.join('?' * len(skus))})",
            tuple(skus),
        )
    )
    earned = points_earned(
        [
            EarningLine(
                sku=line["sku"],
                category=categories.get(line["sku"]) or "",
                total=line["total"],
                pieces=line["quantity"] if line["weight_g"] is None else 1,
            )
            for line in lines
        ],
        points_value=cart.points_value,
        tier="basic" if tier_row is None else str(tier_row[0]),
        rules=rules_here(tx, points_per_unit=per_unit),
    )
    burned = cart.points
    balance = tx.one(_MOVED, (earned - burned, stamp, cart.member_id))["balance"]
    sale["member"] = member_points(
        cart.member_id,
        earned=earned,
        burned=burned,
        spend=sale["total"],
        hold_id=cart.points_hold_id if burned else None,
    )
    sale["points"] = {"earned": earned, "burned": burned, "balance_after": balance}


def _sale_event(sale: dict[str, Any], store_id: str) -> SaleCompleted:
    return SaleCompleted(store_id=store_id, sale=SaleDoc.model_validate(sale))
