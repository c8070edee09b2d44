"""The members this store knows: those signed up here and those looked up at the cloud. Their
phone and name are sealed with the store's own keyring (``shared.pii``); a phone is found by the
store's own blind index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base, IdPk


class Member(Base):
    __tablename__ = "members"

    id: Mapped[IdPk]
    code: Mapped[str] = mapped_column(String(32), unique=True)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    # The id the sealed phone and name are bound to (None: ``id``): a merge at the cloud gives
    # a member kept here the surviving id without unsealing them.
    seal_id: Mapped[str | None] = mapped_column(String(36))
    phone_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # What every screen shows of the phone (``138****8000``), kept so a cart need not unseal it.
    masked_phone: Mapped[str] = mapped_column(String(24))
    tier: Mapped[str] = mapped_column(String(16), default="basic")
    # The balance the cloud last gave for the member, and when (0 and None for one signed up
    # here offline): what an offline burn is measured against.
    balance: Mapped[int] = mapped_column(default=0)
    balance_at: Mapped[datetime | None]
    # Signed up here while the cloud could not be reached: the cloud has not confirmed it yet
    # (and may fold it into a member the phone already had).
    provisional: Mapped[bool] = mapped_column(default=True)
    device_id: Mapped[str | None] = mapped_column(String(36))
    recruited_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MemberDevice(Base):
    """A shopper's phone the member proved themselves on (signed up there, or attached by the
    member code their own app shows): that phone may read the member's ledger through the
    store."""

    __tablename__ = "member_devices"

    member_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bound_at: Mapped[datetime]
