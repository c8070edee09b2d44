"""Imports every feature's rows so the metadata is complete (for migrations and checks)."""

from edge.assistance.models import AssistanceCall
from edge.auth.models import Device, PairingCode, Staff, StaffSession, StoreQr
from edge.catalog.models import Barcode, Product
from edge.checkout.models import (
    Cart,
    CartLine,
    ExitPass,
    Payment,
    Return,
    ReturnLine,
    Sale,
    SaleLine,
)
from edge.checkout.payment_intents import PaymentIntent
from edge.coupons.models import CartCoupon, SaleCoupon, StoreCampaign
from edge.idempotency import IdempotentRequest
from edge.inventory.models import StockLevel, StockMovement
from edge.members.models import Member
from edge.outbox.models import Counter, OutboxEvent
from edge.pricing.models import SaleDiscount, StorePromotion
from edge.sync_client.models import (
    CloudLink,
    FeedCursor,
    QuarantinedEvent,
    StoreSetting,
    SyncRecovery,
    SyncState,
)

__all__ = [
    "AssistanceCall",
    "Barcode",
    "Cart",
    "CartCoupon",
    "CartLine",
    "CloudLink",
    "Counter",
    "Device",
    "ExitPass",
    "FeedCursor",
    "IdempotentRequest",
    "Member",
    "OutboxEvent",
    "PairingCode",
    "Payment",
    "PaymentIntent",
    "Product",
    "QuarantinedEvent",
    "Return",
    "ReturnLine",
    "Sale",
    "SaleCoupon",
    "SaleDiscount",
    "SaleLine",
    "Staff",
    "StaffSession",
    "StockLevel",
    "StockMovement",
    "StoreCampaign",
    "StorePromotion",
    "StoreQr",
    "StoreSetting",
    "SyncRecovery",
    "SyncState",
]
