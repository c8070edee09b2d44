"""Projections of the stores' events. Each row names the event (store, seq) it came from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Uuid


class Sale(Base):
    __tablename__ = "sales"
    __table_args__ = (Index("ix_sales_store_seq", "store_id", "seq", unique=True),)

    id: Mapped[Uuid] = mapped_column(primary_key=True)
    store_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[int] = mapped_column(BigInteger)
    item_count: Mapped[int]
    device_id: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[str | None] = mapped_column(String(16))  # signed in on the device, if any
    payments: Mapped[str] = mapped_column(Text)  # JSON list of {method, amount, reference}
    created_at: Mapped[datetime]  # the store's clock: data, not order
    received_at: Mapped[datetime]  # the cloud's clock


class SaleLine(Base):
    __tablename__ = "sale_lines"

    id: Mapped[Uuid] = mapped_column(primary_key=True)
    sale_id: Mapped[Uuid] = mapped_column(ForeignKey("sales.id"), index=True)
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    barcode: Mapped[str] = mapped_column(String(128))  # a GS1 code may be long
    quantity: Mapped[int]
    weight_g: Mapped[int | None]
    unit_price: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[int] = mapped_column(BigInteger)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    tax_rate_bp: Mapped[int]


class Return(Base):
    __tablename__ = "returns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    sale_id: Mapped[str] = mapped_column(String(64), index=True)
    sale_number: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    refund_total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[str] = mapped_column(Text)  # JSON
    refunds: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime]
    received_at: Mapped[datetime]


class StockMovement(Base):
    __tablename__ = "stock_movements"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    ref_id: Mapped[str | None] = mapped_column(String(64))
    on_hand_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    received_at: Mapped[datetime]


class ExitPassUse(Base):
    __tablename__ = "exit_pass_uses"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    sale_id: Mapped[str] = mapped_column(String(64))
    audit: Mapped[bool]
    used_at: Mapped[datetime]
