"""Device rows: one per paired kiosk, phone, handheld, tablet, manager login or exit gate; the
short pairing codes a manager makes for a new device; and the store's scan-and-go QR."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base, IdPk

ROLES = ("kiosk", "phone", "handheld", "tablet", "manager", "exit")


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        CheckConstraint(
            "role IN ('kiosk', 'phone', 'handheld', 'tablet', 'manager', 'exit')", name="role_known"
        ),
    )

    id: Mapped[IdPk]
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # None: until revoked
    revoked_at: Mapped[datetime | None]


class PairingCode(Base):
    """A six-digit code a manager made for one new device of ``role``: it works once, until
    ``expires_at``, unless too many wrong codes were tried meanwhile (``voided_at``). Only its
    SHA-256 is kept."""

    __tablename__ = "pairing_codes"
    __table_args__ = (
        CheckConstraint(
            "role IN ('kiosk', 'phone', 'handheld', 'tablet', 'exit')", name="role_pairable"
        ),
        Index("ix_pairing_codes_code_hash", "code_hash"),
    )

    id: Mapped[IdPk]
    code_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    failures: Mapped[int] = mapped_column(default=0)  # wrong codes tried while it was live
    used_at: Mapped[datetime | None]
    device_id: Mapped[str | None] = mapped_column(String(36))  # the device it paired
    voided_at: Mapped[datetime | None]


class StoreQr(Base):
    """The store's scan-and-go QR (on the door's poster): a shopper's phone that opens it joins
    as a phone device. One is live at a time; making a new one retires the old poster. Only
    its token's SHA-256 is kept."""

    __tablename__ = "store_qr_codes"

    id: Mapped[IdPk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Staff(Base):
    """A member of the store's staff, who signs in on a tablet or handheld with their staff id
    and PIN. Only the PIN's scrypt hash is kept; ``failures`` wrong PINs in a row lock the
    account until ``locked_until``."""

    __tablename__ = "staff"
    __table_args__ = (CheckConstraint("role IN ('attendant', 'manager')", name="role_known"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the staff number
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    pin_hash: Mapped[str] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class StaffSession(Base):
    """A staff member signed in on one device, until ``expires_at`` or sign-out; only the
    session token's SHA-256 is kept."""

    __tablename__ = "staff_sessions"

    id: Mapped[IdPk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
