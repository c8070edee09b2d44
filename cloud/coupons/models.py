"""Campaigns, coupons, reservations and redemptions.

A **campaign** is HQ's (its document is :class:`sync.contract.CampaignItem`); a **coupon** is
one member's, with its signed code; a **reservation** is a store setting a coupon aside for a
cart while online (it lapses, so an abandoned cart frees the coupon); a **redemption** is a sale
that used a coupon, one row per (coupon, sale), appended by the sale's event whatever the
coupon's state: a coupon redeemed at two stores while offline is two rows, and a
reconciliation exception with the amount at risk, never a lost sale. A **quota** is one
store's share of a public campaign's cap.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, BigIntKey, Uuid

COUPON_STATUSES = ("issued", "redeemed")


class CouponCampaign(Base):
    __tablename__ = "coupon_campaigns"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    doc: Mapped[str] = mapped_column(Text)
    active: Mapped[bool]
    updated_at: Mapped[datetime]


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("status IN ('issued', 'redeemed')", name="status_known"),
        Index("ix_coupons_member", "member_id", "campaign_id"),
        Index("ix_coupons_campaign", "campaign_id"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(48))
    member_id: Mapped[Uuid]
    code: Mapped[str] = mapped_column(String(160))
    status: Mapped[str] = mapped_column(String(16))
    issued_via: Mapped[str] = mapped_column(String(16))  # hq, claim
    issued_by: Mapped[str | None] = mapped_column(String(64))  # the store of a claim
    issued_at: Mapped[datetime]


class CouponReservation(Base):
    __tablename__ = "coupon_reservations"
    __table_args__ = (
        CheckConstraint("status IN ('live', 'released', 'used')", name="status_known"),
        Index("ix_coupon_reservations_coupon", "coupon_id", "status"),
    )

    id: Mapped[Uuid] = mapped_column(primary_key=True)
    coupon_id: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[str] = mapped_column(String(48))
    store_id: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]


class CouponRedemption(Base):
    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        # One row per coupon and sale, however often the sale's event arrives.
        Index("uq_coupon_redemptions_sale", "coupon_id", "sale_id", unique=True),
        Index("ix_coupon_redemptions_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[str] = mapped_column(String(48))
    store_id: Mapped[str] = mapped_column(String(32))
    sale_id: Mapped[Uuid]
    amount: Mapped[int] = mapped_column(BigInteger)
    reservation_id: Mapped[Uuid | None]
    at: Mapped[datetime]
    restored_by: Mapped[str | None] = mapped_column(String(64))  # the return that gave it back


class CouponQuota(Base):
    """How many redemptions of a public campaign's code one store may accept (offline
    included). Only ever raised: a store offline may have used all of it."""

    __tablename__ = "coupon_quotas"
    __table_args__ = (CheckConstraint("quota >= 0", name="quota_not_negative"),)

    campaign_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
