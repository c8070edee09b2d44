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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edge.auth.service import Principal
from edge.checkout.carts import CartView, load_cart, view_of
from edge.checkout.exit_pass import exit_pass_qr_svg, issue_exit_pass
from edge.checkout.models import Cart, ExitPass, Payment, Sale, SaleLine
from edge.checkout.payments import Authorization
from edge.checkout.receipts import Receipt, ReceiptLine, ReceiptPayment, render_text
from edge.context import StoreContext
from edge.errors import Conflict, NotFound, Unprocessable
from edge.inventory.service import apply_movement
from edge.outbox.service import next_value, record_event
from sync.ids import new_id

PAYMENT_METHODS = ("cash", "card", "wallet")
MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class PaymentRequest:
    method: str
    amount: int


@dataclass(frozen=True)
class CheckoutResult:
    sale: dict[str, Any]
    receipt: dict[str, Any]
    exit_pass: dict[str, str] | None
    replayed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"sale": self.sale, "receipt": self.receipt, "exit_pass": self.exit_pass}


def _validate_payments(payments: list[PaymentRequest], total: int) -> int:
    """Check the tender against the total; returns the change due (cash only)."""
    if not payments and total > 0:
        raise Unprocessable("payments are required", details={"field": "payments"})
    for i, p in enumerate(payments):
        if p.method not in PAYMENT_METHODS:
            raise Unprocessable(
                f"payment method must be one of {', '.join(PAYMENT_METHODS)}",
                details={"field": f"payments.{i}.method"},
            )
        if p.amount <= 0:
            raise Unprocessable(
                "payment amounts must be positive", details={"field": f"payments.{i}.amount"}
            )
    cash = sum(p.amount for p in payments if p.method == "cash")
    other = sum(p.amount for p in payments if p.method != "cash")
    if other > total:
        raise Unprocessable(
            "card and wallet payments exceed the total",
            code="payment_mismatch",
            details={"total": total, "non_cash": other},
        )
    if cash == 0 and other != total:
        raise Unprocessable(
            "card and wallet payments must add up to the total exactly",
            code="payment_mismatch",
            details={"total": total, "paid": other},
        )
    if cash + other < total:
        raise Unprocessable(
            "payments do not cover the total",
            code="payment_mismatch",
            details={"total": total, "paid": cash + other},
        )
    return cash + other - total


def _check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Unprocessable(
            "the Idempotency-Key header is required for checkout",
            code="idempotency_key_required",
            details={"header": "Idempotency-Key"},
        )
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise Unprocessable(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters",
            details={"header": "Idempotency-Key"},
        )
    return key


def _replay(ctx: StoreContext, session: Session, key: str, cart_id: str) -> CheckoutResult | None:
    sale = session.execute(select(Sale).where(Sale.idempotency_key == key)).scalar()
    if sale is None:
        return None
    if sale.cart_id != cart_id:
        raise Conflict(
            "this Idempotency-Key was used for another cart",
            code="idempotency_key_reused",
            details={"cart_id": cart_id, "sale_id": sale.id},
        )
    return _result(ctx, session, sale, replayed=True)


def checkout(
    ctx: StoreContext,
    principal: Principal,
    cart_id: str,
    *,
    payments: list[PaymentRequest],
    idempotency_key: str | None,
) -> CheckoutResult:
    """Pay for the cart and record the sale; see the module docstring for the order of work."""
    key = _check_key(idempotency_key)
    with ctx.db.read() as session:
        cart = load_cart(session, principal, cart_id)  # first: a phone sees only its own carts
        replay = _replay(ctx, session, key, cart_id)
        if replay is not None:
            return replay
        if cart.status != "open":
            raise Conflict(
                "this cart is already checked out", code="cart_closed", details={"cart_id": cart_id}
            )
        view = view_of(session, cart)
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
    change = _validate_payments(payments, view.totals.total)

    authorizations: list[Authorization | None] = []
    try:
        for p in payments:
            if p.method == "cash":
                authorizations.append(None)
            else:
                authorizations.append(
                    ctx.payments.authorize(method=p.method, amount=p.amount, reference=key)
                )
        return _write_sale(ctx, principal, view, payments, authorizations, change, key)
    except BaseException:
        for auth in authorizations:
            if auth is not None:
                ctx.payments.void(auth)
        raise


