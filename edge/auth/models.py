"""Device rows: one per paired kiosk, phone, handheld, tablet, manager login or exit gate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
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
