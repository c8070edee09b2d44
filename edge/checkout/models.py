"""Checkout rows: carts and their lines, sales, payments, returns and exit passes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base, Id, IdPk


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        CheckConstraint("channel IN ('kiosk', 'scan_to_buy')", name="channel_known"),
        CheckConstraint("status IN ('open', 'checked_out')", name="status_known"),
        # The attendant's board reads the open carts; paid ones drop out of the index.
        Index("ix_carts_open", "updated_at", sqlite_where=text("status = 'open'")),
    )

    id: Mapped[IdPk]
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    approved_at: Mapped[datetime | None]
    # The staff member signed in on the approving device, if one was. No foreign key: adding
    # one would make SQLite copy the table in the upgrade.
    approved_staff_id: Mapped[str | None] = mapped_column(String(16))
    # JSON {line id: quantity} of the age-restricted lines the attendant saw when approving.
    approved_lines: Mapped[str | None]
    # The member the shopper attached (by member code or phone number), if any. No foreign key:
    # adding one would make SQLite copy the table in the field's upgrade.
    member_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # The points the member spends on this cart, and the cloud's hold on them (None: set while
    # the cloud could not be reached, within the store's offline limits).
    # Whether the member's balance came from the cloud when they were attached (False: the
    # store's own copy, the cloud not answering in time).
    member_online: Mapped[bool] = mapped_column(default=False, server_default="0")
    # Whether the member was attached by the member code their own app shows (False: by a
    # phone number, which anyone may say): a shopper's device spends points only on the code.
    member_by_code: Mapped[bool] = mapped_column(default=False, server_default="0")
    points: Mapped[int] = mapped_column(default=0, server_default="0")
    points_value: Mapped[int] = mapped_column(default=0, server_default="0")  # minor units
    points_hold_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CartLine(Base):
    __tablename__ = "cart_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[IdPk]
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    name: Mapped[str] = mapped_column(String(200))
    sold_by: Mapped[str] = mapped_column(String(8))
    age_restricted: Mapped[bool]
    barcode: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    weight_g: Mapped[int | None]  # per piece, for weighed goods
    unit_price: Mapped[int]  # the catalog price: per piece, or per kg for weighed goods
    piece_price: Mapped[int]  # what one piece of this line costs (embedded price for weighed)
    tax_rate_bp: Mapped[int]


class Sale(Base):
    __tablename__ = "sales"

    id: Mapped[IdPk]
    number: Mapped[str] = mapped_column(String(32), unique=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id"), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    staff_id: Mapped[str | None] = mapped_column(String(16))  # signed in on the device, if any
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int]
    discount: Mapped[int]
    tax: Mapped[int]
    total: Mapped[int]
    paid: Mapped[int]
    change: Mapped[int]
    item_count: Mapped[int]
    # The member the sale was for, and the points it moved here (the cloud keeps the ledger).
    # Added columns without a foreign key, so a store's upgrade does not copy its sales table.
    member_id: Mapped[str | None] = mapped_column(String(36))
    points_earned: Mapped[int] = mapped_column(default=0, server_default="0")
    points_burned: Mapped[int] = mapped_column(default=0, server_default="0")
    points_balance_after: Mapped[int | None]
    # What the burned points paid (minor units): a tender of the sale, shown with its payments
    # (the payments table keeps what a provider or the drawer took), under the cloud's hold the
    # points came from (None: burned offline).
    points_value: Mapped[int] = mapped_column(default=0, server_default="0")
    points_hold_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(index=True)


class SaleLine(Base):
    __tablename__ = "sale_lines"

    id: Mapped[IdPk]
    sale_id: Mapped[str] = mapped_column(ForeignKey("sales.id"), index=True)
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    name: Mapped[str] = mapped_column(String(200))
    barcode: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    weight_g: Mapped[int | None]
    unit_price: Mapped[int]
    piece_price: Mapped[int]
    subtotal: Mapped[int]
    discount: Mapped[int]
    tax: Mapped[int]
    total: Mapped[int]
    tax_rate_bp: Mapped[int]
    returned_quantity: Mapped[int] = mapped_column(default=0)
    refunded_amount: Mapped[int] = mapped_column(default=0)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("method IN ('cash', 'card', 'wallet')", name="method_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[IdPk]
    sale_id: Mapped[str] = mapped_column(ForeignKey("sales.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    provider_ref: Mapped[str | None] = mapped_column(String(64))


class Return(Base):
    __tablename__ = "returns"

    id: Mapped[IdPk]
    sale_id: Mapped[str] = mapped_column(ForeignKey("sales.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    reason: Mapped[str] = mapped_column(String(200))
    refund_total: Mapped[int]
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    created_at: Mapped[datetime]


class ReturnLine(Base):
    __tablename__ = "return_lines"

    id: Mapped[IdPk]
    return_id: Mapped[str] = mapped_column(ForeignKey("returns.id"), index=True)
    sale_line_id: Mapped[str] = mapped_column(ForeignKey("sale_lines.id"), index=True)
    quantity: Mapped[int]
    amount: Mapped[int]


class ExitPass(Base):
    __tablename__ = "exit_passes"

    pass_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sale_id: Mapped[Id] = mapped_column(ForeignKey("sales.id"), unique=True)
    token: Mapped[str] = mapped_column(String(400))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(ForeignKey("devices.id"))
    audit: Mapped[bool | None]
