"""What the store keeps about its cloud link: the pinned cloud, feed cursors, sync health."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base


class CloudLink(Base):
    """The cloud this store enrolled with and the key it pinned; one row, or none."""

    __tablename__ = "cloud_link"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    cloud_url: Mapped[str] = mapped_column(String(500))
    store_id: Mapped[str] = mapped_column(String(32))
    cloud_public_key: Mapped[str] = mapped_column(String(64))
    protocol_version: Mapped[int]
    max_batch_events: Mapped[int]
    max_batch_bytes: Mapped[int]
    enrolled_at: Mapped[datetime]


class SyncState(Base):
    """Sync health, shared by every server process and the command line; one row."""

    __tablename__ = "sync_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    acked_seq: Mapped[int] = mapped_column(default=0)
    last_push_at: Mapped[datetime | None]
    last_pull_at: Mapped[datetime | None]
    last_contact_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # No push or pull before this (exponential backoff with jitter while the cloud is away):
    # the wall-clock time for the status, and the deadline on the machine's monotonic clock
    # (time.monotonic, the same in every process), which is the one obeyed.
    next_attempt_at: Mapped[datetime | None]
    next_attempt_mono: Mapped[float | None]
    clock_skew_s: Mapped[float | None]
    # Set when pushing must stop until a person looks (the cloud holds other events under this
    # store's numbers, or refuses this store); cleared by a successful push.
    halted_code: Mapped[str | None] = mapped_column(String(64))


class FeedCursor(Base):
    """How far this store has applied one of the cloud's feeds; moves with the data it covers."""

    __tablename__ = "feed_cursors"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(200))
    in_snapshot: Mapped[bool] = mapped_column(default=False)
    changes_applied: Mapped[int] = mapped_column(default=0)
    # Why the cloud last answered with a snapshot (sync.protocol.SNAPSHOT_REASONS), and when.
    last_snapshot_reason: Mapped[str | None] = mapped_column(String(32))
    last_snapshot_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class QuarantinedEvent(Base):
    """An outbox event the cloud could not apply: it sits here with the cloud's reason."""

    __tablename__ = "sync_quarantine"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime]


class StoreSetting(Base):
    """A setting of this store as the cloud's ``store_settings`` feed last carried it."""

    __tablename__ = "store_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[datetime]


class SyncRecovery(Base):
    """This store's request to move onto a new stream after its database went back in time,
    and, once HQ approved and the store renumbered its events, what happened."""

    __tablename__ = "sync_recoveries"
    __table_args__ = (CheckConstraint("status IN ('requested', 'applied')", name="status_known"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the cloud's recovery id
    status: Mapped[str] = mapped_column(String(16))
    stream: Mapped[int]
    agreed_seq: Mapped[int]
    base_seq: Mapped[int | None]
    renumbered: Mapped[int] = mapped_column(default=0)  # events moved onto the new stream
    report: Mapped[str] = mapped_column(Text)  # the cloud's recovery document (JSON)
    requested_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
