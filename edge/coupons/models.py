"""The store's rows for coupons: the campaigns pulled from the cloud, this store's quotas of the
public ones, the coupons on open carts, and the coupons each sale redeemed (what the store has
seen used, offline included)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base


class StoreCampaign(Base):
    """A campaign as the cloud's ``coupon_campaigns`` feed last carried it (the JSON of
    :class:`sync.contract.CampaignItem`); a withdrawn one stays, inactive, so that its coupons
    are refused saying so."""

    __tablename__ = "coupon_campaigns"

    __table_args__ = (Index("ix_coupon_campaigns_public_code", "public_code"),)

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    doc: Mapped[str] = mapped_column(Text)
    active: Mapped[bool]
    updated_at: Mapped[datetime]
    # A public campaign's code as the store reads a typed one (coupon_codes.normalise).
    public_code: Mapped[str | None] = mapped_column(String(16))


class StoreCouponQuota(Base):
    """This store's quota of a public campaign, as its ``coupon_quotas`` feed last carried it:
    the redemptions of the campaign's code it may accept in all."""

    __tablename__ = "coupon_quotas"

    campaign_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    quota: Mapped[int]
    updated_at: Mapped[datetime]


class CartCoupon(Base):
    """A coupon on an open cart: its code as scanned (or as the cloud gave it for a typed id),
    and the cloud's reservation (None: accepted offline)."""

    __tablename__ = "cart_coupons"
    __table_args__ = (Index("uq_cart_coupons_campaign", "cart_id", "campaign_id", unique=True),)

    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id"), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(48))
    code: Mapped[str] = mapped_column(String(160))
    reservation_id: Mapped[str | None] = mapped_column(String(36))
    added_at: Mapped[datetime]


class SaleCoupon(Base):
    """A coupon a sale redeemed and what it took off; ``restored_by`` the return that gave it
    back. A coupon with a row not given back is used, as far as this store knows."""

    __tablename__ = "sale_coupons"
    __table_args__ = (
        Index("ix_sale_coupons_coupon", "coupon_id"),
        # A public code's quota and a member's uses here count a campaign's redemptions.
        Index("ix_sale_coupons_campaign", "campaign_id"),
    )

    sale_id: Mapped[str] = mapped_column(ForeignKey("sales.id"), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(48))
    amount: Mapped[int]
    reservation_id: Mapped[str | None] = mapped_column(String(36))
    restored_by: Mapped[str | None] = mapped_column(String(36))
