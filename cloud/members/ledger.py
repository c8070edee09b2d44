"""The points ledger: earn, burn, hold, return, expire, adjust and merge, each written once.

Every function takes the caller's session and writes in its transaction (ingest applies a
store's sale in the same transaction as the sale's row). Each first locks the member's row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so two stores' events for
one member are applied one after the other and a lot's ``remaining`` is never raced.

Each entry is tied to its origin: ``(origin_kind, origin_id, kind)`` is unique, so an event sent
again (a retried push, a replayed request) finds its entry and changes nothing. The functions
return the entry they wrote, or None when the origin was already recorded.

The rules, written once here:

* **Earn** makes a lot that expires ``expiry`` after the sale.
* **Burn** takes points from lots, nearest expiry first. What no lot holds (an offline burn
  beyond the balance) is debt: the balance goes below zero and a ``points_overdraft``
  reconciliation exception records the amount. The burn is accepted: the sale happened.
* **Hold**: online, a store sets points aside for a cart; a hold counts against what may be held
  or burned online until its sale burns it or it lapses.
* **Return**: earned points come back in proportion to the amount refunded, at most what the
  sale earned (counted over all the sale's returns, so rounding never takes more); they come
  from the sale's own lot first, and may leave a debt rather than block the refund. Burned
  points the return gives back go into the lots they came from, which keep their expiry.
* **Expire**: what a lot still holds at its expiry leaves it.
* **Debt** is paid first by the next points that arrive (a lot made or given back).
* **Merge**: a merged member's entries, lots and holds are re-pointed to the survivor (each
  entry keeps the member it was recorded for); a ``merge`` entry records when and who.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from cloud.changes.log import record_changes
from cloud.db import insert_rows, new_ids, table_of
from cloud.errors import Conflict, NotFound, Unprocessable
from cloud.members.models import Member, PointsAllocation, PointsEntry, PointsHold, PointsLot
from cloud.reconciliation.service import raise_exception
from sync.contract import FEED_MEMBER_MERGES

OriginKind = Literal["sale", "return", "adjustment", "lot", "member", "order"]


@dataclass(frozen=True)
class Origin:
    """Where an entry comes from: a sale, a return, an HQ adjustment, a lot's expiry, a merge,
    a channel's order (``shop:ORD-1``: each channel's order ids are its own)."""

    kind: OriginKind
    id: str


# -- members ---------------------------------------------------------------------------------


def survivor_id(session: Session, member_id: str) -> str:
    """The member ``member_id`` is now: itself, or the member it was merged into."""
    seen = set()
    current = member_id
    while True:
        row = session.execute(
            select(Member.status, Member.merged_into).where(Member.id == current)
        ).first()
        if row is None:
            raise NotFound(f"no member {member_id!r}", code="unknown_member")
        if row.merged_into is None or current in seen:
            return current
        seen.add(current)
        current = row.merged_into


def lock_member(session: Session, member_id: str) -> Member:
    """The surviving member of ``member_id``, its row locked for this transaction. What the
    session holds unwritten is flushed first: the moves below read their own writes."""
    session.flush()
    survivor = survivor_id(session, member_id)
    member = session.execute(
        select(Member).where(Member.id == survivor).with_for_update()
    ).scalar_one()
    return member


# -- reading ---------------------------------------------------------------------------------


def balance(session: Session, member_id: str) -> int:
    """The member's balance: the sum of their entries."""
    total = session.execute(
        select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
            PointsEntry.member_id == member_id
        )
    ).scalar_one()
    return int(total)


def held(session: Session, member_id: str, *, now: datetime) -> int:
    """Points set aside by live holds."""
    total = session.execute(
        select(func.coalesce(func.sum(PointsHold.points), 0)).where(
            PointsHold.member_id == member_id,
            PointsHold.status == "held",
            PointsHold.expires_at > now,
        )
    ).scalar_one()
    return int(total)


