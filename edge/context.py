"""What one store server holds for its lifetime: settings, database, clock, keys and ports."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.auth.service import Authenticator
from edge.catalog.scan_rules import ScanRules
from edge.checkout.exit_pass import AuditPolicy
from edge.checkout.payments import PaymentProvider
from edge.coupons.online import CouponCloud
from edge.db import Database
from edge.members.online import MemberCloud
from edge.pricing.store_promotions import Shop
from edge.settings import EdgeSettings
from edge.work_gate import WorkGate
from shared.clock import Clock
from shared.pii import Keyring


@dataclass
class StoreContext:
    """Passed to services by the HTTP layer and the command line; built once per process."""

    settings: EdgeSettings
    db: Database
    clock: Clock
    payments: PaymentProvider
    store_key: Ed25519PrivateKey
    authenticator: Authenticator
    members_keyring: Keyring
    rng: random.Random = field(default_factory=random.SystemRandom)
    gate: WorkGate = field(default_factory=lambda: WorkGate(4))

    @property
    def store_id(self) -> str:
        return self.settings.store.id

    @property
    def currency(self) -> str:
        return self.settings.store.currency

    @cached_property
    def scan_rules(self) -> ScanRules:
        """How this store reads codes; validated when the settings were loaded."""
        return self.settings.barcodes.scan_rules(self.currency)

    @cached_property
    def shop(self) -> Shop:
        """Where this store's carts are priced: its id and its clock's zone."""
        return Shop.of(self.settings)

    @cached_property
    def member_cloud(self) -> MemberCloud:
        """The store's member calls to its cloud, within the short member timeout."""
        return MemberCloud(self.settings, self.db)

    @cached_property
    def coupon_cloud(self) -> CouponCloud:
        """The store's coupon calls to its cloud, on the member calls' channel."""
        return CouponCloud(self.member_cloud)

    @property
    def audit_policy(self) -> AuditPolicy:
        ep = self.settings.exit_pass
        return AuditPolicy(
            base_rate_bp=ep.audit_base_rate_bp,
            large_basket_items=ep.audit_large_basket_items,
            large_basket_rate_bp=ep.audit_large_basket_rate_bp,
            large_total=ep.audit_large_total,
            large_total_rate_bp=ep.audit_large_total_rate_bp,
        )
