"""The change log: its rows, the feeds' pruned horizons and the log's epochs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, BigIntKey


class Change(Base):
    """One changed key of a feed, for every store (``store_id`` NULL) or for one store.

    ``xid`` is the writing transaction's id (``pg_current_xact_id()``) on PostgreSQL and 0 on
    SQLite; pulls read the current ``epoch`` in ``(xid, id)`` order below the oldest running
    transaction. ``tag`` is random: a cursor standing on this row names it, so a row that a
    restored database lost (or holds anew under the same id) is never mistaken for it (see
    :mod:`cloud.changes.log`).
    """

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_feed_epoch_xid_id", "feed", "epoch", "xid", "id"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    epoch: Mapped[int] = mapped_column(Integer, server_default="1")
    xid: Mapped[int] = mapped_column(BigInteger)
    tag: Mapped[int] = mapped_column(BigInteger, server_default="0")
    feed: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(index=True)


class FeedHorizon(Base):
    """The newest change pruned from a feed's log: a cursor before it gets a snapshot."""

    __tablename__ = "feed_horizons"

    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, server_default="1")
    xid: Mapped[int] = mapped_column(BigInteger)
    change_id: Mapped[int] = mapped_column(BigInteger)
    pruned_at: Mapped[datetime]


class FeedEpoch(Base):
    """One life of the feed log. A database restored into another cluster (its transaction ids
    behind the stored rows') starts the next; cursors name their epoch by ``token``."""

    __tablename__ = "feed_epochs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    reason: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime]