def _write_sale(
    ctx: StoreContext,
    principal: Principal,
    view: CartView,
    payments: list[PaymentRequest],
    authorizations: list[Authorization | None],
    change: int,
    key: str,
) -> CheckoutResult:
    now = ctx.clock.now()
    try:
        with ctx.db.write() as uow:
            session = uow.session
            replay = _replay(ctx, session, key, view.cart.id)
            if replay is not None:
                # Another request with this key won the race; ours must not charge twice.
                for auth in authorizations:
                    if auth is not None:
                        ctx.payments.void(auth)
                return replay
            cart = session.get(Cart, view.cart.id)
            assert cart is not None
            if cart.status != "open":
                raise Conflict(
                    "this cart is already checked out",
                    code="cart_closed",
                    details={"cart_id": cart.id},
                )
            if cart.updated_at != view.cart.updated_at:
                raise Conflict(
                    "the cart changed while it was being paid; review it and pay again",
                    code="cart_changed",
                    details={"cart_id": cart.id},
                )
            sale = _insert_sale(
                ctx, session, principal, view, payments, authorizations, change, key, now
            )
            cart.status = "checked_out"
            cart.updated_at = now
            session.flush()
            data = sale_dict(session, sale)
            exit_row = _exit_pass_row(session, sale)
            record_event(
                session,
                type="sale.completed",
                aggregate_id=sale.id,
                payload=_sale_event(data, ctx.store_id),
                now=now,
            )
            uow.commit()
        # Receipt text and the QR code are rendered after the write lock is released.
        return _result_of(ctx, data, exit_row, replayed=False)
    except IntegrityError:
        # The unique key on sales.idempotency_key caught a concurrent twin: answer with its sale.
        with ctx.db.read() as session:
            replay = _replay(ctx, session, key, view.cart.id)
        if replay is None:
            raise
        for auth in authorizations:
            if auth is not None:
                ctx.payments.void(auth)
        return replay


def _insert_sale(
    ctx: StoreContext,
    session: Session,
    principal: Principal,
    view: CartView,
    payments: list[PaymentRequest],
    authorizations: list[Authorization | None],
    change: int,
    key: str,
    now: datetime,
) -> Sale:
    number = next_value(session, "sale")
    sale = Sale(
        id=new_id(),
        number=f"{ctx.store_id}-{number:06d}",
        cart_id=view.cart.id,
        idempotency_key=key,
        channel=view.cart.channel,
        device_id=principal.device_id,
        approved_by=view.cart.approved_by,
        currency=view.cart.currency,
        subtotal=view.totals.subtotal,
        discount=view.totals.discount,
        tax=view.totals.tax,
        total=view.totals.total,
        paid=sum(p.amount for p in payments),
        change=change,
        item_count=view.item_count,
        created_at=now,
    )
    session.add(sale)
    session.flush()
    for position, (line, priced) in enumerate(zip(view.lines, view.priced, strict=True), 1):
        sale_line = SaleLine(
            id=new_id(),
            sale_id=sale.id,
            position=position,
            sku=line.sku,
            name=line.name,
            barcode=line.barcode,
            quantity=line.quantity,
            weight_g=line.weight_g,
            unit_price=line.unit_price,
            piece_price=line.piece_price,
            subtotal=priced.subtotal,
            discount=priced.discount,
            tax=priced.tax,
            total=priced.total,
            tax_rate_bp=line.tax_rate_bp,
            returned_quantity=0,
            refunded_amount=0,
        )
        session.add(sale_line)
        apply_movement(
            session,
            sku=line.sku,
            quantity=-stock_units(line.quantity, line.weight_g),
            kind="sale",
            reason="",
            now=now,
            ref_id=sale.id,
            device_id=principal.device_id,
            emit_event=False,  # the sale event carries its lines; HQ derives the movements
        )
    for p, auth in zip(payments, authorizations, strict=True):
        session.add(
            Payment(
                id=new_id(),
                sale_id=sale.id,
                method=p.method,
                amount=p.amount,
                provider_ref=auth.reference if auth else None,
            )
        )
    if sale.channel == "scan_to_buy":
        token, claims = issue_exit_pass(
            ctx.store_key,
            store_id=ctx.store_id,
            sale_id=sale.id,
            total=sale.total,
            item_count=sale.item_count,
            issued_at=now,
            ttl_s=ctx.settings.exit_pass.ttl_s,
        )
        session.add(
            ExitPass(
                pass_id=claims.pass_id,
                sale_id=sale.id,
                token=token,
                issued_at=now,
                expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
                used_at=None,
                used_by=None,
                audit=None,
            )
        )
    return sale


