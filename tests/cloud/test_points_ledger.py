"""The points ledger on both databases: earn, burn, holds, returns, expiry, adjustments and
merges, each written once, with lots kept consistent with the entries.

Examples first, then a Hypothesis state machine that runs any sequence of those moves (each
also sent again) across members and checks, after every step:

* a member's balance is what the moves should have made it (the model below);
* each lot's ``remaining`` is its points less its allocations, between 0 and its points;
* the member's debt (lots' remaining less balance) is never negative, and while there is debt
  no live lot holds points;
* a sale never gives back more earned or burned points than it earned or burned;
* every burn that went below zero raised one ``points_overdraft`` exception of the right amount;
* a move sent again changes nothing.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cloud.db import Base, Database
from cloud.errors import Conflict
from cloud.members import ledger, registry
from cloud.members.ledger import Origin
from cloud.members.models import Member, PointsAllocation, PointsEntry, PointsLot
from cloud.reconciliation.models import ReconciliationException
from shared.ids import new_id
from shared.pii import Keyring

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
KEYRING = Keyring.generate()
EXAMPLES = int(os.environ.get("AISLE_TEST_STATEFUL_EXAMPLES", "8")) * 3


def _member(session: Session, phone: str) -> str:
    signed = registry.register(
        session, KEYRING, registry.SignUp(phone=phone, store_id="S1"), region="CN", now=T0
    )
    return signed.member.id


def _sale() -> Origin:
    return Origin("sale", new_id())


def _return() -> Origin:
    return Origin("return", new_id())


@pytest.fixture
def db(database_url: str) -> Database:
    d = Database.open(database_url)
    yield d
    d.dispose()


def test_earn_burn_and_a_retry_that_counts_once(db: Database) -> None:
    sale = _sale()
    with db.write() as uow:
        m = _member(uow.session, "13800138000")
        first = ledger.earn(
            uow.session,
            m,
            points=120,
            spend=12_000,
            origin=sale,
            store_id="S1",
            at=T0,
            expiry=YEAR,
            now=T0,
        )
        again = ledger.earn(
            uow.session,
            m,
            points=120,
            spend=12_000,
            origin=sale,
            store_id="S1",
            at=T0,
            expiry=YEAR,
            now=T0,
        )
        uow.commit()
    assert first is not None and again is None
    spend = _sale()
    with db.write() as uow:
        ledger.burn(uow.session, m, points=50, origin=spend, store_id="S2", at=T0, now=T0)
        ledger.burn(uow.session, m, points=50, origin=spend, store_id="S2", at=T0, now=T0)
        uow.commit()
    with db.read() as session:
        assert ledger.balance(session, m) == 70
        assert session.execute(select(func.count(PointsEntry.id))).scalar_one() == 2


def test_burns_take_the_nearest_expiry_first_and_returns_put_them_back(db: Database) -> None:
    early, late, spend, back = _sale(), _sale(), _sale(), _return()
    with db.write() as uow:
        s = uow.session
        m = _member(s, "13800138001")
        ledger.earn(
            s, m, points=100, spend=10_000, origin=late, store_id="S1", at=T0, expiry=YEAR, now=T0
        )
        ledger.earn(
            s,
            m,
            points=100,
            spend=10_000,
            origin=early,
            store_id="S1",
            at=T0 - timedelta(days=300),
            expiry=YEAR,
            now=T0,
        )
        ledger.burn(s, m, points=150, origin=spend, store_id="S1", at=T0, now=T0)
        remaining = {
            lot.expires_at: lot.remaining for lot in s.execute(select(PointsLot)).scalars()
        }
        assert remaining == {T0 + YEAR: 50, T0 - timedelta(days=300) + YEAR: 0}  # early first
        ledger.give_back_burned(
            s, sale=spend, origin=back, points=120, store_id="S1", at=T0, now=T0
        )
        remaining = {
            lot.expires_at: lot.remaining for lot in s.execute(select(PointsLot)).scalars()
        }
        uow.commit()
    # 120 back: 50 into the later lot (which had given 50) and 70 into the early one.
    assert remaining == {T0 + YEAR: 100, T0 - timedelta(days=300) + YEAR: 70}


def test_a_return_takes_earned_points_back_in_proportion_never_more(db: Database) -> None:
    sale = _sale()
    with db.write() as uow:
        s = uow.session
        m = _member(s, "13800138002")
        ledger.earn(
            s, m, points=99, spend=10_000, origin=sale, store_id="S1", at=T0, expiry=YEAR, now=T0
        )
        taken = []
        for refunded in (3_333, 3_333, 3_333, 5_000):  # the last goes past what was spent
            entry = ledger.take_back_earned(
                s, sale=sale, origin=_return(), refunded=refunded, store_id="S1", at=T0, now=T0
            )
            taken.append(0 if entry is None else -entry.points)
        uow.commit()
        # floor(99 * R / 10000) over the running refund R: 32, 65, 98, then 99 (capped)
        assert taken == [32, 33, 33, 1]
        assert sum(taken) == 99
        assert ledger.balance(s, m) == 0


def test_an_offline_overdraft_is_accepted_and_raised_once(db: Database) -> None:
    sale, spend = _sale(), _sale()
    with db.write() as uow:
        s = uow.session
        m = _member(s, "13800138003")
        ledger.earn(
            s, m, points=40, spend=4_000, origin=sale, store_id="S1", at=T0, expiry=YEAR, now=T0
        )
        ledger.burn(s, m, points=100, origin=spend, store_id="S2", at=T0, now=T0)
        ledger.burn(s, m, points=100, origin=spend, store_id="S2", at=T0, now=T0)
        uow.commit()
        assert ledger.balance(s, m) == -60
        rows = s.execute(select(ReconciliationException)).scalars().all()
        assert [(r.kind, r.amount, r.store_id, r.origin_id) for r in rows] == [
            ("points_overdraft", 60, "S2", spend.id)
        ]
    # The next points pay the debt first.
    with db.write() as uow:
        ledger.earn(
            uow.session,
            m,
            points=100,
            spend=10_000,
            origin=_sale(),
            store_id="S1",
            at=T0,
            expiry=YEAR,
            now=T0,
        )
        uow.commit()
        assert ledger.balance(uow.session, m) == 40
        assert ledger.debt(uow.session, m) == 0


def test_a_hold_keeps_two_stores_from_spending_the_same_points(db: Database) -> None:
    with db.write() as uow:
        m = _member(uow.session, "13800138004")
        ledger.earn(
            uow.session,
            m,
            points=100,
            spend=10_000,
            origin=_sale(),
            store_id="S1",
            at=T0,
            expiry=YEAR,
            now=T0,
        )
        ledger.place_hold(
            uow.session,
            m,
            hold_id=new_id(),
            points=80,
            store_id="S1",
            ttl=timedelta(minutes=10),
            now=T0,
        )
        uow.commit()
    with db.write() as uow, pytest.raises(Conflict) as refused:
        ledger.place_hold(
            uow.session,
            m,
            hold_id=new_id(),
            points=30,
            store_id="S2",
            ttl=timedelta(minutes=10),
            now=T0,
        )
    assert refused.value.code == "points_insufficient"
    assert refused.value.details["available"] == 20
    # Once the first hold lapses, the second store may hold them.
    with db.write() as uow:
        ledger.place_hold(
            uow.session,
            m,
            hold_id=new_id(),
            points=30,
            store_id="S2",
            ttl=timedelta(minutes=10),
            now=T0 + timedelta(minutes=11),
        )
        uow.commit()


def test_expiry_and_a_merge(db: Database) -> None:
    with db.write() as uow:
        s = uow.session
        a = _member(s, "13800138005")
        ledger.earn(
            s,
            a,
            points=30,
            spend=3_000,
            origin=_sale(),
            store_id="S1",
            at=T0,
            expiry=timedelta(days=30),
            now=T0,
        )
        ledger.earn(
            s, a, points=50, spend=5_000, origin=_sale(), store_id="S1", at=T0, expiry=YEAR, now=T0
        )
        assert ledger.expire_due(s, now=T0 + timedelta(days=31)) == 1
        assert ledger.expire_due(s, now=T0 + timedelta(days=31)) == 0
        assert ledger.balance(s, a) == 50
        # The same phone signed up offline in another store, with points of its own.
        offline_id = new_id()
        b = registry._insert(
            s,
            KEYRING,
            registry.SignUp(phone="+8613900139000", member_id=offline_id),
            phone="+8613900139000",
            index=KEYRING.blind_index("phone", "+8613900139000"),
            now=T0,
            merged_into=None,
        ).id
        ledger.earn(
            s, b, points=7, spend=700, origin=_sale(), store_id="S2", at=T0, expiry=YEAR, now=T0
        )
        ledger.merge(s, survivor=a, merged=b, now=T0)
        assert ledger.merge(s, survivor=a, merged=b, now=T0) is None
        uow.commit()
        assert ledger.balance(s, a) == 57
        assert ledger.balance(s, b) == 0
        assert ledger.survivor_id(s, b) == a
        # An event that names the merged id lands on the survivor.
        ledger.earn(
            s, b, points=3, spend=300, origin=_sale(), store_id="S2", at=T0, expiry=YEAR, now=T0
        )
        assert ledger.balance(s, a) == 60


# -- the state machine -----------------------------------------------------------------------


def _reset(url: str, template: Path | None) -> None:
    if url.startswith("sqlite"):
        assert template is not None
        shutil.copyfile(template, make_url(url).database or "")
        return
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


class LedgerMachine(RuleBasedStateMachine):
    url: str
    template: Path | None

    def __init__(self) -> None:
        super().__init__()
        _reset(self.url, self.template)
        self.db = Database.open(self.url)
        self.now = T0
        self.members: list[str] = []
        self.expected: dict[str, int] = {}
        # Per sale: member, points earned, spend, points burned, refunded so far, given back.
        self.sales: dict[str, dict[str, int | str]] = {}
        self.done: list[tuple[str, dict[str, object]]] = []  # moves to send again

    def teardown(self) -> None:
        self.db.dispose()

    def _survivor(self, m: str) -> str:
        with self.db.read() as s:
            return ledger.survivor_id(s, m)

    @initialize()
    def two_members(self) -> None:
        with self.db.write() as uow:
            for phone in ("13800000001", "13800000002"):
                m = _member(uow.session, phone)
                self.members.append(m)
                self.expected[m] = 0
            uow.commit()

    @rule(who=st.integers(0, 1), points=st.integers(0, 300), days_ago=st.integers(0, 400))
    def earn(self, who: int, points: int, days_ago: int) -> None:
        m, sale = self.members[who], _sale()
        args = dict(
            member_id=m,
            points=points,
            spend=points * 100 + 1,
            origin=sale,
            store_id="S1",
            at=self.now - timedelta(days=days_ago),
            expiry=YEAR,
            now=self.now,
        )
        self._do("earn", args)
        self.expected[self._survivor(m)] += points
        self.sales[sale.id] = {
            "member": m,
            "earned": points,
            "spend": points * 100 + 1,
            "burned": 0,
            "refunded": 0,
            "given": 0,
        }

    @rule(who=st.integers(0, 1), points=st.integers(1, 300))
    def burn(self, who: int, points: int) -> None:
        m, sale = self.members[who], _sale()
        with self.db.read() as s:
            before = ledger.balance(s, self._survivor(m))
        self._do(
            "burn",
            dict(member_id=m, points=points, origin=sale, store_id="S2", at=self.now, now=self.now),
        )
        self.expected[self._survivor(m)] -= points
        self.sales[sale.id] = {
            "member": m,
            "earned": 0,
            "spend": 0,
            "burned": points,
            "refunded": 0,
            "given": 0,
        }
        with self.db.read() as s:
            found = (
                s.execute(
                    select(ReconciliationException.amount).where(
                        ReconciliationException.origin_id == sale.id
                    )
                )
                .scalars()
                .all()
            )
        assert found == ([min(points, points - before)] if before - points < 0 else [])

    @precondition(lambda self: self.sales)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        sale_id = data.draw(st.sampled_from(list(self.sales)))  # in the order they happened
        sale = self.sales[sale_id]
        m = self._survivor(str(sale["member"]))
        back = _return()
        if int(sale["spend"]):
            refunded = data.draw(st.integers(0, int(sale["spend"])))
            self._do(
                "take_back_earned",
                dict(
                    sale=Origin("sale", sale_id),
                    origin=back,
                    refunded=refunded,
                    store_id="S1",
                    at=self.now,
                    now=self.now,
                ),
            )
            before = min(int(sale["spend"]), int(sale["refunded"]))
            after = min(int(sale["spend"]), int(sale["refunded"]) + refunded)
            earned, spend = int(sale["earned"]), int(sale["spend"])
            self.expected[m] -= earned * after // spend - earned * before // spend
            sale["refunded"] = int(sale["refunded"]) + refunded
        if int(sale["burned"]):
            points = data.draw(st.integers(1, int(sale["burned"]) + 5))
            self._do(
                "give_back_burned",
                dict(
                    sale=Origin("sale", sale_id),
                    origin=back,
                    points=points,
                    store_id="S1",
                    at=self.now,
                    now=self.now,
                ),
            )
            given = min(points, int(sale["burned"]) - int(sale["given"]))
            self.expected[m] += given
            sale["given"] = int(sale["given"]) + given

    @rule(days=st.integers(1, 200))
    def time_passes_and_lots_expire(self, days: int) -> None:
        self.now += timedelta(days=days)
        with self.db.read() as s:
            due = s.execute(
                select(PointsLot.member_id, func.sum(PointsLot.remaining))
                .where(PointsLot.expires_at <= self.now, PointsLot.remaining > 0)
                .group_by(PointsLot.member_id)
            ).all()
        with self.db.write() as uow:
            while ledger.expire_due(uow.session, now=self.now, limit=3):
                pass
            uow.commit()
        for member_id, points in due:
            self.expected[member_id] -= int(points)

    @rule(who=st.integers(0, 1), points=st.integers(-200, 200).filter(bool))
    def hq_adjusts(self, who: int, points: int) -> None:
        m = self.members[who]
        self._do(
            "adjust",
            dict(
                member_id=m,
                points=points,
                reason="goodwill",
                key=new_id(),
                at=self.now,
                now=self.now,
                expiry=YEAR,
            ),
        )
        self.expected[self._survivor(m)] += points

    @precondition(lambda self: self._survivor(self.members[0]) != self._survivor(self.members[1]))
    @rule()
    def the_two_members_merge(self) -> None:
        a, b = self.members
        with self.db.write() as uow:
            ledger.merge(uow.session, survivor=a, merged=b, now=self.now)
            uow.commit()
        self.expected[a] += self.expected.pop(b)

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def a_move_is_sent_again(self, data: st.DataObject) -> None:
        name, args = data.draw(st.sampled_from(self.done))
        before = self._snapshot()
        with self.db.write() as uow:
            result = getattr(ledger, name)(uow.session, **args)
            uow.commit()
        assert result is None
        assert self._snapshot() == before

    def _do(self, name: str, args: dict[str, object]) -> None:
        with self.db.write() as uow:
            getattr(ledger, name)(uow.session, **args)
            uow.commit()
        self.done.append((name, args))

    def _snapshot(self) -> tuple[int, int, int]:
        with self.db.read() as s:
            return (
                s.execute(select(func.count(PointsEntry.id))).scalar_one(),
                s.execute(select(func.count(PointsAllocation.id))).scalar_one(),
                s.execute(select(func.coalesce(func.sum(PointsLot.remaining), 0))).scalar_one(),
            )

    @invariant()
    def balances_are_what_the_moves_made_them(self) -> None:
        if not self.members:
            return
        with self.db.read() as s:
            for m, points in self.expected.items():
                assert ledger.balance(s, m) == points, m

    @invariant()
    def lots_agree_with_their_allocations(self) -> None:
        with self.db.read() as s:
            allocated = dict(
                s.execute(
                    select(PointsAllocation.lot_id, func.sum(PointsAllocation.points)).group_by(
                        PointsAllocation.lot_id
                    )
                ).all()
            )
            for lot in s.execute(select(PointsLot)).scalars():
                assert lot.remaining == lot.points - int(allocated.get(lot.id, 0))
                assert 0 <= lot.remaining <= lot.points

    @invariant()
    def debt_is_never_negative_and_never_beside_live_points(self) -> None:
        with self.db.read() as s:
            for m in s.execute(select(Member.id).where(Member.status == "active")).scalars():
                owed = ledger.debt(s, m)
                assert owed >= 0
                # The debt is what the entries that took points no lot held still owe.
                assert owed == sum(still for _, still in ledger._owed(s, m))
                if owed:
                    live = s.execute(
                        select(func.count(PointsLot.id)).where(
                            PointsLot.member_id == m,
                            PointsLot.remaining > 0,
                            PointsLot.expires_at > self.now,
                        )
                    ).scalar_one()
                    assert live == 0, (m, owed)

    @invariant()
    def no_sale_gives_back_more_than_it_moved(self) -> None:
        with self.db.read() as s:
            for about, kind, total in s.execute(
                select(PointsEntry.about_id, PointsEntry.kind, func.sum(PointsEntry.points))
                .where(PointsEntry.about_id.is_not(None))
                .group_by(PointsEntry.about_id, PointsEntry.kind)
            ).all():
                sale = self.sales[about]
                if kind == "earn_reversal":
                    assert 0 <= -int(total) <= int(sale["earned"])
                else:
                    assert 0 <= int(total) <= int(sale["burned"])


def test_the_ledger_stays_consistent_through_any_moves(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    LedgerMachine.url = database_url
    LedgerMachine.template = (
        request.getfixturevalue("sqlite_template") if database_url.startswith("sqlite") else None
    )
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
