"""Per-store sync state, the record of every applied event, quarantine, divergences, the nonces
of stores' signed requests and stores' recoveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, StoreId, Uuid
from cloud.stores import models as _stores  # noqa: F401  (the table the store keys point at)


class StoreSyncState(Base):
    """Where a store's event stream stands at the cloud.

    ``high_water_seq`` moves in the same transaction as the effects of the events up to it, and
    the row is locked (``FOR UPDATE``) while a batch applies: one batch of a store at a time.
    """

    __tablename__ = "sync_states"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    high_water_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    events_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime | None]
    last_push_at: Mapped[datetime | None]
    clock_skew_s: Mapped[float | None]
    protocol_version: Mapped[int | None]
    diverged_at: Mapped[datetime | None]


class AppliedEvent(Base):
    """Every event a store sent that the cloud took (applied or quarantined), by its seq."""

    __tablename__ = "applied_events"
    __table_args__ = (
        UniqueConstraint("store_id", "event_id", name="uq_applied_events_store_event"),
    )

    store_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[Uuid]  # under its key (cloud.db.id_key); PostgreSQL's uuid
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # applied | quarantined
    received_at: Mapped[datetime]


class Quarantined(Base):
    """An event the cloud could not apply, with its reason and the event as it came."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("store_id", "seq", name="uq_quarantine_store_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(Text)  # the event's canonical JSON
    created_at: Mapped[datetime]


class Divergence(Base):
    """A store that sent another event under a seq the cloud had applied: its database was
    restored from an old backup or replaced. Recorded, never merged."""

    __tablename__ = "divergences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    applied_event_id: Mapped[str | None] = mapped_column(String(64))
    offered_event_id: Mapped[str] = mapped_column(String(64))
    detected_at: Mapped[datetime]


class RequestNonce(Base):
    """A nonce a store used, kept while its request could still be replayed in the window."""

    __tablename__ = "request_nonces"

    store_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class StoreRecovery(Base):
    """A store's request to move onto a new stream after its database went back in time, and
    HQ's approval of it (see sync/protocol.py, "recovery")."""

    __tablename__ = "store_recoveries"
    __table_args__ = (CheckConstraint("status IN ('pending', 'approved')", name="status_known"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    store_id: Mapped[StoreId] = mapped_column(ForeignKey("stores.id"), index=True)
    stream: Mapped[int] = mapped_column(Integer)  # the stream the store moves onto
    status: Mapped[str] = mapped_column(String(16))
    agreed_seq: Mapped[int] = mapped_column(BigInteger)
    outbox_last_seq: Mapped[int] = mapped_column(BigInteger)
    base_seq: Mapped[int | None] = mapped_column(BigInteger)  # set by the approval
    report: Mapped[str] = mapped_column(Text)  # JSON: what the cloud holds past agreed_seq
    requested_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[str | None] = mapped_column(String(100))
