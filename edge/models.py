"""Imports every feature's rows so the metadata is complete (for migrations and checks)."""

from edge.auth.models import Device
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
from edge.inventory.models import StockLevel, StockMovement
from edge.outbox.models import Counter, OutboxEvent

__all__ = [
    "Barcode",
    "Cart",
    "CartLine",
    "Counter",
    "Device",
    "ExitPass",
    "OutboxEvent",
    "Payment",
    "Product",
    "Return",
    "ReturnLine",
    "Sale",
    "SaleLine",
    "StockLevel",
    "StockMovement",
]
