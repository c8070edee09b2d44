"""The chain's members and their points: one member id chain-wide, and an append-only ledger.

Personal data is sealed (``shared.pii``): a member row holds its phone's blind index and the
sealed phone, name and birthday, never their text.

Points live in **lots**, each with its expiry. Every change of a balance is a **ledger entry**
tied to its origin (a sale, a return, an adjustment, an expiry, a merge); an entry that takes
points away is **allocated** to the lots it took them from, nearest expiry first. So:

* a member's balance is the sum of their entries' points;
* a lot's remaining points are its points less what is allocated to it (a return that gives
  burned points back allocates a negative amount to the lot they came from, which keeps its
  expiry);
* what an entry could not take from any lot (an offline burn beyond the balance, a return of
  points already spent) is the member's debt: the next points that arrive pay it first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, BigIntKey, Uuid

MEMBER_STATUSES = ("active", "merged")
#: What each kind of entry records. Positive: earn, burn_refund, adjust (either sign). Negative:
#: burn, earn_reversal, expire. merge moves nothing (the merged member's entries are re-pointed).
ENTRY_KINDS = ("earn", "burn", "earn_reversal", "burn_refund", "expire", "adjust", "merge")


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'merged')", name="status_known"),
        CheckConstraint(
            "(status = 'merged') = (merged_into IS NOT NULL)", name="merged_names_survivor"
        ),
        # One active member per phone; merged ones keep their index for the lookups that
        # still name them.
        Index(
            "uq_members_active_phone",
            "phone_index",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[Uuid] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # shown as a QR by the member
    phone_index: Mapped[str] = mapped_column(String(64))
    phone_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    birthday_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(8), default="active")
    merged_into: Mapped[Uuid | None] = mapped_column(ForeignKey("members.id"))
    tier: Mapped[str] = mapped_column(String(16))
    # Who signed the member up: the store, its device and the staff member signed in (if any).
    store_id: Mapped[str | None] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(64))
    recruited_by: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))  # store, online shop, mini-program...
    created_at: Mapped[datetime]  # when the member signed up (the store's clock if offline)
    registered_at: Mapped[datetime]  # when the cloud learned of them
    updated_at: Mapped[datetime]


class PointsLot(Base):
    """Points that arrived together and expire together."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        Index("ix_points_lots_member_expiry", "member_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    member_id: Mapped[Uuid] = mapped_column(ForeignKey("members.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), unique=True)
    points: Mapped[int] = mapped_column(BigInteger)
    # What is left, kept with every allocation in the same transaction (a derived cache: the
    # points less the sum of the lot's allocations, which a test checks). A lot starts full.
    remaining: Mapped[int] = mapped_column(
        BigInteger, default=lambda context: context.get_current_parameters()["points"]
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class PointsEntry(Base):
    """One change of a member's points, and why."""

    __tablename__ = "points_entries"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'burn', 'earn_reversal', 'burn_refund', 'expire', 'adjust', 'merge')",
            name="kind_known",
        ),
        # An origin changes points once per kind, whoever sends it again.
        Index("uq_points_entries_origin", "origin_kind", "origin_id", "kind", unique=True),
        Index("ix_points_entries_member", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    member_id: Mapped[Uuid] = mapped_column(ForeignKey("members.id"))
    # The member the entry was written for; differs from member_id after a merge.
    recorded_member_id: Mapped[Uuid]
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    # The amount spent the points were earned on (earn: positive; earn_reversal: the amount
    # refunded, negative), in minor units; 0 for the rest. Every sale of a member has its earn
    # entry, with 0 points when it earned none: the earn entries are the member's spend.
    spend: Mapped[int] = mapped_column(BigInteger, default=0)
    # sale, return, adjustment, lot, member, order (a channel's)
    origin_kind: Mapped[str] = mapped_column(String(16))
    origin_id: Mapped[str] = mapped_column(String(64))
    # The origin this one answers: a return's entries name the sale's.
    about_id: Mapped[str | None] = mapped_column(String(64), index=True)
    store_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]  # when it happened (a store's clock for a store's event)
    recorded_at: Mapped[datetime]  # when the cloud wrote it


class PointsAllocation(Base):
    """What an entry took from (or, negative, gave back to) one lot."""

    __tablename__ = "points_allocations"
    __table_args__ = (CheckConstraint("points <> 0", name="points_not_zero"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"), index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class PointsHold(Base):
    """Points a store set aside for a cart while online, until its sale burns them or the hold
    lapses. Holds keep two stores from spending the same points at the same moment."""

    __tablename__ = "points_holds"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("status IN ('held', 'burned', 'released')", name="status_known"),
        Index("ix_points_holds_member", "member_id", "status"),
    )

    id: Mapped[Uuid] = mapped_column(primary_key=True)
    member_id: Mapped[Uuid] = mapped_column(ForeignKey("members.id"))
    store_id: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ChannelRequest(Base):
    """A channel's write and its answer, kept under the request's Idempotency-Key: the same key
    again answers the same for the same request and 409 for another. Keys are each token's
    own, so two channels (or two of one channel's tokens) never meet."""

    __tablename__ = "channel_requests"

    token_id: Mapped[str] = mapped_column(String(64), ForeignKey("api_tokens.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    # The SHA-256 of what was asked (the operation, its member and its body).
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    answer: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime]


class EarnRules(Base):
    """The chain's earn rules (one row): the JSON of :class:`sync.contract.EarnRulesItem`, set by
    HQ and pulled by every store."""

    __tablename__ = "earn_rules"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    doc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
