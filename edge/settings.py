"""Edge settings: read once from TOML plus ``AISLE_*`` environment overrides, then frozen.

An override names its key with double underscores between levels: ``AISLE_SERVER__PORT=8081``,
``AISLE_PAYMENTS__DECLINE_RATE_BP=500``. A bad value stops the server at start with a message that
names the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sync.money import CURRENCY_EXPONENTS
from sync.settings_env import is_override


class SettingsError(Exception):
    """The configuration cannot be used; the message names the bad key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
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


class ServerSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104 - the store LAN is where the devices are
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=32)
    threads: int = Field(default=8, ge=1, le=128)
    # Open device connections one worker keeps. Without a cap, one worker can accept every
    # device's keep-alive connection while the other idles; above ``worker_connections -
    # threads`` idle ones, a worker closes a connection after answering and the device
    # reconnects, landing on whichever worker accepts first.
    worker_connections: int = Field(default=16, ge=2, le=10_000)
    # Threads of a process doing store work at once (the others wait on card terminals or for
    # a slot); see edge/work_gate.py.
    work_slots: int = Field(default=4, ge=1, le=128)

    @model_validator(mode="after")
    def _room_for_keepalive(self) -> ServerSettings:
        if self.worker_connections <= self.threads:
            raise ValueError(
                f"server.worker_connections ({self.worker_connections}) must be more than "
                f"server.threads ({self.threads})"
            )
        return self


class VariableMeasureSettings(_Section):
    prefix: str = Field(default="2", pattern=r"^[0-9]{1,3}$")
    plu_length: int = Field(default=6, ge=1, le=8)
    kind: Literal["price", "weight"] = "price"
    value_length: int = Field(default=5, ge=1, le=6)
    decimals: int = Field(default=2, ge=0, le=3)
    value_check_digit: bool = False


class BarcodeSettings(_Section):
    variable_measure: VariableMeasureSettings = VariableMeasureSettings()


class PaymentSettings(_Section):
    provider: Literal["simulator"] = "simulator"
    latency_ms: int = Field(default=30, ge=0, le=60_000)
    decline_rate_bp: int = Field(default=0, ge=0, le=10_000)
    timeout_rate_bp: int = Field(default=0, ge=0, le=10_000)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class ExitPassSettings(_Section):
    ttl_s: int = Field(default=1800, ge=60, le=86_400)
    audit_base_rate_bp: int = Field(default=300, ge=0, le=10_000)
    audit_large_basket_items: int = Field(default=20, ge=1)
    audit_large_basket_rate_bp: int = Field(default=1500, ge=0, le=10_000)
    audit_large_total: int = Field(default=50_000, ge=1)
    audit_large_total_rate_bp: int = Field(default=1500, ge=0, le=10_000)


class SyncSettings(_Section):
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


class EdgeSettings(_Section):
    """Everything one store server needs to know, validated."""

    data_dir: Path
    store: StoreSettings
    server: ServerSettings = ServerSettings()
    barcodes: BarcodeSettings = BarcodeSettings()
    payments: PaymentSettings = PaymentSettings()
    exit_pass: ExitPassSettings = ExitPassSettings()
    sync: SyncSettings = SyncSettings()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "edge.sqlite3"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"

    @property
    def store_key_path(self) -> Path:
        return self.data_dir / "store_key.pem"

    @property
    def sync_key_path(self) -> Path:
        """The key that signs this store's requests to the cloud (made at enrollment)."""
        return self.data_dir / "sync_key.pem"

    @property
    def sync_lock_path(self) -> Path:
        """Held by the one process that talks to the cloud at a time."""
        return self.data_dir / "sync.lock"


def _set_path(tree: dict[str, Any], path: list[str], value: str) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SettingsError(f"AISLE_{'__'.join(path).upper()}: {part} is not a section")
    node[path[-1]] = value


def load_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EdgeSettings:
    """Read ``path`` (TOML), apply ``AISLE_*`` overrides and validate.

    ``data_dir`` is resolved relative to the file that names it.
    """
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"configuration file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
        base = path.parent
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if is_override(name):
            _set_path(raw, name.removeprefix("AISLE_").lower().split("__"), value)
    for dotted, value in (overrides or {}).items():
        node = raw
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    raw.setdefault("data_dir", ".")
    data_dir = Path(str(raw["data_dir"]))
    raw["data_dir"] = data_dir if data_dir.is_absolute() else (base / data_dir).resolve()
    try:
        return EdgeSettings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"{key}: {err['msg']}")
        where = f" in {path}" if path else ""
        raise SettingsError(f"invalid configuration{where}: " + "; ".join(problems)) from None
