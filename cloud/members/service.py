"""Members and points for HQ and the other channels: look a member up, read their ledger,
adjust their points. The rules are in :mod:`cloud.members.ledger` and
:mod:`cloud.members.registry`; this module opens the transactions and shapes the answers
(personal data masked, never in clear)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select

from cloud.db import Database
from cloud.errors import Conflict, NotFound
from cloud.members import ledger, registry
from cloud.members.models import Member, PointsAllocation, PointsEntry, PointsHold, PointsLot
from shared.pii import Keyring

#: Entries in one page of a ledger.
MAX_LEDGER_PAGE = 500


def _points(member_id: Any, now: Any) -> tuple[Any, Any]:
    """The balance and the held points of ``member_id`` (a value or a column) at ``now`` (a
    time or a bound parameter), as scalar subqueries: a lookup reads a member and their points
    in one statement."""
    balance = (
        select(func.coalesce(func.sum(PointsEntry.points), 0))
        .where(PointsEntry.member_id == member_id)
        .scalar_subquery()
        .label("balance")
    )
    held = (
        select(func.coalesce(func.sum(PointsHold.points), 0))
        .where(
            PointsHold.member_id == member_id,
            PointsHold.status == "held",
            PointsHold.expires_at > now,
        )
        .scalar_subquery()
        .label("held")
    )
    return balance, held


def member_dict(session: Any, keyring: Keyring, member: Member, *, now: datetime) -> dict[str, Any]:
    """A member as devices and HQ see them: the phone masked, the balance and what is free."""
    balance, held = session.execute(select(*_points(member.id, now))).one()
    return _shown(keyring, member, int(balance), int(held))


class Shown(Protocol):
    """What a member's answer is made of: a :class:`Member`, or a row of its columns."""

    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def phone_sealed(self) -> bytes: ...
    @property
    def tier(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def _shown(keyring: Keyring, member: Shown, balance: int, held: int) -> dict[str, Any]:
    return {
        "id": member.id,
        "code": member.code,
        "masked_phone": registry.masked_phone(keyring, member),
        "tier": member.tier,
        "balance": balance,
        "available": balance - held,
        "status": member.status,
        "created_at": member.created_at.isoformat(),
    }


#: A member by phone with their balance and held points: built once, its compiled form cached.
_BY_PHONE = select(
    Member.id,
    Member.code,
    Member.phone_sealed,
    Member.tier,
    Member.status,
    Member.created_at,
    *_points(Member.id, bindparam("now")),
).where(Member.phone_index == bindparam("index"), registry.ACTIVE)


def look_up(
    db: Database, keyring: Keyring, text: str, *, region: str, now: datetime
) -> dict[str, Any]:
    """The member a phone number or member code names (the survivor of a merge). The busiest
    read of the registry (a store's lookup at checkout): one statement for a member found by
    phone, who is active by definition (read outside a transaction: one statement needs none)."""
    index = registry.phone_index_of(keyring, text, region=region)
    if index is not None:
        with db.read_statements() as session:
            row = session.execute(_BY_PHONE, {"index": index, "now": now}).first()
            if row is None:
                raise NotFound("no member has this phone number", code="unknown_member")
            return _shown(keyring, row, int(row.balance), int(row.held))
    with db.read() as session:
        member = registry.find(session, keyring, text, region=region)
        return member_dict(session, keyring, member, now=now)


def read_member(db: Database, keyring: Keyring, member_id: str, *, now: datetime) -> dict[str, Any]:
    with db.read() as session:
        member = session.get(Member, ledger.survivor_id(session, member_id))
        if member is None:
            raise NotFound(f"no member {member_id!r}", code="unknown_member")
        return member_dict(session, keyring, member, now=now)


def ledger_page(db: Database, member_id: str, *, after_id: int, limit: int) -> dict[str, Any]:
    """The member's entries after ``after_id``, each with why it happened and the lots it
    moved."""
    with db.read() as session:
        survivor = ledger.survivor_id(session, member_id)
        entries = list(
            session.execute(
                select(PointsEntry)
                .where(PointsEntry.member_id == survivor, PointsEntry.id > after_id)
                .order_by(PointsEntry.id)
                .limit(limit)
            ).scalars()
        )
        ids = [e.id for e in entries]
        moved: dict[int, list[dict[str, Any]]] = {}
        for alloc, expires_at in session.execute(
            select(PointsAllocation, PointsLot.expires_at)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .where(PointsAllocation.entry_id.in_(ids))
            .order_by(PointsAllocation.id)
        ).all():
            moved.setdefault(alloc.entry_id, []).append(
                {
                    "lot": alloc.lot_id,
                    "points": -alloc.points,
                    "lot_expires_at": expires_at.isoformat(),
                }
            )
        lots = dict(
            session.execute(
                select(PointsLot.entry_id, PointsLot.expires_at).where(PointsLot.entry_id.in_(ids))
            ).all()
        )
        return {
            "member_id": survivor,
            "balance": ledger.balance(session, survivor),
            "entries": [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "points": e.points,
                    "spend": e.spend,
                    "origin": {"kind": e.origin_kind, "id": e.origin_id},
                    "about": e.about_id,
                    "store_id": e.store_id,
                    "reason": e.reason,
                    "recorded_for": e.recorded_member_id,
                    "created_at": e.created_at.isoformat(),
                    "recorded_at": e.recorded_at.isoformat(),
                    "expires_at": lots[e.id].isoformat() if e.id in lots else None,
                    "lots": moved.get(e.id, []),
                }
                for e in entries
            ],
            "last_id": entries[-1].id if entries else after_id,
            "more": len(entries) == limit,
        }


#: How long a ledger origin id may be (``PointsEntry.origin_id``).
ORIGIN_ID_MAX = 64


def hq_origin_id(key: str) -> str:
    """The ledger origin id of HQ's adjustment under the Idempotency-Key ``key``: ``hq:<key>``,
    or, for a key too long for an origin id (keys run to 128 characters), ``hq#`` and as many
    hex digits of its SHA-256 as fit."""
    plain = f"hq:{key}"
    if len(plain) <= ORIGIN_ID_MAX:
        return plain
    return "hq#" + hashlib.sha256(key.encode()).hexdigest()[: ORIGIN_ID_MAX - 3]


def adjust_points(
    db: Database,
    member_id: str,
    *,
    points: int,
    reason: str,
    key: str,
    now: datetime,
    expiry: timedelta,
) -> dict[str, Any]:
    """An HQ adjustment, once per ``key``; answers the entry (the first one for a retry)."""
    with db.write() as uow:
        entry = ledger.adjust(
            uow.session,
            member_id,
            points=points,
            reason=reason,
            key=key,
            at=now,
            now=now,
            expiry=expiry,
        )
        if entry is None:
            entry = uow.session.execute(
                select(PointsEntry).where(
                    PointsEntry.origin_kind == "adjustment",
                    PointsEntry.origin_id == key,
                    PointsEntry.kind == "adjust",
                )
            ).scalar_one()
            same = (
                entry.member_id == ledger.survivor_id(uow.session, member_id)
                and entry.points == points
                and entry.reason == reason
            )
            if not same:
                raise Conflict(
                    "this Idempotency-Key was used for another adjustment",
                    code="idempotency_key_reused",
                )
        answer = {
            "entry_id": entry.id,
            "member_id": entry.member_id,
            "points": entry.points,
            "reason": entry.reason,
            "balance_after": ledger.balance(uow.session, entry.member_id),
        }
        uow.commit()
        return answer
