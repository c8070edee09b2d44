"""Edge settings: read once from TOML plus ``AISLE_*`` environment overrides, then frozen.

An override names its key with double underscores between levels: ``AISLE_SERVER__PORT=8081``,
``AISLE_PAYMENTS__DECLINE_RATE_BP=500``. A bad value stops the server at start with a message that
names the key and where it was set (the environment variable, or the file); see
:mod:`shared.settings`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from edge.catalog.barcodes import VariableMeasureLayout
from edge.catalog.scan_rules import ScanRules
from shared.money import CURRENCY_EXPONENTS, MAX_AMOUNT
from shared.settings import DataFile, Section, SettingsError, load_layered
from sync.contract import STORE_ID_PATTERN

__all__ = ["SettingsError", "load_settings"]


class StoreSettings(Section):
    id: str = Field(pattern=STORE_ID_PATTERN)
    name: str = "Aisle store"
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"unsupported currency {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value


class ServerSettings(Section):
    """How the store serves its devices; see :mod:`edge.server` for the model and why."""

    host: str = "0.0.0.0"  # noqa: S104 - the store LAN is where the devices are
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=32)
    # Request threads of a worker: extra threads keep devices served while others wait on a
    # card terminal.
    threads: int = Field(default=8, ge=1, le=128)
    # Threads of a process doing store work at once (the others wait on card terminals or for
    # a slot); see edge/work_gate.py.
    work_slots: int = Field(default=4, ge=1, le=128)
    # A request's headers must arrive within this, and a kept-alive connection that stays quiet
    # this long is closed (the device reconnects at its next request): idle and slow clients
    # cannot pile up.
    header_timeout_s: float = Field(default=10.0, ge=1.0, le=60.0)
    # A request's body must arrive within this once its headers have.
    body_timeout_s: float = Field(default=10.0, ge=0.5, le=300.0)
    # Connections waiting to be accepted (the kernel's listen queue).
    backlog: int = Field(default=2048, ge=128, le=65_535)
    # Connections one worker holds open at once (idle, arriving or being answered); more wait to
    # be accepted until others close (a quiet one closes after header_timeout_s). A store's
    # devices each keep one; the rest of the room is for the stray and the hostile.
    max_connections: int = Field(default=2048, ge=16, le=20_000)
    # A write that waits longer than this for the store's write lock is refused (503
    # store_busy) and logged: one stuck writer must not hang every device.
    write_lock_timeout_s: float = Field(default=10.0, ge=0.1, le=120.0)
    # No longer used: connections are not capped per worker since the server became
    # event-driven. Still accepted so that edge.toml files written before load.
    worker_connections: int | None = Field(default=None, ge=1, le=100_000)


class VariableMeasureSettings(Section):
    """The store's scale-label layout; see :class:`edge.catalog.barcodes.VariableMeasureLayout`."""

    prefix: str = Field(default="2", pattern=r"^[0-9]{1,3}$")
    plu_length: int = Field(default=6, ge=1, le=8)
    kind: Literal["price", "weight"] = "price"
    value_length: int = Field(default=5, ge=1, le=6)
    # A price label's decimals default to the store currency's (CNY 2, JPY 0, KWD 3); a weight
    # label's to 3 (the value in grams).
    decimals: int | None = Field(default=None, ge=0, le=3)
    value_check_digit: bool = False

    def layout(self, currency: str) -> VariableMeasureLayout:
        """The layout, checked; ``ValueError`` says what does not add up."""
        decimals = self.decimals
        if decimals is None:
            decimals = CURRENCY_EXPONENTS[currency] if self.kind == "price" else 3
        return VariableMeasureLayout(
            prefix=self.prefix,
            plu_length=self.plu_length,
            kind=self.kind,
            value_length=self.value_length,
            decimals=decimals,
            value_check_digit=self.value_check_digit,
        )


class BarcodeSettings(Section):
    variable_measure: VariableMeasureSettings = VariableMeasureSettings()
    # Ceilings on what a scanned label may carry. A product's own ``max_price`` (catalog) takes
    # the place of the store's price ceiling; both are in minor units of the store's currency.
    max_embedded_price: int = Field(default=100_000, ge=1, le=MAX_AMOUNT)
    max_embedded_weight_g: int = Field(default=50_000, ge=1, le=10_000_000)

    def scan_rules(self, currency: str) -> ScanRules:
        """The rules a scan is priced by, in ``currency``; ``ValueError`` for a bad layout."""
        return ScanRules(
            layout=self.variable_measure.layout(currency),
            minor_exponent=CURRENCY_EXPONENTS[currency],
            max_embedded_price=self.max_embedded_price,
            max_embedded_weight_g=self.max_embedded_weight_g,
        )


