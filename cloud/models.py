"""Imports every feature's rows so the metadata is complete (for migrations and checks)."""

from cloud.catalog.models import Barcode, Product, StorePrice
from cloud.changes.models import Change, FeedEpoch, FeedHorizon
from cloud.coupons.models import Coupon, CouponCampaign, CouponRedemption, CouponReservation
from cloud.ingest.models import (
    AppliedEvent,
    Divergence,
    Quarantined,
    RequestNonce,
    StoreRecovery,
    StoreSyncState,
)
from cloud.members.models import (
    ChannelRequest,
    Member,
    PointsAllocation,
    PointsEntry,
    PointsHold,
    PointsLot,
)
from cloud.promotions.models import Promotion
from cloud.reconciliation.models import ReconciliationException
from cloud.sales.models import ExitPassUse, Return, Sale, SaleLine, StockMovement
from cloud.stores.models import ApiToken, EnrollmentCode, Store, StoreKey

__all__ = [
    "ApiToken",
    "AppliedEvent",
    "Barcode",
    "Change",
    "ChannelRequest",
    "Coupon",
    "CouponCampaign",
    "CouponRedemption",
    "CouponReservation",
    "Divergence",
    "EnrollmentCode",
    "ExitPassUse",
    "FeedEpoch",
    "FeedHorizon",
    "Member",
    "PointsAllocation",
    "PointsEntry",
    "PointsHold",
    "PointsLot",
    "Product",
    "Promotion",
    "Quarantined",
    "ReconciliationException",
    "RequestNonce",
    "Return",
    "Sale",
    "SaleLine",
    "StockMovement",
    "Store",
    "StoreKey",
    "StorePrice",
    "StoreRecovery",
    "StoreSyncState",
]
