"""Wire schemas of the checkout routes: requests validate with these, OpenAPI shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from edge.api_contract import RequestBody, free_text

Quantity = Field(ge=1, le=9_999)


class ReceiptQuery(RequestBody):
    """``?format=text&width=48``: the receipt as printer text, 32 (58 mm) or 48 (80 mm) wide."""

    format: Literal["json", "text"] = "json"
    width: Literal["32", "48"] = "32"


class CreateCartIn(RequestBody):
    channel: Literal["kiosk", "scan_to_buy"]
    # The member the cart is for, as ``PUT /carts/{id}/member`` takes them (the code their
    # app shows, or their phone number): a shopper who shows it first opens the cart with it.
    member_code: str | None = Field(default=None, min_length=1, max_length=32)


class AddLineIn(RequestBody):
    barcode: str = Field(min_length=1, max_length=128)
    quantity: int | None = Field(default=None, ge=1, le=9_999)


class UpdateLineIn(RequestBody):
    quantity: int = Field(ge=1, le=9_999)


class ApproveIn(RequestBody):
    note: str | None = free_text(default=None, max_length=200)


class PaymentIn(RequestBody):
    method: Literal["cash", "card", "wallet"]
    amount: int = Field(ge=1, le=1_000_000_000)


class CheckoutIn(RequestBody):
    payments: list[PaymentIn] = Field(min_length=1, max_length=10)


class ExitPassIn(RequestBody):
    token: str = Field(min_length=1, max_length=1000)


class ReturnLineIn(RequestBody):
    line_id: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=9_999)


class ReturnIn(RequestBody):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    reason: str = free_text(min_length=1, max_length=200)


class Totals(BaseModel):
    subtotal: int
    discount: int
    tax: int
    total: int


class CartLineOut(BaseModel):
    id: str
    sku: str
    name: str
    barcode: str
    sold_by: Literal["each", "kg", "variable"]
    quantity: int
    weight_g: int | None
    unit_price: int
    price: int
    tax_rate_bp: int
    age_restricted: bool
    subtotal: int
    discount: int
    tax: int
    total: int


class ApprovedLine(BaseModel):
    line_id: str
    quantity: int


class Approval(BaseModel):
    required: bool
    approved: bool
    approved_by: str | None = None  # the staff device or login that approved
    approved_staff_id: str | None = None  # the staff member signed in on it, if one was
    approved_at: str | None = None
    lines: list[ApprovedLine] = []  # the restricted lines and quantities the approval covers


class CartMember(BaseModel):
    """The member attached to a cart, as this store knows them."""

    id: str
    masked_phone: str
    balance: int  # the store's last word from the cloud (``offline``), plus what it earned here
    tier: str
    offline: bool


class CartPoints(BaseModel):
    """Points the cart's member spends on it: they pay ``value`` of the total."""

    points: int
    value: int  # minor units
    held: bool  # the cloud holds them for this cart (false: set offline, within the limits)


class DiscountLineOut(BaseModel):
    line_id: str
    amount: int  # the line's share of the offer, in its discount


class DiscountOut(BaseModel):
    """One offer a cart or sale takes, by its rule's name, and the lines it touches."""

    promotion_id: str
    name: str
    stage: Literal["line", "basket", "coupon"]  # the order they run in
    amount: int
    lines: list[DiscountLineOut]


class CartCouponOut(BaseModel):
    coupon_id: str
    campaign_id: str
    name: str
    amount: int  # what it takes off the cart as now priced (among the discounts too)
    reserved: bool  # the cloud reserved it for this cart (false: accepted offline)


class SaleCouponOut(BaseModel):
    coupon_id: str
    campaign_id: str
    amount: int
    reservation_id: str | None
    restored: bool = False  # a return gave it back


class CartOut(BaseModel):
    id: str
    channel: Literal["kiosk", "scan_to_buy"]
    status: Literal["open", "checked_out"]
    currency: str
    lines: list[CartLineOut]
    totals: Totals
    discounts: list[DiscountOut] = []  # the offers taken, in the order they ran
    coupons: list[CartCouponOut] = []
    item_count: int
    approval: Approval
    member: CartMember | None = None
    points: CartPoints | None = None  # the member's points spending on this cart
    due: int  # what is left to pay once the points have paid their part
    created_at: str
    updated_at: str


class SaleLineOut(BaseModel):
    id: str
    sku: str
    name: str
    barcode: str
    quantity: int
    weight_g: int | None
    unit_price: int
    price: int
    subtotal: int
    discount: int
    tax: int
    total: int
    tax_rate_bp: int
    returned_quantity: int
    refunded_amount: int


class PaymentOut(BaseModel):
    method: str
    amount: int
    reference: str | None


class SaleMemberOut(BaseModel):
    """The sale's member and the points it moved, as the sale event carries them."""

    id: str
    earned: int
    burned: int
    spend: int  # what the points were earned on: a return takes them back in proportion
    hold_id: str | None
    offline: bool  # no points were held at the cloud for this sale


class PointsOut(BaseModel):
    earned: int
    burned: int
    balance_after: int | None  # the member's balance at this store after the sale


class SaleOut(BaseModel):
    id: str
    number: str
    cart_id: str
    channel: str
    currency: str
    subtotal: int
    discount: int
    tax: int
    total: int
    paid: int
    change: int
    item_count: int
    device_id: str
    approved_by: str | None
    staff_id: str | None = None  # the staff member signed in on the selling device, if any
    created_at: str
    lines: list[SaleLineOut]
    payments: list[PaymentOut]
    discounts: list[DiscountOut] = []  # the offers the sale took, in the order they ran
    coupons: list[SaleCouponOut] = []  # the coupons it redeemed
    member: SaleMemberOut | None = None
    points: PointsOut | None = None


class ExitPassOut(BaseModel):
    token: str
    qr_svg: str
    expires_at: str


class CheckoutOut(BaseModel):
    sale: SaleOut
    receipt: dict[str, object]
    exit_pass: ExitPassOut | None


class AuditItem(BaseModel):
    name: str
    quantity: int
    weight_g: int | None


class ExitVerifyOut(BaseModel):
    valid: bool
    sale_id: str | None
    audit: bool
    reason: str | None
    sale_number: str | None
    item_count: int | None
    total: int | None
    items: list[AuditItem] | None = None  # an audited exit: what to check in the bag


class ReturnLineOut(BaseModel):
    line_id: str
    quantity: int
    amount: int


class RefundOut(BaseModel):
    method: str
    amount: int


class ReturnOut(BaseModel):
    id: str
    sale_id: str
    reason: str
    refund_total: int
    created_at: str
    lines: list[ReturnLineOut]
    refunds: list[RefundOut] = []


class ReturnEnvelope(BaseModel):
    return_: ReturnOut = Field(alias="return")
