"""Outbox rows and the store's gap-free counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from edge.db import Base


class OutboxEvent(Base):
    """One event for the cloud, numbered by the store's gap-free sequence."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    created_at: Mapped[datetime]
    pushed_at: Mapped[datetime | None] = mapped_column(index=True)


class Counter(Base):
    """A named gap-free counter (outbox sequence, sale numbers), bumped in write transactions."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)
