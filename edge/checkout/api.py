"""HTTP routes of carts, checkout, sales, returns and the exit gate: parse, call, serialise."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from edge.api_contract import ApiBlueprint
from edge.auth.service import Principal
from edge.checkout import carts, exit_gate, returns, sale_reads, sale_receipts, sales
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.receipts import render_text
from edge.checkout.schemas import (
    AddLineIn,
    ApproveIn,
    CartOut,
    CheckoutIn,
    CheckoutOut,
    CreateCartIn,
    ExitPassIn,
    ExitVerifyOut,
    ReceiptQuery,
    ReturnEnvelope,
    ReturnIn,
    SaleOut,
    UpdateLineIn,
)
from edge.context import StoreContext
from edge.idempotency import Retryable
from edge.members.points import open_cart_for

api = ApiBlueprint("checkout", "/api/v1")
SHOPPERS = ("kiosk", "phone", "tablet", "manager")
ATTENDANTS = ("tablet", "manager")
STAFF = ("handheld", "tablet", "manager")


def _ctx() -> StoreContext:
    return current_app.extensions["aisle"]


@api.endpoint(
    "POST",
    "/carts",
    summary="Open a cart (for a member, when their code or phone number is given)",
    roles=SHOPPERS,
    connectivity="offline",
    body=CreateCartIn,
    response=CartOut,
    status=201,
    errors=(404, 409),
    description="With member_code, the member is found as PUT /carts/{id}/member finds them "
    "(the cloud first, within the store's short member timeout, else the store's own copy) "
    "and the cart opens with them attached; nothing opens when nobody has that code.",
    idempotency="optional",
    links={
        "ReadCart": ("checkout_get_cart", {"cart_id": "$response.body#/id"}),
        "ScanIntoCart": ("checkout_add_line", {"cart_id": "$response.body#/id"}),
        "ApproveCart": ("checkout_approve", {"cart_id": "$response.body#/id"}),
        "PayForCart": ("checkout_checkout", {"cart_id": "$response.body#/id"}),
    },
)
def create_cart(
    principal: Principal, body: CreateCartIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    if body.member_code is not None:
        return open_cart_for(
            ctx.db,
            ctx.members_keyring,
            ctx.member_cloud,
            principal,
            body.member_code,
            channel=body.channel,
            currency=ctx.currency,
            region=ctx.settings.members.default_region,
            now=ctx.clock.now(),
            retry=retry,
        ).to_dict()
    return carts.create_cart(
        ctx.db,
        principal,
        channel=body.channel,
        currency=ctx.currency,
        now=ctx.clock.now(),
        retry=retry,
    ).to_dict()


@api.endpoint(
    "GET",
    "/carts/<cart_id>",
    summary="Read a cart",
    roles=SHOPPERS,
    connectivity="offline",
    response=CartOut,
)
def get_cart(principal: Principal, cart_id: str) -> dict[str, Any]:
    return carts.get_cart(_ctx().db, principal, cart_id, shop=_ctx().shop).to_dict()


@api.endpoint(
    "POST",
    "/carts/<cart_id>/lines",
    summary="Scan an item into a cart",
    roles=SHOPPERS,
    connectivity="offline",
    body=AddLineIn,
    response=CartOut,
    errors=(409,),
    idempotency="optional",
    links={
        "ChangeLine": (
            "checkout_update_line",
            {"cart_id": "$response.body#/id", "line_id": "$response.body#/lines/0/id"},
        ),
        "RemoveLine": (
            "checkout_remove_line",
            {"cart_id": "$response.body#/id", "line_id": "$response.body#/lines/0/id"},
        ),
        "PayForCart": ("checkout_checkout", {"cart_id": "$response.body#/id"}),
    },
)
def add_line(
    principal: Principal, cart_id: str, body: AddLineIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return carts.add_line(
        ctx.db,
        principal,
        cart_id,
        barcode=body.barcode,
        quantity=body.quantity,
        rules=ctx.scan_rules,
        shop=ctx.shop,
        now=ctx.clock.now(),
        retry=retry,
    ).to_dict()


@api.endpoint(
    "PATCH",
    "/carts/<cart_id>/lines/<line_id>",
    summary="Change a line's quantity",
    roles=SHOPPERS,
    connectivity="offline",
    body=UpdateLineIn,
    response=CartOut,
    errors=(409,),
)
def update_line(
    principal: Principal, cart_id: str, line_id: str, body: UpdateLineIn
) -> dict[str, Any]:
    ctx = _ctx()
    return carts.update_line(
        ctx.db,
        principal,
        cart_id,
        line_id,
        quantity=body.quantity,
        shop=ctx.shop,
        now=ctx.clock.now(),
    ).to_dict()


@api.endpoint(
    "DELETE",
    "/carts/<cart_id>/lines/<line_id>",
    summary="Remove a line",
    roles=SHOPPERS,
    connectivity="offline",
    response=CartOut,
    errors=(409,),
)
def remove_line(principal: Principal, cart_id: str, line_id: str) -> dict[str, Any]:
    ctx = _ctx()
    return carts.remove_line(
        ctx.db, principal, cart_id, line_id, shop=ctx.shop, now=ctx.clock.now()
    ).to_dict()


@api.endpoint(
    "POST",
    "/carts/<cart_id>/approvals",
    summary="Approve age-restricted items",
    roles=ATTENDANTS,
    connectivity="offline",
    body=ApproveIn,
    response=CartOut,
    errors=(409,),
    idempotency="optional",
)
def approve(
    principal: Principal, cart_id: str, body: ApproveIn, retry: Retryable | None
) -> dict[str, Any]:
    ctx = _ctx()
    return carts.approve(
        ctx.db, principal, cart_id, shop=ctx.shop, now=ctx.clock.now(), retry=retry
    ).to_dict()


@api.endpoint(
    "POST",
    "/carts/<cart_id>/checkout",
    summary="Pay for a cart",
    roles=SHOPPERS,
    connectivity="offline",
    body=CheckoutIn,
    response=CheckoutOut,
    status=201,
    errors=(402, 409),
    idempotency="required",
    replay=lambda sale_id: sales.replay(_ctx(), sale_id),
    links={
        "ReadSale": ("checkout_get_sale", {"sale_id": "$response.body#/sale/id"}),
        "PrintReceipt": ("checkout_get_receipt", {"sale_id": "$response.body#/sale/id"}),
        "ReturnItems": ("checkout_create_return", {"sale_id": "$response.body#/sale/id"}),
    },
    writes_events=True,
)
def checkout(
    principal: Principal, cart_id: str, body: CheckoutIn, retry: Retryable | None
) -> tuple[dict[str, Any], int]:
    assert retry is not None  # the key is required
    result = sales.checkout(
        _ctx(),
        principal,
        cart_id,
        payments=[PaymentRequest(p.method, p.amount) for p in body.payments],
        idempotency_key=retry.key,
        retry=retry,
    )
    return result.to_dict(), 201


@api.endpoint(
    "GET",
    "/sales/<sale_id>",
    summary="Read a sale",
    roles=(*SHOPPERS, "handheld"),
    connectivity="offline",
    response=SaleOut,
    description="Staff may name the sale by its number (on the receipt) instead of its id.",
)
def get_sale(principal: Principal, sale_id: str) -> dict[str, Any]:
    return sale_reads.get_sale(_ctx(), principal, sale_id)


@api.endpoint(
    "GET",
    "/sales/<sale_id>/receipt",
    summary="Print a sale's receipt",
    roles=(*SHOPPERS, "handheld"),
    connectivity="offline",
    query=ReceiptQuery,
    text_response=True,
)
def get_receipt(principal: Principal, sale_id: str, query: ReceiptQuery) -> Any:
    ctx = _ctx()
    sale = sale_reads.get_sale(ctx, principal, sale_id)
    if query.format == "text":
        receipt = sale_receipts.receipt_of(ctx, sale)
        return Response(render_text(receipt, int(query.width)), 200, mimetype="text/plain")
    return sale_receipts.receipt_dict(ctx, sale)


@api.endpoint(
    "POST",
    "/sales/<sale_id>/returns",
    summary="Refund returned items",
    roles=STAFF,
    connectivity="offline",
    body=ReturnIn,
    response=ReturnEnvelope,
    status=201,
    errors=(409,),
    idempotency="required",
    writes_events=True,
)
def create_return(
    principal: Principal, sale_id: str, body: ReturnIn, retry: Retryable | None
) -> tuple[dict[str, Any], int]:
    assert retry is not None  # the key is required
    result = returns.create_return(
        _ctx(),
        principal,
        sale_id,
        lines=[returns.ReturnRequestLine(line.line_id, line.quantity) for line in body.lines],
        reason=body.reason,
        idempotency_key=retry.key,
        retry=retry,
    )
    return {"return": result}, 201


@api.endpoint(
    "POST",
    "/exit-passes/verify",
    summary="Verify an exit pass at the door",
    roles=("exit", *STAFF),
    connectivity="offline",
    body=ExitPassIn,
    response=ExitVerifyOut,
    idempotency="optional",
    writes_events=True,
)
def verify_exit_pass(
    principal: Principal, body: ExitPassIn, retry: Retryable | None
) -> dict[str, Any]:
    return exit_gate.verify_at_exit(_ctx(), principal, body.token, retry=retry).to_dict()
