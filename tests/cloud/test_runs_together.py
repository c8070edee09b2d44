"""What cloud ingest writes together for a store's batch is exactly what the same events
write one at a time, on both databases: a run of sales (:func:`ledger.sales_many` against
:func:`ledger.burn` then :func:`ledger.earn`, the rules of record) and a run of sign-ups
(:func:`registry.register_many` against :func:`registry.register`).

Hypothesis draws a history (earns of any age, burns that leave debt, holds, a merge) and a
run of sales over the same members (burns within and beyond the balance or the live lots,
earns, sales already recorded or sent twice, a merged member, a hold turned into a burn).
Each example applies the run both ways in savepoints of one transaction that is never
committed, and compares what each wrote: every member's entries in order, the lots and what
they hold, the allocations (which entry took from which lot), the overdraft exceptions, the
holds and the balances. Sign-ups are drawn from a few phones, ids and member codes, so that
runs send one again, sign one phone up twice, reuse a code or bring none.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cloud.db import Database
from cloud.members import ledger, registry
from cloud.members.ledger import Origin, SaleMove
from cloud.members.models import Member, PointsAllocation, PointsEntry, PointsHold, PointsLot
from cloud.reconciliation.models import ReconciliationException
from shared.ids import new_id
from shared.member_codes import new_member_code
from shared.pii import Keyring

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
KEYRING = Keyring.generate()
EXAMPLES = int(os.environ.get("AISLE_TEST_STATEFUL_EXAMPLES", "8")) * 5

MEMBERS = 3  # the third may be merged into the first

_earn = st.tuples(
    st.just("earn"), st.integers(0, MEMBERS - 1), st.integers(0, 200), st.integers(0, 400)
)
_history_move = st.one_of(
    _earn,
    _earn,
    _earn,
    st.tuples(
        st.just("burn"), st.integers(0, MEMBERS - 1), st.integers(1, 250), st.integers(0, 30)
    ),
    st.tuples(st.just("hold"), st.integers(0, MEMBERS - 1), st.integers(1, 100), st.just(0)),
)

_run_move = st.fixed_dictionaries(
    {
        "who": st.integers(0, MEMBERS - 1),
        "burned": st.sampled_from([0, 0, 5, 20, 60, 150, 400]),
        "earned": st.integers(0, 120),
        "spend": st.sampled_from([0, 0, 900, 12_000]),
        "days_ago": st.sampled_from([0, 0, 3, 200, 380]),
        # -1: a new sale; n >= 0: the n-th sale seen so far again (history's or the run's)
        "again": st.sampled_from([-1, -1, -1, -1, 0, 1, 5]),
        "hold": st.booleans(),
    }
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    d = Database.open(database_url)
    yield d
    d.dispose()


def _members(session: Session) -> list[str]:
    return [
        registry.register(
            session,
            KEYRING,
            registry.SignUp(phone=f"1380000{i:04d}", store_id="S1"),
            region="CN",
            now=T0,
        ).member.id
        for i in range(MEMBERS)
    ]


def _one_at_a_time(session: Session, moves: list[SaleMove]) -> None:
    for move in moves:
        ledger.sale_alone(session, move, expiry=YEAR, now=T0)


def _written(session: Session, members: list[str]) -> dict[str, Any]:
    """What the ledger holds, by what it means rather than by row ids."""
    session.flush()
    entries: dict[str, list[tuple[Any, ...]]] = {}
    for e in session.execute(select(PointsEntry).order_by(PointsEntry.id)).scalars():
        entries.setdefault(str(e.member_id), []).append(
            (
                e.recorded_member_id,
                e.kind,
                e.points,
                e.origin_kind,
                e.origin_id,
                e.store_id,
                e.spend,
                e.created_at.replace(tzinfo=None),
            )
        )
    lot_entry = aliased(PointsEntry)
    lots = {
        (origin_id, kind): (str(lot.member_id), lot.points, lot.remaining, lot.expires_at)
        for lot, origin_id, kind in session.execute(
            select(PointsLot, lot_entry.origin_id, lot_entry.kind).join(
                lot_entry, lot_entry.id == PointsLot.entry_id
            )
        ).all()
    }
    taker = aliased(PointsEntry)
    allocations = Counter(
        session.execute(
            select(taker.origin_id, taker.kind, lot_entry.origin_id, PointsAllocation.points)
            .join(taker, taker.id == PointsAllocation.entry_id)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .join(lot_entry, lot_entry.id == PointsLot.entry_id)
        ).all()
    )
    exceptions = sorted(
        session.execute(
            select(
                ReconciliationException.kind,
                ReconciliationException.subject_id,
                ReconciliationException.amount,
                ReconciliationException.origin_id,
            )
        ).all()
    )
    holds = dict(session.execute(select(PointsHold.id, PointsHold.status)).all())
    return {
        "entries": entries,
        "lots": {k: (v[0], v[1], v[2], v[3].replace(tzinfo=None)) for k, v in lots.items()},
        "allocations": allocations,
        "exceptions": exceptions,
        "holds": holds,
        "balances": {m: ledger.balance(session, m) for m in members},
        "debts": ledger.debts(session, members),
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(_history_move, max_size=16),
    merge=st.booleans(),
    run=st.lists(_run_move, min_size=1, max_size=25),
)
def test_a_run_of_sales_writes_what_one_sale_at_a_time_writes(
    db: Database,
    history: list[tuple[str, int, int, int]],
    merge: bool,
    run: list[dict[str, Any]],
) -> None:
    with db.write() as uow:  # never committed: each example leaves the database as it was
        s = uow.session
        members = _members(s)
        sales: list[str] = []
        holds: dict[int, str] = {}
        for kind, who, points, days_ago in history:
            at, m = T0 - timedelta(days=days_ago), members[who]
            if kind == "hold":
                if ledger.balance(s, m) - ledger.held(s, m, now=T0) < 1:
                    continue  # nothing to hold
                hold_id = new_id()
                ledger.place_hold(s, m, hold_id=hold_id, points=1, store_id="S1", ttl=YEAR, now=T0)
                holds[who] = hold_id
                continue
            sale = new_id()
            sales.append(sale)
            if kind == "earn":
                ledger.earn(
                    s,
                    m,
                    points=points,
                    spend=points * 100,
                    origin=Origin("sale", sale),
                    store_id="S1",
                    at=at,
                    expiry=YEAR,
                    now=T0,
                )
            else:
                origin = Origin("sale", sale)
                ledger.burn(s, m, points=points, origin=origin, store_id="S1", at=at, now=T0)
        if merge:
            ledger.merge(s, survivor=members[0], merged=members[2], now=T0)
        moves = []
        for d in run:
            if d["again"] >= 0 and sales:
                sale = sales[d["again"] % len(sales)]
            else:
                sale = new_id()
                sales.append(sale)
            moves.append(
                SaleMove(
                    member_id=members[d["who"]],
                    sale_id=sale,
                    store_id="S2",
                    at=T0 - timedelta(days=d["days_ago"]),
                    burned=d["burned"],
                    hold_id=holds.get(d["who"]) if d["hold"] and d["burned"] else None,
                    earned=d["earned"],
                    spend=d["spend"],
                )
            )
        s.flush()
        together = s.begin_nested()
        ledger.sales_many(s, moves, expiry=YEAR, now=T0)
        by_run = _written(s, members)
        together.rollback()
        alone = s.begin_nested()
        _one_at_a_time(s, moves)
        by_sale = _written(s, members)
        alone.rollback()
    assert by_run == by_sale


_sign_up = st.fixed_dictionaries(
    {
        "phone": st.integers(0, 3),
        "id": st.integers(0, 5),
        "code": st.one_of(st.none(), st.just("bad"), st.integers(0, 4)),
        "name": st.sampled_from([None, "Wang Fang"]),
    }
)


def _members_written(session: Session, codes: dict[int, str]) -> list[tuple[Any, ...]]:
    session.flush()
    given = set(codes.values())
    merges = set(
        session.execute(
            select(PointsEntry.origin_id, PointsEntry.member_id).where(PointsEntry.kind == "merge")
        ).all()
    )
    return [
        (
            m.id,
            m.phone_index,
            m.status,
            m.merged_into,
            m.code if m.code in given else "made by the cloud",
            m.name_sealed is not None,
            (m.id, m.merged_into) in merges,
        )
        for m in session.execute(select(Member).order_by(Member.id)).scalars()
    ]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=st.lists(_sign_up, max_size=4), run=st.lists(_sign_up, min_size=1, max_size=10))
def test_a_run_of_sign_ups_writes_what_one_at_a_time_writes(
    db: Database, before: list[dict[str, Any]], run: list[dict[str, Any]]
) -> None:
    ids = {i: new_id() for i in range(6)}
    codes = {i: new_member_code() for i in range(5)}

    def sign_up(d: dict[str, Any]) -> registry.SignUp:
        code = d["code"] if d["code"] in (None, "bad") else codes[d["code"]]
        return registry.SignUp(
            phone=f"+86139000000{d['phone']:02d}",
            name=d["name"],
            member_id=ids[d["id"]],
            code=code,
            store_id="S1",
            created_at=T0,
        )

    with db.write() as uow:  # never committed
        s = uow.session
        for d in before:
            registry.register(s, KEYRING, sign_up(d), region="CN", now=T0)
        s.flush()
        together = s.begin_nested()
        registry.register_many(s, KEYRING, [sign_up(d) for d in run], region="CN", now=T0)
        by_run = _members_written(s, codes)
        together.rollback()
        alone = s.begin_nested()
        for d in run:
            registry.register(s, KEYRING, sign_up(d), region="CN", now=T0)
        by_one = _members_written(s, codes)
        alone.rollback()
    assert by_run == by_one
