"""Cloud settings: read once from TOML plus ``AISLE_*`` environment overrides, then frozen.

An override names its key with double underscores between levels: ``AISLE_SERVER__PORT=9090``,
``AISLE_DATABASE_URL=postgresql+psycopg://aisle@db/aisle``. A bad value stops the service at
start with a message that names the key.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from shared.settings import DataFile, Section, SettingsError, load_layered
from sync.protocol import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_PULL_LIMIT

__all__ = ["SettingsError", "load_settings"]


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    threads: int = Field(default=4, ge=1, le=128)
    # How long a worker trusts an HQ or channel token it checked (0: check at every request);
    # a token revoked in the database is refused within this long.
    token_cache_s: float = Field(default=5.0, ge=0, le=300)


class SyncSettings(Section):
    timestamp_window_s: int = Field(default=300, ge=5, le=86_400)
    max_batch_events: int = Field(default=MAX_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    max_batch_bytes: int = Field(default=MAX_BATCH_BYTES, ge=1024, le=MAX_BATCH_BYTES)
    max_pull_limit: int = Field(default=MAX_PULL_LIMIT, ge=1, le=MAX_PULL_LIMIT)
    feed_retention_days: int = Field(default=90, ge=1, le=3650)


class EnrollmentSettings(Section):
    code_ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)


class MembersSettings(Section):
    """The chain's membership and points rules."""

    # Where a phone number typed without its country code is read (ISO 3166 alpha-2).
    default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    # Earned points expire this many days after the sale that earned them.
    points_expiry_days: int = Field(default=365, ge=1, le=3650)
    # A store's online hold on points for a cart lapses after this long.
    hold_ttl_s: int = Field(default=900, ge=30, le=86_400)


def _known_database(value: str) -> str:
    if value and not value.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
    return value


#: Empty (the embedded SQLite file in ``data_dir``), or a SQLite or PostgreSQL (psycopg) URL.
DatabaseUrl = Annotated[str, AfterValidator(_known_database)]


class CloudSettings(Section):
    """Everything the cloud service needs to know, validated."""

    data_dir: Path
    database_url: DatabaseUrl = ""
    server: ServerSettings = ServerSettings()
    sync: SyncSettings = SyncSettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    members: MembersSettings = MembersSettings()

    @property
    def resolved_database_url(self) -> str:
        """``database_url``, or the embedded SQLite file in ``data_dir`` when it is empty."""
        return self.database_url or f"sqlite:///{self.data_dir / 'cloud.sqlite3'}"

    key_path: ClassVar[DataFile] = DataFile(
        "cloud_key.pem",
        "The cloud's Ed25519 key: it signs, stores pin it, sign-ups are sealed to it",
    )
    members_keyring_path: ClassVar[DataFile] = DataFile(
        "members.keys", "The keys that seal members' personal data and index their phones"
    )


#: ``load_settings(path=None, *, environ=None, overrides=None)``: the cloud service's settings from
#: ``path`` (TOML) and ``AISLE_*`` overrides (the process's environment when ``environ`` is None),
#: validated; see :func:`shared.settings.load_layered`.
load_settings = partial(load_layered, CloudSettings)