def debt(session: Session, member_id: str) -> int:
    """What the member's entries took that no lot held, not yet paid back."""
    return debts(session, [member_id]).get(member_id, 0)


def debts(session: Session, member_ids: Iterable[str]) -> dict[str, int]:
    """:func:`debt` of each of ``member_ids``, in one statement."""
    lots = (
        select(func.coalesce(func.sum(PointsLot.remaining), 0))
        .where(PointsLot.member_id == Member.id)
        .scalar_subquery()
    )
    total = (
        select(func.coalesce(func.sum(PointsEntry.points), 0))
        .where(PointsEntry.member_id == Member.id)
        .scalar_subquery()
    )
    rows = session.execute(select(Member.id, lots - total).where(Member.id.in_(list(member_ids))))
    return {str(member_id): int(owed) for member_id, owed in rows}


def entry_of(session: Session, origin: Origin, kind: str) -> PointsEntry | None:
    """The ``kind`` entry ``origin`` wrote, if it wrote one."""
    return _entry(session, origin, kind)


def _entry(session: Session, origin: Origin, kind: str) -> PointsEntry | None:
    return session.execute(
        select(PointsEntry).where(
            PointsEntry.origin_kind == origin.kind,
            PointsEntry.origin_id == origin.id,
            PointsEntry.kind == kind,
        )
    ).scalar_one_or_none()


# -- the moves -------------------------------------------------------------------------------


def _write(
    session: Session,
    member: Member,
    kind: str,
    points: int,
    origin: Origin,
    *,
    at: datetime,
    now: datetime,
    named: str | None = None,
    **facts: Any,
) -> PointsEntry:
    """Write one ``kind`` entry of ``points`` for ``member`` (the survivor), from ``origin``,
    which happened ``at``. ``named``: the member the origin named, kept as the entry's
    ``recorded_member_id`` (a merged member's id, when it named one). ``facts``: the entry's
    other columns (``store_id``, ``spend``, ``about_id``, ``reason``)."""
    entry = PointsEntry(
        member_id=member.id,
        recorded_member_id=named or member.id,
        kind=kind,
        points=points,
        origin_kind=origin.kind,
        origin_id=origin.id,
        created_at=at,
        recorded_at=now,
        **facts,
    )
    session.add(entry)
    session.flush()
    return entry


def _allocate(session: Session, entry: PointsEntry, lot: PointsLot, points: int) -> None:
    session.add(PointsAllocation(entry_id=entry.id, lot_id=lot.id, points=points))
    lot.remaining -= points


def _live_lots(session: Session, member_id: str, at: datetime) -> list[PointsLot]:
    """The member's lots that hold points and are live at ``at``, nearest expiry first."""
    session.flush()
    return list(
        session.execute(
            select(PointsLot)
            .where(
                PointsLot.member_id == member_id,
                PointsLot.remaining > 0,
                PointsLot.expires_at > at,
            )
            .order_by(PointsLot.expires_at, PointsLot.id)
        ).scalars()
    )


def _take(session: Session, entry: PointsEntry, lots: Iterable[PointsLot], points: int) -> int:
    """Allocate ``points`` of ``entry`` from ``lots`` in their order; returns what they did
    not hold."""
    need = points
    for lot in lots:
        if need == 0:
            break
        take = min(need, lot.remaining)
        _allocate(session, entry, lot, take)
        need -= take
    return need