def stock_units(quantity: int, weight_g: int | None) -> int:
    """Stock units a line moves: pieces, or grams for weighed goods."""
    return quantity * weight_g if weight_g is not None else quantity


def _sale_event(sale: dict[str, Any], store_id: str) -> dict[str, Any]:
    return {"store_id": store_id, "sale": sale}


# --- reading sales ------------------------------------------------------------------------------


def sale_dict(session: Session, sale: Sale) -> dict[str, Any]:
    lines = session.execute(
        select(SaleLine).where(SaleLine.sale_id == sale.id).order_by(SaleLine.position)
    ).scalars()
    pays = session.execute(
        select(Payment).where(Payment.sale_id == sale.id).order_by(Payment.id)
    ).scalars()
    return {
        "id": sale.id,
        "number": sale.number,
        "cart_id": sale.cart_id,
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
        "approved_by": sale.approved_by,
        "created_at": sale.created_at.isoformat(),
        "lines": [
            {
                "id": line.id,
                "sku": line.sku,
                "name": line.name,
                "barcode": line.barcode,
                "quantity": line.quantity,
                "weight_g": line.weight_g,
                "unit_price": line.unit_price,
                "price": line.piece_price,
                "subtotal": line.subtotal,
                "discount": line.discount,
                "tax": line.tax,
                "total": line.total,
                "tax_rate_bp": line.tax_rate_bp,
                "returned_quantity": line.returned_quantity,
                "refunded_amount": line.refunded_amount,
            }
            for line in lines
        ],
        "payments": [
            {"method": p.method, "amount": p.amount, "reference": p.provider_ref} for p in pays
        ],
    }


def receipt_of(ctx: StoreContext, sale: dict[str, Any]) -> Receipt:
    """The receipt of a sale, for JSON and for the printer."""
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
            )
            for line in sale["lines"]
        ),
        subtotal=sale["subtotal"],
        discount=sale["discount"],
        tax=sale["tax"],
        total=sale["total"],
        payments=tuple(ReceiptPayment(p["method"], p["amount"]) for p in sale["payments"]),
        change=sale["change"],
    )


def receipt_dict(ctx: StoreContext, sale: dict[str, Any]) -> dict[str, Any]:
    receipt = receipt_of(ctx, sale)
    out = receipt.to_dict()
    out["text"] = render_text(receipt, 48)
    return out


def _exit_pass_row(session: Session, sale: Sale) -> ExitPass | None:
    if sale.channel != "scan_to_buy":
        return None
    return session.execute(select(ExitPass).where(ExitPass.sale_id == sale.id)).scalar_one()


def _result_of(
    ctx: StoreContext, data: dict[str, Any], row: ExitPass | None, *, replayed: bool
) -> CheckoutResult:
    exit_pass = None
    if row is not None:
        exit_pass = {
            "token": row.token,
            "qr_svg": exit_pass_qr_svg(row.token),
            "expires_at": row.expires_at.isoformat(),
        }
    return CheckoutResult(data, receipt_dict(ctx, data), exit_pass, replayed)


def _result(ctx: StoreContext, session: Session, sale: Sale, *, replayed: bool) -> CheckoutResult:
    return _result_of(
        ctx, sale_dict(session, sale), _exit_pass_row(session, sale), replayed=replayed
    )


def get_sale(ctx: StoreContext, principal: Principal, sale_id: str) -> dict[str, Any]:
    """A sale with its lines and payments; devices see their own sales, staff see all."""
    with ctx.db.read() as session:
        sale = session.get(Sale, sale_id)
        if sale is None or (not principal.is_staff and sale.device_id != principal.device_id):
            raise NotFound(f"no sale {sale_id}", code="unknown_sale", details={"sale_id": sale_id})
        return sale_dict(session, sale)
