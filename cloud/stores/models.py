"""Stores, their signing keys, enrollment codes and API tokens (HQ's and the channels')."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, StoreId

STORE_FORMATS = ("hypermarket", "supermarket", "convenience", "online")
#: ``hq``: HQ's API; ``channel``: the members API of another sales channel (an online shop, a
#: mini-program), the token's name being the channel's.
TOKEN_ROLES = ("hq", "channel")


class Store(Base):
    """A store of the chain, as HQ knows it; its settings reach the store by pull."""

    __tablename__ = "stores"
    __table_args__ = (
        CheckConstraint(
            "format IN ('hypermarket', 'supermarket', 'convenience', 'online')",
            name="format_known",
        ),
        CheckConstraint("area_m2 IS NULL OR area_m2 >= 0", name="area_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))
    area_m2: Mapped[int | None]
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    enrolled_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def settings_dict(self) -> dict[str, Any]:
        """The store's settings, as HQ lists them and the store_settings feed carries them."""
        return {
            "id": self.id,
            "name": self.name,
            "format": self.format,
            "area_m2": self.area_m2,
            "timezone": self.timezone,
            "currency": self.currency,
            "updated_at": self.updated_at.isoformat(),
        }


class StoreKey(Base):
    """A store's Ed25519 public key, registered at enrollment; requests are checked with it."""

    __tablename__ = "store_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[StoreId] = mapped_column(ForeignKey("stores.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)  # base64 of 32 raw bytes
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class EnrollmentCode(Base):
    """A one-time, expiring code that lets one store register its key. Only its hash is kept."""

    __tablename__ = "enrollment_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[StoreId] = mapped_column(ForeignKey("stores.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for HQ's API or a channel's. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("role IN ('hq', 'channel')", name="role_known"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