def _owed(session: Session, member_id: str) -> list[tuple[PointsEntry, int]]:
    """The member's entries that took points no lot held, each with what it still owes, oldest
    first. A burn owes what it took, less what returns gave back, less what lots hold for it
    (its own allocations, and those that paid its debt, less what returns put back)."""
    session.flush()
    debits = list(
        session.execute(
            select(PointsEntry)
            .where(
                PointsEntry.member_id == member_id,
                PointsEntry.points < 0,
                PointsEntry.kind != "expire",
            )
            .order_by(PointsEntry.id)
        ).scalars()
    )
    if not debits:
        return []
    allocated = dict(
        session.execute(
            select(PointsAllocation.entry_id, func.sum(PointsAllocation.points))
            .where(PointsAllocation.entry_id.in_([e.id for e in debits]))
            .group_by(PointsAllocation.entry_id)
        ).all()
    )
    sales = [e.origin_id for e in debits if e.kind == "burn"]
    given = dict(
        session.execute(
            select(PointsEntry.about_id, func.sum(PointsEntry.points))
            .where(PointsEntry.kind == "burn_refund", PointsEntry.about_id.in_(sales))
            .group_by(PointsEntry.about_id)
        ).all()
    )
    put_back = dict(
        session.execute(
            select(PointsEntry.about_id, func.sum(PointsAllocation.points))
            .join(PointsAllocation, PointsAllocation.entry_id == PointsEntry.id)
            .where(PointsEntry.kind == "burn_refund", PointsEntry.about_id.in_(sales))
            .group_by(PointsEntry.about_id)
        ).all()
    )
    owed = []
    for e in debits:
        still = -e.points - int(allocated.get(e.id, 0))
        if e.kind == "burn":
            still -= int(given.get(e.origin_id, 0)) + int(put_back.get(e.origin_id, 0))
        if still > 0:
            owed.append((e, still))
    return owed


def _settle(session: Session, member: Member, *, at: datetime) -> None:
    """Pay the member's debt from their lots live at ``at``: each entry that owes, oldest
    first, takes what it owes (so a return of it later knows which lots to give back to)."""
    session.flush()
    if debt(session, member.id) <= 0:
        return
    for entry, still in _owed(session, member.id):
        if _take(session, entry, _live_lots(session, member.id, at), still):
            return  # no live lot holds more


def _credit(
    session: Session, member: Member, entry: PointsEntry, *, expires_at: datetime
) -> PointsLot:
    lot = PointsLot(
        member_id=member.id,
        entry_id=entry.id,
        points=entry.points,
        created_at=entry.created_at,
        expires_at=expires_at,
    )
    session.add(lot)
    session.flush()  # and the lot starts full (``remaining``'s default)
    _settle(session, member, at=entry.created_at)
    return lot


def earn(
    session: Session,
    member_id: str,
    *,
    points: int,
    spend: int,
    origin: Origin,
    store_id: str | None,
    at: datetime,
    expiry: timedelta,
    now: datetime,
) -> PointsEntry | None:
    """``points`` earned on ``spend`` (minor units) by ``origin`` (a sale), expiring ``expiry``
    after ``at``."""
    if points < 0 or spend < 0:
        raise Unprocessable("points and spend cannot be negative", code="bad_points")
    member = lock_member(session, member_id)
    if _entry(session, origin, "earn") is not None:
        return None
    entry = _write(
        session,
        member,
        "earn",
        points,
        origin,
        at=at,
        now=now,
        store_id=store_id,
        spend=spend,
        named=member_id,
    )
    if points:
        _credit(session, member, entry, expires_at=at + expiry)
    return entry


@dataclass(frozen=True)
class SaleMove:
    """One sale's points, for :func:`sales_many`: what it spent (``burned``, with the store's
    ``hold_id`` when it held them online), then what it earned on ``spend``."""

    member_id: str
    sale_id: str
    store_id: str | None
    at: datetime
    burned: int = 0
    hold_id: str | None = None
    earned: int = 0
    spend: int = 0

    @property
    def origin(self) -> Origin:
        return Origin("sale", self.sale_id)

    @property
    def earns(self) -> bool:
        """Whether the sale writes an earn entry: one that earned points, or spent money (a
        member's spend is counted in their earn entries even when no point was earned)."""
        return bool(self.earned or self.spend)