class PaymentSettings(Section):
    provider: Literal["simulator"] = "simulator"
    latency_ms: int = Field(default=30, ge=0, le=60_000)
    decline_rate_bp: int = Field(default=0, ge=0, le=10_000)
    timeout_rate_bp: int = Field(default=0, ge=0, le=10_000)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class ExitPassSettings(Section):
    ttl_s: int = Field(default=1800, ge=60, le=86_400)
    audit_base_rate_bp: int = Field(default=300, ge=0, le=10_000)
    audit_large_basket_items: int = Field(default=20, ge=1)
    audit_large_basket_rate_bp: int = Field(default=1500, ge=0, le=10_000)
    audit_large_total: int = Field(default=50_000, ge=1)
    audit_large_total_rate_bp: int = Field(default=1500, ge=0, le=10_000)


class SyncSettings(Section):
    enabled: bool = True  # push and pull in the background once the store is enrolled
    push_interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    push_debounce_s: float = Field(default=0.5, ge=0.0, le=60)
    pull_interval_s: float = Field(default=15.0, ge=0.5, le=86_400)
    batch_events: int = Field(default=500, ge=1, le=1000)
    batch_pause_s: float = Field(default=0.05, ge=0.0, le=10)
    backoff_initial_s: float = Field(default=1.0, ge=0.05, le=600)
    backoff_max_s: float = Field(default=60.0, ge=0.1, le=3600)
    connect_timeout_s: float = Field(default=3.0, gt=0, le=120)
    read_timeout_s: float = Field(default=20.0, gt=0, le=600)


class MaintenanceSettings(Section):
    """Keeping a store healthy for years (edge/maintenance.py)."""

    interval_s: float = Field(default=600.0, ge=5.0, le=86_400.0)
    # Acknowledged events stay this long in the outbox, then are pruned.
    outbox_keep_days: float = Field(default=30.0, ge=0.0, le=3650.0)
    # A card payment still open this long after any checkout could have finished with it (the
    # acquirer's timeout twice and the write lock's wait) was left by a crash, and is released.
    abandoned_payment_grace_s: float = Field(default=60.0, ge=1.0, le=86_400.0)


class MembersSettings(Section):
    """Members at this store."""

    # Where a phone number typed without its country code is read (ISO 3166 alpha-2).
    default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    # A member earns one point for every this many minor units of a sale's total.
    points_per_unit: int = Field(default=100, ge=1, le=1_000_000)
    # What one point pays, in minor units, when a member spends points at the checkout.
    point_value: int = Field(default=1, ge=1, le=10_000)
    # How long the store waits for the cloud on a member lookup, sign-up or hold before it
    # carries on with its own copy (the checkout must not wait on a slow link).
    online_timeout_s: float = Field(default=0.3, gt=0, le=10)
    # After the cloud failed to answer a member call, the store uses its own copy for this long
    # before it asks the cloud again (0: ask at every call).
    online_retry_s: float = Field(default=5.0, ge=0, le=600)
    # While the cloud cannot be reached, a member may spend at most this many points a day at
    # this store (and never more than the balance this store last knew less what it has spent
    # since): the most an offline double spend can cost.
    offline_daily_cap: int = Field(default=5_000, ge=0, le=10_000_000)


class EdgeSettings(Section):
    """Everything one store server needs to know, validated."""

    data_dir: Path
    store: StoreSettings
    server: ServerSettings = ServerSettings()
    barcodes: BarcodeSettings = BarcodeSettings()
    payments: PaymentSettings = PaymentSettings()
    exit_pass: ExitPassSettings = ExitPassSettings()
    sync: SyncSettings = SyncSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    members: MembersSettings = MembersSettings()

    @field_validator("barcodes")
    @classmethod
    def _labels_readable(cls, value: BarcodeSettings, info: ValidationInfo) -> BarcodeSettings:
        # Every scan reads through the layout: one that cannot work must stop the server at
        # start, not answer 500 to each scan. ``store`` is declared first, so it is checked.
        store = info.data.get("store")
        if store is not None:
            try:
                value.scan_rules(store.currency)
            except ValueError as exc:
                raise ValueError(f"variable_measure: {exc}") from None
        return value

    @property
    def database_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"

    store_key_path: ClassVar[DataFile] = DataFile("store_key.pem", "Signs the store's exit passes")
    members_keyring_path: ClassVar[DataFile] = DataFile(
        "members.keys", "The store's own keys that seal its members' phones and names"
    )
    sync_key_path: ClassVar[DataFile] = DataFile(
        "sync_key.pem", "Signs this store's requests to the cloud (made at enrollment)"
    )
    sync_lock_path: ClassVar[DataFile] = DataFile(
        "sync.lock", "Held by the one process that talks to the cloud at a time"
    )


#: ``load_settings(path=None, *, environ=None, overrides=None)``: the store server's settings from
#: ``path`` (TOML) and ``AISLE_*`` overrides (the process's environment when ``environ`` is None),
#: validated; see :func:`shared.settings.load_layered`.
load_settings = partial(load_layered, EdgeSettings)
