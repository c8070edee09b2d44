"""Spending points at a store that cannot reach the cloud, through the services on a real
migrated SQLite file: the offline limits (the balance the store knows, less what its other
offline carts set aside, and the daily cap), the refusals a device gets, the points as a tender
of the sale, and a return that gives spent points back."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, update

from edge.auth.service import Principal
from edge.checkout import carts, returns, sales
from edge.checkout.payment_rules import PaymentRequest
from edge.errors import Conflict
from edge.members.models import Member
from edge.members.points import PointsRules, spend_points
from edge.members.service import sign_up
from edge.outbox.models import OutboxEvent
from sync.keys import generate_private_key, public_key_b64
from tests.builders import MILK, RICE, make_store

CLOUD_KEY = public_key_b64(generate_private_key())
RULES = PointsRules(point_value=1, daily_cap=800, timezone="Asia/Shanghai")


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "S001")


def _kiosk(store) -> Principal:
    return Principal(store.devices["kiosk"], "kiosk")


def _member(store, phone: str, balance: int) -> str:
    view, _ = sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=CLOUD_KEY,
        store_id="S001",
        phone=phone,
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
    )
    with store.db.write() as uow:  # the balance the cloud last gave this store
        uow.session.execute(update(Member).where(Member.id == view.id).values(balance=balance))
        uow.commit()
    return view.id


def _cart(store, member_id: str | None, *codes: str):
    kiosk = _kiosk(store)
    view = carts.create_cart(
        store.db, kiosk, channel="kiosk", currency="CNY", now=store.clock.now()
    )
    for code in codes:
        view = carts.add_line(
            store.db,
            kiosk,
            view.cart.id,
            barcode=code,
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    if member_id is not None:
        view, _ = carts.set_member(
            store.db,
            kiosk,
            view.cart.id,
            member_id,
            shop=store.ctx.shop,
            now=store.clock.now(),
            by_code=True,
        )
    return view


def _spend(store, view, points: int):
    return spend_points(
        store.db,
        None,
        _kiosk(store),
        view.cart.id,
        points,
        RULES,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )


def _refused(store, view, points: int) -> Conflict:
    with pytest.raises(Conflict) as caught:
        _spend(store, view, points)
    return caught.value


def _pay(store, view):
    payments = [PaymentRequest("cash", view.due)] if view.due else []
    return sales.checkout(
        store.ctx, _kiosk(store), view.cart.id, payments=payments, idempotency_key=uuid.uuid4().hex
    )


def _balance(store, member_id: str) -> int:
    with store.db.read() as s:
        return int(s.scalar(select(Member.balance).where(Member.id == member_id)))


def test_points_pay_part_of_the_sale_offline_and_the_event_says_so(store) -> None:
    member = _member(store, "13800000001", 500)
    view = _spend(store, _cart(store, member, RICE["barcodes"]), 300)
    assert (view.cart.points, view.cart.points_value, view.cart.points_hold_id) == (300, 300, None)
    assert view.due == view.totals.total - 300
    done = _pay(store, view).to_dict()["sale"]
    earned = (view.totals.total - 300) // 100  # points do not earn points
    assert done["points"] == {"earned": earned, "burned": 300, "balance_after": 500 - 300 + earned}
    assert done["payments"][0] == {"method": "points", "amount": 300, "reference": None}
    assert done["paid"] - done["change"] == done["total"]
    assert _balance(store, member) == 500 - 300 + earned
    with store.db.read() as s:
        payload = s.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.type == "sale.completed")
        ).one()
    assert json.loads(payload)["sale"]["member"] == {
        "id": member,
        "earned": earned,
        "burned": 300,
        "spend": view.totals.total,
        "hold_id": None,
        "offline": True,
    }


def test_offline_a_member_spends_no_more_than_the_balance_the_store_knows(store) -> None:
    member = _member(store, "13800000002", 250)
    view = _cart(store, member, RICE["barcodes"])
    error = _refused(store, view, 251)
    assert error.code == "points_offline_limit"
    assert error.details["limit"] == 250
    assert error.details["asked"] == 251
    assert _spend(store, view, 250).cart.points == 250
    # Another cart of the same member, at the same time: what the first set aside is not free.
    other = _cart(store, member, RICE["barcodes"])
    error = _refused(store, other, 1)
    assert (error.code, error.details["limit"], error.details["balance"]) == (
        "points_offline_limit",
        0,
        0,
    )


def test_offline_a_member_spends_no_more_than_the_daily_cap_at_this_store(store) -> None:
    member = _member(store, "13800000003", 5_000)
    _pay(store, _spend(store, _cart(store, member, RICE["barcodes"], RICE["barcodes"]), 600))
    view = _cart(store, member, RICE["barcodes"])
    error = _refused(store, view, 201)
    assert error.code == "points_offline_limit"
    assert error.details == {
        "limit": 200,
        "balance": 5_000 - 600 + _balance(store, member) - (5_000 - 600),
        "daily_cap": 800,
        "spent_today": 600,
        "asked": 201,
    }
    _pay(store, _spend(store, view, 200))
    assert _refused(store, _cart(store, member, RICE["barcodes"]), 1).details["limit"] == 0
    # The next day, the cap starts again.
    store.clock.advance(days=1)
    fresh = _cart(store, member, RICE["barcodes"], RICE["barcodes"])
    assert _spend(store, fresh, 800).cart.points == 800


def test_bad_spends_are_refused_and_change_nothing(store) -> None:
    member = _member(store, "13800000004", 100_000)
    no_member = _cart(store, None, MILK["barcodes"])
    assert _refused(store, no_member, 10).code == "no_member"
    view = _cart(store, member, MILK["barcodes"])
    error = _refused(store, view, view.totals.total + 1)
    assert error.code == "points_exceed_total"
    assert error.details["max_points"] == view.totals.total
    with store.db.raw_read() as tx:
        assert carts.load_cart(tx, _kiosk(store), view.cart.id).points == 0
    # Spent, then the member detached: the points come off with them.
    _spend(store, view, 100)
    detached, dropped = carts.set_member(
        store.db, _kiosk(store), view.cart.id, None, shop=store.ctx.shop, now=store.clock.now()
    )
    assert (detached.cart.points, detached.due, dropped) == (0, detached.totals.total, None)


def test_a_return_gives_spent_points_back_in_proportion(store) -> None:
    member = _member(store, "13800000005", 1_000)
    view = _spend(store, _cart(store, member, RICE["barcodes"], MILK["barcodes"]), 800)
    sale = _pay(store, view).to_dict()["sale"]
    after_sale = _balance(store, member)
    rice = next(line for line in sale["lines"] if line["sku"] == RICE["sku"])
    done = returns.create_return(
        store.ctx,
        Principal(store.devices["tablet"], "tablet"),
        sale["id"],
        lines=[returns.ReturnRequestLine(rice["id"], 1)],
        reason="damaged",
    )
    refunds = {r["method"]: r["amount"] for r in done["refunds"]}
    assert sum(refunds.values()) == rice["total"]
    # The points paid 800 of the total: the rice's refund gives back their share of it.
    expected_points = rice["total"] * 800 // sale["total"]
    assert abs(refunds["points"] - expected_points) <= 1
    with store.db.read() as s:
        payload = json.loads(
            s.scalars(select(OutboxEvent.payload).where(OutboxEvent.type == "return.created")).one()
        )
    assert payload["points_back"] == refunds["points"]
    earned = sale["points"]["earned"]
    taken = earned * rice["total"] // sale["total"]
    assert _balance(store, member) == after_sale + refunds["points"] - taken