@dataclass
class _Lot:
    """A lot as :func:`sales_many` moves it: read from the database (``id``) or made by the
    run (``fresh``, its place among the run's new lots until it is written)."""

    id: int
    expires_at: datetime
    remaining: int
    fresh: bool = False

    def order(self) -> tuple[datetime, bool, int]:
        """Nearest expiry first, then the order the lots were made (a new lot's id is higher
        than any lot already written)."""
        return (self.expires_at, self.fresh, self.id)


def _fast_members(session: Session, moves: Sequence[SaleMove]) -> set[str]:
    """The members of ``moves`` whose sales :func:`sales_many` may write together: each known,
    not merged away, not the survivor of a member named beside it, owing nothing. Every
    member named is locked, in id order."""
    named = sorted({m.member_id for m in moves})
    merged = dict(
        session.execute(
            select(Member.id, Member.merged_into)
            .where(Member.id.in_(named))
            .order_by(Member.id)
            .with_for_update()
        ).all()
    )
    fast = {m for m in named if m in merged and merged[m] is None}
    for m in named:
        if merged.get(m) is not None:
            fast.discard(survivor_id(session, m))
    if fast:
        owed = debts(session, fast)
        fast = {m for m in fast if owed.get(m, 0) <= 0}
    return fast


def sales_many(
    session: Session, moves: Sequence[SaleMove], *, expiry: timedelta, now: datetime
) -> None:
    """Each sale's burn and then its earn, written as :func:`burn` and :func:`earn` write them
    one sale after another, in a handful of statements for the whole run (a store's batch holds
    hundreds of members' sales).

    The run's members are locked together, in id order. Their live lots are read once, the
    burns take lots in memory (nearest expiry first, as :func:`burn`), and the
    entries, new lots, allocations, lots' new ``remaining`` and burned holds are written in
    bulk. A sale already recorded is skipped. A member merged away, unknown, owing points,
    named by a sale that names another member too, or whose burn goes beyond their balance or
    their live lots (an overdraft, a debt) goes through
    :func:`burn` and :func:`earn` one sale at a time, in order, from that sale on: members are
    independent, so only each member's own order matters."""
    if not moves:
        return
    session.flush()
    fast = _fast_members(session, moves)
    owners: dict[str, set[str]] = {}
    for move in moves:
        owners.setdefault(move.sale_id, set()).add(move.member_id)
    for names in owners.values():
        if len(names) > 1:  # one sale sent for two members: the first to come owns it
            fast -= names
    mine = [m for m in moves if m.member_id in fast]
    seen: set[tuple[str, str]] = set()
    if mine:
        seen.update(
            session.execute(
                select(PointsEntry.origin_id, PointsEntry.kind).where(
                    PointsEntry.origin_kind == "sale",
                    PointsEntry.kind.in_(("earn", "burn")),
                    PointsEntry.origin_id.in_([m.sale_id for m in mine]),
                )
            ).all()
        )
    burners = sorted({m.member_id for m in mine if m.burned})
    lots: dict[str, list[_Lot]] = {m: [] for m in fast}
    if burners:
        for lot_id, member_id, expires_at, remaining in session.execute(
            select(PointsLot.id, PointsLot.member_id, PointsLot.expires_at, PointsLot.remaining)
            .where(PointsLot.member_id.in_(burners), PointsLot.remaining > 0)
            .order_by(PointsLot.expires_at, PointsLot.id)
        ).all():
            lots[str(member_id)].append(_Lot(lot_id, expires_at, remaining))
    run = _SalesRun(expiry=expiry, now=now)
    slow: list[SaleMove] = []
    for move in moves:
        m = move.member_id
        if m not in fast or min(move.burned, move.earned, move.spend) < 0:
            fast.discard(m)
            slow.append(move)
            continue
        if move.burned and (move.sale_id, "burn") not in seen:
            live = sorted(
                (lot for lot in lots[m] if lot.remaining > 0 and lot.expires_at > move.at),
                key=_Lot.order,
            )
            # A member who owes nothing has a balance of at least what their lots hold (and
            # a burn or an earn moves both alike), so live lots that hold the burn mean a
            # balance that covers it. Short of that: a debt or an overdraft, which burn() keeps.
            if sum(x.remaining for x in live) < move.burned:
                fast.discard(m)
                slow.append(move)
                continue
            run.burn(move, live)
            seen.add((move.sale_id, "burn"))
        if move.earns and (move.sale_id, "earn") not in seen:
            lot = run.earn(move)
            if lot is not None:
                lots[m].append(lot)
            seen.add((move.sale_id, "earn"))
    run.write(session)
    for move in slow:
        sale_alone(session, move, expiry=expiry, now=now)


