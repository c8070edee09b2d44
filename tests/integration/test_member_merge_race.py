"""A member merged away between their lookup and the cart's write: the store's pull renames
the member it keeps under a merged id to the survivor's while a device is attaching them.

The attach answers the survivor, as a lookup a moment later would; the cart write alone,
given an id the store no longer keeps, is a clean 409 ``member_changed`` and writes nothing.
"""

from __future__ import annotations

import pytest

import edge.members.points as points
from edge.auth.service import Principal
from edge.checkout import carts
from edge.errors import Conflict
from edge.members.service import apply_member_merges, sign_up
from shared.ids import new_id
from shared.member_codes import new_member_code
from sync.contract import MemberMergeItem
from sync.keys import generate_private_key, public_key_b64
from tests.builders import MILK, make_store

PHONE = "13655550009"


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "S001")


def _kiosk(store) -> Principal:
    return Principal(store.devices["kiosk"], "kiosk")


def _signed_up(store) -> str:
    view, _ = sign_up(
        store.db,
        store.ctx.members_keyring,
        cloud_key=public_key_b64(generate_private_key()),
        store_id="S001",
        phone=PHONE,
        name=None,
        device_id=store.devices["kiosk"],
        recruited_by=None,
        region="CN",
        now=store.clock.now(),
    )
    return view.id


def _cart(store) -> str:
    view = carts.create_cart(
        store.db, _kiosk(store), channel="kiosk", currency="CNY", now=store.clock.now()
    )
    view = carts.add_line(
        store.db,
        _kiosk(store),
        view.cart.id,
        barcode=MILK["barcodes"],
        quantity=None,
        rules=store.ctx.scan_rules,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    return view.cart.id


def _merge(store, merged: str) -> tuple[str, str]:
    survivor, code = new_id(), new_member_code()
    with store.db.write() as uow:
        apply_member_merges(
            uow.session,
            [
                MemberMergeItem(
                    member_id=merged,
                    survivor_id=survivor,
                    survivor_code=code,
                    merged_at=store.clock.now().isoformat(),
                )
            ],
            store.clock.now(),
        )
        uow.commit()
    return survivor, code


def _merged_after_the_first_lookup(store, monkeypatch) -> list[str]:
    """A member signed up here, whom the store's pull merges away right after the first lookup
    of them: the list gets the survivor's id then."""
    merged = _signed_up(store)
    survivor: list[str] = []
    looked_up = points.find_member

    def find_then_merged(*args, **kwargs):
        found = looked_up(*args, **kwargs)
        if not survivor:  # the pull commits the merge right after the first lookup
            survivor.append(_merge(store, merged)[0])
        return found

    monkeypatch.setattr(points, "find_member", find_then_merged)
    return survivor


def test_a_cart_write_naming_a_member_merged_away_is_refused_cleanly(store) -> None:
    merged = _signed_up(store)
    cart_id = _cart(store)
    _merge(store, merged)
    with pytest.raises(Conflict) as refused:
        carts.set_member(
            store.db, _kiosk(store), cart_id, merged, shop=store.ctx.shop, now=store.clock.now()
        )
    assert refused.value.code == "member_changed"
    assert refused.value.details == {"member_id": merged}
    assert carts.get_cart(store.db, _kiosk(store), cart_id, shop=store.ctx.shop).member is None


def test_an_attach_raced_by_a_merge_answers_the_survivor(store, monkeypatch) -> None:
    cart_id = _cart(store)
    survivor = _merged_after_the_first_lookup(store, monkeypatch)
    view = points.attach_member(
        store.db,
        store.ctx.members_keyring,
        None,
        _kiosk(store),
        cart_id,
        PHONE,
        region="CN",
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    assert view.member is not None and view.member["id"] == survivor[0]


def test_a_cart_opened_for_a_member_merged_meanwhile_opens_for_the_survivor(
    store, monkeypatch
) -> None:
    survivor = _merged_after_the_first_lookup(store, monkeypatch)
    view = points.open_cart_for(
        store.db,
        store.ctx.members_keyring,
        None,
        _kiosk(store),
        PHONE,
        channel="kiosk",
        currency="CNY",
        region="CN",
        now=store.clock.now(),
    )
    assert view.member is not None and view.member["id"] == survivor[0]
    with store.db.raw_read() as tx:
        # The first try's insert was rolled back with its refusal: one cart, the survivor's.
        assert [tuple(row) for row in tx.all("SELECT member_id FROM carts")] == [(survivor[0],)]
