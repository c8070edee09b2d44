"""Pull: feeds paged by cursor, signed by the cloud, with each store's own prices, and a paged
snapshot (never a restart from zero) for a cursor older than the history kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cloud.catalog.service import set_store_price
from cloud.changes.log import prune_changes
from cloud.changes.models import Change
from sync.keys import generate_private_key, load_public_key_b64, public_key_b64
from sync.protocol import SNAPSHOT_FIRST_PULL, SNAPSHOT_NEW_EPOCH, SNAPSHOT_PRUNED, PullPage
from sync.signing import SignatureError, verify_response
from tests.cloud.harness import catalog_csv, ean13


def test_catalog_pages_follow_the_cursor_to_the_end(cloud):
    store = cloud.store()
    cloud.import_catalog(catalog_csv(25))
    first = store.pull("catalog", limit=10)
    assert first.status_code == 200
    page = PullPage.from_dict(first.get_json())
    assert (len(page.changes), page.has_more, page.snapshot) == (10, True, False)
    item = page.changes[0].data
    assert item["sku"] == "SKU0001"
    assert item["barcodes"] == ["0" + ean13("690000000001")]
    assert (item["unit_price"], item["price_source"], item["tax_rate_bp"]) == (1001, "chain", 900)
    everything, cursor, flags = store.pull_all("catalog", limit=10)
    assert len(everything) == 25
    assert flags == [False, False, False]
    # Nothing new: the same cursor answers an empty page.
    empty = store.pull("catalog", cursor).get_json()
    assert (empty["changes"], empty["has_more"], empty["next_cursor"]) == ([], False, cursor)
    # A change later is served after the cursor, alone.
    cloud.clock.advance(minutes=1)
    cloud.import_catalog(catalog_csv(1, price=5000))
    page = store.pull("catalog", cursor).get_json()
    assert [c["data"]["unit_price"] for c in page["changes"]] == [5001]


def test_pull_answers_are_signed_by_the_pinned_cloud_key(cloud):
    store = cloud.store()
    cloud.import_catalog(catalog_csv(3))
    response = store.pull("prices")  # store.pull verifies; check the failure cases too
    body, headers = response.get_data(), dict(response.headers.items())
    pinned = load_public_key_b64(store.cloud_public_key)
    with pytest.raises(SignatureError):
        verify_response(
            pinned,
            request_nonce=store.last_nonce,
            status=200,
            body=body.replace(b"1001", b"1"),
            headers=headers,
        )
    with pytest.raises(SignatureError):
        verify_response(
            generate_private_key().public_key(),
            request_nonce=store.last_nonce,
            status=200,
            body=body,
            headers=headers,
        )
    with pytest.raises(SignatureError):  # an old page replayed as the answer to a new request
        verify_response(pinned, request_nonce="x" * 22, status=200, body=body, headers=headers)
    assert store.cloud_public_key == public_key_b64(cloud.ctx.cloud_key)


def test_store_price_overrides_reach_only_their_store(cloud):
    a, b = cloud.store("S001"), cloud.store("S002")
    cloud.import_catalog(catalog_csv(3))
    _, cursor_a, _ = a.pull_all("prices")
    _, cursor_b, _ = b.pull_all("prices")
    set_store_price(
        cloud.ctx.db, store_id="S001", sku="SKU0002", unit_price=777, now=cloud.clock.now()
    )
    page_a = a.pull("prices", cursor_a).get_json()
    assert page_a["changes"] == [
        {
            "key": "SKU0002",
            "data": {
                "sku": "SKU0002",
                "unit_price": 777,
                "chain_unit_price": 1002,
                "price_source": "store",
            },
        }
    ]
    assert b.pull("prices", cursor_b).get_json()["changes"] == []
    catalog_a, _, _ = a.pull_all("catalog")
    catalog_b, _, _ = b.pull_all("catalog")
    assert catalog_a["SKU0002"]["unit_price"] == 777
    assert catalog_b["SKU0002"]["unit_price"] == 1002
    # Clearing the override sends the chain price back to that store.
    set_store_price(
        cloud.ctx.db, store_id="S001", sku="SKU0002", unit_price=None, now=cloud.clock.now()
    )
    page_a = a.pull("prices", page_a["next_cursor"]).get_json()
    assert page_a["changes"][0]["data"]["unit_price"] == 1002


def test_store_settings_feed_carries_the_store_only(cloud):
    a = cloud.store("S001", name="Riverside", format="convenience", area_m2=120)
    cloud.store("S002")
    settings, _, _ = a.pull_all("store_settings")
    assert list(settings) == ["S001"]
    assert settings["S001"]["format"] == "convenience"
    assert settings["S001"]["area_m2"] == 120


def test_a_cursor_older_than_the_history_gets_a_paged_snapshot(cloud):
    store = cloud.store()
    cloud.import_catalog(catalog_csv(12))
    _, old_cursor, _ = store.pull_all("catalog", limit=5)
    # Weeks pass: prices change, history is pruned past the store's cursor.
    cloud.clock.advance(days=30)
    cloud.import_catalog(catalog_csv(12, price=2000))
    cloud.clock.advance(days=100)
    with cloud.ctx.db.write() as uow:
        pruned = prune_changes(
            uow.session, older_than=cloud.clock.now() - timedelta(days=90), now=cloud.clock.now()
        )
        uow.commit()
    assert pruned["catalog"] == 24
    cloud.import_catalog(catalog_csv(2, price=3000))  # recent history, still in the log
    first = store.pull("catalog", old_cursor, 5).get_json()
    assert (first["snapshot"], first["snapshot_reason"]) == (True, SNAPSHOT_PRUNED)
    everything, cursor, flags = store.pull_all("catalog", old_cursor, limit=5)
    assert flags[0] is True, "the answer must say it is a snapshot"
    assert flags == [True, True, True]
    assert len(everything) == 12
    assert everything["SKU0001"]["unit_price"] == 3001
    assert everything["SKU0012"]["unit_price"] == 2012
    # From here on it is an ordinary feed again.
    assert store.pull("catalog", cursor).get_json() == {
        "feed": "catalog",
        "changes": [],
        "next_cursor": cursor,
        "has_more": False,
        "snapshot": False,
        "snapshot_reason": None,
    }


def test_a_new_store_after_pruning_starts_with_a_snapshot(cloud):
    cloud.import_catalog(catalog_csv(4))
    cloud.clock.advance(days=100)
    with cloud.ctx.db.write() as uow:
        prune_changes(uow.session, older_than=cloud.clock.now(), now=cloud.clock.now())
        uow.commit()
    with cloud.ctx.db.read() as session:
        assert session.execute(select(func.count()).select_from(Change)).scalar_one() == 0
    store = cloud.store("S009")
    assert store.pull("catalog").get_json()["snapshot_reason"] == SNAPSHOT_FIRST_PULL
    everything, _, flags = store.pull_all("catalog")
    assert len(everything) == 4
    assert flags[0] is True


def test_bad_cursors_feeds_and_limits_are_clear_errors(cloud):
    store = cloud.store()
    bad = ("garbage", "1.x.2", "9.0.0", "1.-1.0", "1.0.0.zz", "2.ab.1.2", "2.a-b.1.2.3")
    for cursor in (*bad, "2.ab.-1.2.3", "2.ab.1.2.3.zz", f"2.ab.1.2.{1 << 63}"):
        response = store.pull("catalog", cursor)
        assert response.status_code == 400, cursor
        assert response.get_json()["error"]["code"] == "bad_cursor"
    response = store.pull("members")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_feed"
    response = store.pull("catalog", limit=5000)
    assert response.status_code == 422


def test_a_cursor_from_before_feed_epochs_gets_a_snapshot_not_an_error(cloud):
    """A store that pulled from the cloud before it had epochs holds a version-1 cursor."""
    store = cloud.store()
    cloud.import_catalog(catalog_csv(3))
    page = store.pull("prices", "1.0.2").get_json()
    assert (page["snapshot"], page["snapshot_reason"]) == (True, SNAPSHOT_NEW_EPOCH)
    assert sorted(c["key"] for c in page["changes"]) == ["SKU0001", "SKU0002", "SKU0003"]
    assert page["next_cursor"].startswith("2.")