def sale_alone(session: Session, move: SaleMove, *, expiry: timedelta, now: datetime) -> None:
    """One sale's points as the rules of record write them: :func:`burn`, then :func:`earn`."""
    if move.burned:
        burn(
            session,
            move.member_id,
            points=move.burned,
            origin=move.origin,
            store_id=move.store_id,
            at=move.at,
            now=now,
            hold_id=move.hold_id,
        )
    if move.earns:
        earn(
            session,
            move.member_id,
            points=move.earned,
            spend=move.spend,
            origin=move.origin,
            store_id=move.store_id,
            at=move.at,
            expiry=expiry,
            now=now,
        )


def _inserted(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table``; the ids they were given, in order."""
    if not rows:
        return []
    ids = new_ids(session, table, len(rows))
    if ids is None:
        return list(
            session.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
    insert_rows(session, table, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


@dataclass
class _SalesRun:
    """What :func:`sales_many` writes for its fast members, in the order the sales came."""

    expiry: timedelta
    now: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)
    new_lots: list[tuple[int, _Lot, SaleMove]] = field(default_factory=list)  # entry, lot, sale
    allocations: list[tuple[int, _Lot, int]] = field(default_factory=list)  # entry, lot, points
    holds: list[dict[str, str]] = field(default_factory=list)

    def _entry(self, move: SaleMove, kind: str, points: int, **facts: Any) -> int:
        self.entries.append(
            {
                "member_id": move.member_id,
                "recorded_member_id": move.member_id,
                "kind": kind,
                "points": points,
                "origin_kind": "sale",
                "origin_id": move.sale_id,
                "store_id": move.store_id,
                "created_at": move.at,
                "recorded_at": self.now,
                "spend": 0,
                **facts,
            }
        )
        return len(self.entries) - 1

    def burn(self, move: SaleMove, live: list[_Lot]) -> None:
        """The burn's entry, and its points taken from ``live`` (which hold them all)."""
        entry = self._entry(move, "burn", -move.burned)
        need = move.burned
        for lot in live:
            if need == 0:
                break
            take = min(need, lot.remaining)
            lot.remaining -= take
            self.allocations.append((entry, lot, take))
            need -= take
        if move.hold_id is not None:
            self.holds.append({"hold": move.hold_id, "member": move.member_id})

    def earn(self, move: SaleMove) -> _Lot | None:
        """The earn's entry, and its lot when it earned points."""
        entry = self._entry(move, "earn", move.earned, spend=move.spend)
        if not move.earned:
            return None
        lot = _Lot(len(self.new_lots), move.at + self.expiry, move.earned, fresh=True)
        self.new_lots.append((entry, lot, move))
        return lot

    def write(self, session: Session) -> None:
        if not self.entries:
            return
        entry_ids = _inserted(session, table_of(PointsEntry), self.entries)
        lots = [
            {
                "member_id": move.member_id,
                "entry_id": entry_ids[entry],
                "points": move.earned,
                "remaining": lot.remaining,
                "created_at": move.at,
                "expires_at": lot.expires_at,
            }
            for entry, lot, move in self.new_lots
        ]
        for (_, lot, _), lot_id in zip(
            self.new_lots, _inserted(session, table_of(PointsLot), lots), strict=True
        ):
            lot.id = lot_id
        insert_rows(
            session,
            table_of(PointsAllocation),
            [
                {"entry_id": entry_ids[entry], "lot_id": lot.id, "points": points}
                for entry, lot, points in self.allocations
            ],
        )
        taken = {lot.id: lot for _, lot, _ in self.allocations if not lot.fresh}
        if taken:
            session.execute(
                update(table_of(PointsLot))
                .where(table_of(PointsLot).c.id == bindparam("lot_id"))
                .values(remaining=bindparam("left")),
                [{"lot_id": lot_id, "left": lot.remaining} for lot_id, lot in taken.items()],
            )
        if self.holds:
            table = table_of(PointsHold)
            session.execute(
                update(table)
                .where(table.c.id == bindparam("hold"), table.c.member_id == bindparam("member"))
                .values(status="burned"),
                self.holds,
            )
        # A lot or hold this session already holds must not keep what it was before.
        held = {h["hold"] for h in self.holds}
        for obj in list(session.identity_map.values()):
            if (isinstance(obj, PointsLot) and obj.id in taken) or (
                isinstance(obj, PointsHold) and obj.id in held
            ):
                session.expire(obj)


def place_hold(
    session: Session,
    member_id: str,
    *,
    hold_id: str,
    points: int,
    store_id: str,
    ttl: timedelta,
    now: datetime,
) -> PointsHold:
    """Set ``points`` aside for a cart in ``store_id`` for ``ttl``; the same ``hold_id`` again
    answers the first hold. 409 ``points_insufficient`` when the balance less the live holds is
    short."""
    if points <= 0:
        raise Unprocessable("a hold is of at least one point", code="bad_points")
    member = lock_member(session, member_id)
    existing = session.get(PointsHold, hold_id)
    if existing is not None:
        return existing
    available = balance(session, member.id) - held(session, member.id, now=now)
    if points > available:
        raise Conflict(
            f"the member has {max(available, 0)} points free to spend",
            code="points_insufficient",
            details={"available": max(available, 0), "asked": points},
        )
    hold = PointsHold(
        id=hold_id,
        member_id=member.id,
        store_id=store_id,
        points=points,
        status="held",
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(hold)
    session.flush()
    return hold


def release_hold(session: Session, hold_id: str) -> bool:
    """Give a live hold's points back (a cart abandoned or its points taken off)."""
    result = session.execute(
        update(PointsHold)
        .where(PointsHold.id == hold_id, PointsHold.status == "held")
        .values(status="released")
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def burn(
    session: Session,
    member_id: str,
    *,
    points: int,
    origin: Origin,
    store_id: str | None,
    at: datetime,
    now: datetime,
    hold_id: str | None = None,
) -> PointsEntry | None:
    """``points`` spent by ``origin`` (a sale), turning ``hold_id`` into the burn when the store
    held them online. Accepted whatever the balance (the sale happened); what goes beyond it is
    raised as a ``points_overdraft`` exception."""
    if points <= 0:
        raise Unprocessable("a burn is of at least one point", code="bad_points")
    member = lock_member(session, member_id)
    if _entry(session, origin, "burn") is not None:
        return None
    before = balance(session, member.id)
    if hold_id is not None:
        session.execute(
            update(PointsHold)
            .where(PointsHold.id == hold_id, PointsHold.member_id == member.id)
            .values(status="burned")
        )
    entry = _write(
        session,
        member,
        "burn",
        -points,
        origin,
        at=at,
        now=now,
        store_id=store_id,
        named=member_id,
    )
    _take(session, entry, _live_lots(session, member.id, at), points)
    after = before - points
    if after < 0:
        raise_exception(
            session,
            kind="points_overdraft",
            store_id=store_id,
            subject_id=member.id,
            amount=min(points, -after),
            unit="points",
            origin_id=origin.id,
            details={"balance_before": before, "burned": points, "balance_after": after},
            now=now,
        )
    return entry


def _sum(session: Session, kind: str, about_id: str, column: str = "points") -> int:
    col = getattr(PointsEntry, column)
    total = session.execute(
        select(func.coalesce(func.sum(col), 0)).where(
            PointsEntry.kind == kind, PointsEntry.about_id == about_id
        )
    ).scalar_one()
    return int(total)


def take_back_earned(
    session: Session,
    *,
    sale: Origin,
    origin: Origin,
    refunded: int,
    store_id: str | None,
    at: datetime,
    now: datetime,
) -> PointsEntry | None:
    """The points ``sale`` earned, taken back in proportion to ``refunded`` by the return
    ``origin``. Counted over all the sale's returns: after returns refunding R in all, the sale
    has given back ``floor(earned * min(R, spend) / spend)``."""
    if refunded < 0:
        raise Unprocessable("a refund cannot be negative", code="bad_points")
    earned = _entry(session, sale, "earn")
    if earned is None or earned.spend == 0:
        return None
    member = lock_member(session, earned.member_id)
    if _entry(session, origin, "earn_reversal") is not None:
        return None
    counted_before = -_sum(session, "earn_reversal", sale.id, "spend")
    counted_after = min(earned.spend, counted_before + refunded)
    if counted_after == counted_before:
        return None
    due = earned.points * counted_after // earned.spend
    taken_before = -_sum(session, "earn_reversal", sale.id)
    points = due - taken_before
    entry = _write(
        session,
        member,
        "earn_reversal",
        -points,
        origin,
        at=at,
        now=now,
        store_id=store_id,
        spend=-(counted_after - counted_before),
        about_id=sale.id,
        named=earned.recorded_member_id,
    )
    if points:
        lot = session.execute(
            select(PointsLot.id).where(PointsLot.entry_id == earned.id)
        ).scalar_one_or_none()
        # The sale's own lot first, then nearest expiry first (a stable sort keeps that order).
        lots = sorted(_live_lots(session, member.id, at), key=lambda live: live.id != lot)
        _take(session, entry, lots, points)
    return entry


def give_back_burned(
    session: Session,
    *,
    sale: Origin,
    origin: Origin,
    points: int,
    store_id: str | None,
    at: datetime,
    now: datetime,
) -> PointsEntry | None:
    """``points`` the sale burned given back by the return ``origin`` (at most what it burned
    and has not given back yet), into the lots they came from: latest expiry first, each
    keeping its expiry."""
    if points <= 0:
        raise Unprocessable("points given back are at least one", code="bad_points")
    burned = _entry(session, sale, "burn")
    if burned is None:
        return None
    member = lock_member(session, burned.member_id)
    if _entry(session, origin, "burn_refund") is not None:
        return None
    given_before = _sum(session, "burn_refund", sale.id)
    points = min(points, -burned.points - given_before)
    if points <= 0:
        return None
    owed = {e.id: still for e, still in _owed(session, member.id)}.get(burned.id, 0)
    entry = _write(
        session,
        member,
        "burn_refund",
        points,
        origin,
        at=at,
        now=now,
        store_id=store_id,
        about_id=sale.id,
        named=burned.recorded_member_id,
    )
    # What the burn still owes is forgiven first (no lot held it); the rest goes back into the
    # lots that hold it for the burn (its allocations less what returns gave back), latest
    # expiry first.
    refunds = select(PointsEntry.id).where(
        PointsEntry.kind == "burn_refund", PointsEntry.about_id == sale.id
    )
    held_by_lot = session.execute(
        select(PointsAllocation.lot_id, func.sum(PointsAllocation.points))
        .where(
            (PointsAllocation.entry_id == burned.id)
            | PointsAllocation.entry_id.in_(refunds.scalar_subquery())
        )
        .group_by(PointsAllocation.lot_id)
    ).all()
    lots = {
        lot.id: lot
        for lot in session.execute(
            select(PointsLot).where(PointsLot.id.in_([lot_id for lot_id, _ in held_by_lot]))
        ).scalars()
    }
    left = points - min(points, owed)
    for lot_id, still in sorted(
        held_by_lot, key=lambda row: (lots[row[0]].expires_at, row[0]), reverse=True
    ):
        if left == 0:
            break
        give = min(left, int(still))
        if give > 0:
            _allocate(session, entry, lots[lot_id], -give)
            left -= give
    _settle(session, member, at=at)
    return entry


def adjust(
    session: Session,
    member_id: str,
    *,
    points: int,
    reason: str,
    key: str,
    at: datetime,
    now: datetime,
    expiry: timedelta,
) -> PointsEntry | None:
    """An HQ adjustment with its reason; ``key`` (the caller's idempotency key) makes it
    once. Points added expire like earned ones."""
    if points == 0:
        raise Unprocessable("an adjustment moves at least one point", code="bad_points")
    if not reason.strip():
        raise Unprocessable("an adjustment needs a reason", code="reason_required")
    member = lock_member(session, member_id)
    origin = Origin("adjustment", key)
    if _entry(session, origin, "adjust") is not None:
        return None
    entry = _write(
        session,
        member,
        "adjust",
        points,
        origin,
        at=at,
        now=now,
        reason=reason,
        named=member_id,
    )
    if points > 0:
        _credit(session, member, entry, expires_at=at + expiry)
    else:
        _take(session, entry, _live_lots(session, member.id, at), -points)
    return entry


def expire_due(session: Session, *, now: datetime, limit: int = 1000) -> int:
    """Write the expiry of up to ``limit`` lots past their expiry that still hold points;
    returns how many."""
    due = session.execute(
        select(PointsLot.id, PointsLot.member_id)
        .where(PointsLot.expires_at <= now, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id)
        .limit(limit)
    ).all()
    done = 0
    for lot_id, member_id in due:
        member = lock_member(session, member_id)
        lot = session.execute(select(PointsLot).where(PointsLot.id == lot_id)).scalar_one()
        if lot.remaining <= 0:
            continue
        # A lot expires again after a return gave points back into it: one entry each time.
        times = session.execute(
            select(func.count(PointsAllocation.id))
            .join(PointsEntry, PointsEntry.id == PointsAllocation.entry_id)
            .where(PointsAllocation.lot_id == lot.id, PointsEntry.kind == "expire")
        ).scalar_one()
        entry = _write(
            session,
            member,
            "expire",
            -lot.remaining,
            Origin("lot", f"{lot.id}.{times + 1}"),
            at=lot.expires_at,
            now=now,
        )
        _allocate(session, entry, lot, lot.remaining)
        done += 1
    return done


def merge(session: Session, *, survivor: str, merged: str, now: datetime) -> PointsEntry | None:
    """Fold ``merged`` into ``survivor``: its entries, lots and holds are the survivor's from
    now on, and events naming it apply to the survivor. Once: None when already merged."""
    keep_id = survivor_id(session, survivor)
    if keep_id == merged or _entry(session, Origin("member", merged), "merge") is not None:
        return None
    for member_id in sorted([keep_id, merged]):  # one lock order: no deadlock
        session.execute(select(Member.id).where(Member.id == member_id).with_for_update())
    keep = session.get(Member, keep_id)
    gone = session.get(Member, merged)
    if keep is None or gone is None:
        raise NotFound("no such member", code="unknown_member")
    for table in (PointsEntry, PointsLot, PointsHold):
        session.execute(update(table).where(table.member_id == gone.id).values(member_id=keep.id))
    gone.status = "merged"
    gone.merged_into = keep.id
    gone.updated_at = now
    entry = _write(session, keep, "merge", 0, Origin("member", gone.id), at=now, now=now)
    _settle(session, keep, at=now)
    record_changes(session, [(FEED_MEMBER_MERGES, gone.id, None)], now=now)  # stores learn it
    return entry
