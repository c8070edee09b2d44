"""Every sync request is signed by its store, fresh and never replayed; nothing else applies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from cloud.sales.models import Sale
from cloud.stores.models import ApiToken
from cloud.stores.service import revoke_store
from sync.keys import generate_private_key
from tests.cloud.harness import make_cloud, sales


def _sales(cloud) -> int:
    with cloud.ctx.db.read() as session:
        return int(session.execute(select(func.count()).select_from(Sale)).scalar_one())


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert set(error) == {"code", "message", "details"}
    return error


def test_a_batch_signed_by_store_a_claiming_store_b_is_refused(cloud):
    a, b = cloud.store("S001"), cloud.store("S002")
    # A signs with its own key but names B in the headers: B's key does not verify it.
    _error(a.push(sales("S002", [1]), store_id="S002"), 401, "bad_signature")
    # A signs honestly as A but the batch claims to be B's events.
    body = a.batch(sales("S002", [1]), store_id="S002")
    _error(a.signed("POST", "/api/v1/sync/push", body), 403, "store_mismatch")
    assert _sales(cloud) == 0
    assert b.push(sales("S002", [1])).status_code == 200


def test_a_replayed_request_is_refused(cloud):
    store = cloud.store()
    body = store.batch(sales("S001", [1, 2]))
    first = store.signed("POST", "/api/v1/sync/push", body, nonce="n" * 22)
    assert first.status_code == 200
    _error(store.signed("POST", "/api/v1/sync/push", body, nonce="n" * 22), 401, "replayed_request")
    assert _sales(cloud) == 2


def test_a_tampered_body_is_refused(cloud):
    store = cloud.store()
    honest = store.batch(sales("S001", [1]))
    tampered = store.batch(sales("S001", [1]))
    response = store.signed(
        "POST", "/api/v1/sync/push", honest, headers={}
    )  # control: the honest body passes
    assert response.status_code == 200
    from sync.signing import sign_request

    headers = sign_request(
        store.key,
        method="POST",
        target="/api/v1/sync/push",
        store_id="S001",
        body=honest,
        now=cloud.clock.now(),
    )
    response = cloud.client.post("/api/v1/sync/push", data=tampered, headers=headers)
    _error(response, 401, "bad_signature")
    assert _sales(cloud) == 1


def test_unsigned_requests_are_refused(cloud):
    store = cloud.store()
    body = store.batch(sales("S001", [1]))
    _error(cloud.client.post("/api/v1/sync/push", data=body), 401, "unsigned_request")
    _error(cloud.client.get("/api/v1/sync/pull?feed=catalog"), 401, "unsigned_request")
    assert _sales(cloud) == 0


def test_a_wrong_key_is_refused(cloud):
    store = cloud.store()
    _error(store.push(sales("S001", [1]), key=generate_private_key()), 401, "bad_signature")
    _error(store.pull("catalog", key=generate_private_key()), 401, "bad_signature")


def test_an_unknown_store_is_refused(cloud):
    cloud.store("S001")
    stranger = cloud.store("S002")
    stranger.store_id = "S404"
    _error(stranger.push(sales("S404", [1])), 401, "unknown_store")


def test_a_revoked_store_is_refused_at_once(cloud):
    store = cloud.store()
    assert store.push(sales("S001", [1])).status_code == 200
    revoke_store(cloud.ctx.db, "S001", now=cloud.clock.now())
    _error(store.push(sales("S001", [2])), 403, "store_revoked")
    _error(store.pull("catalog"), 403, "store_revoked")
    assert _sales(cloud) == 1


@pytest.mark.parametrize("offset", [-400, 400, -3 * 86400])
def test_stale_or_future_timestamps_are_refused_and_the_skew_reported(cloud, offset):
    store = cloud.store()
    at = cloud.clock.now() + timedelta(seconds=offset)
    error = _error(store.push(sales("S001", [1]), at=at), 401, "stale_request")
    assert error["details"]["skew_s"] == offset
    assert error["details"]["window_s"] == 300
    assert _sales(cloud) == 0
    state = cloud.hq("/api/v1/stores/S001/sync-state").get_json()
    assert state["clock_skew_s"] == offset


def test_skew_inside_the_window_is_accepted_and_reported(cloud):
    store = cloud.store()
    at = cloud.clock.now() - timedelta(seconds=90)
    assert store.push(sales("S001", [1]), at=at).status_code == 200
    assert cloud.hq("/api/v1/stores/S001/sync-state").get_json()["clock_skew_s"] == -90


def test_unsupported_protocol_versions_are_refused_with_a_clear_error(cloud):
    store = cloud.store()
    for version in (0, 99):
        store.protocol = version
        error = _error(store.push(sales("S001", [1])), 426, "unsupported_protocol_version")
        assert error["details"]["accepted"] == [1]
    assert _sales(cloud) == 0


def test_a_cloud_accepts_edges_one_version_behind(database_url, tmp_path):
    # A cloud at protocol 2 serves version 1 edges and refuses version 0 and 3.
    cloud = make_cloud(tmp_path / "cloud2", database_url, protocol_version=2)
    try:
        store = cloud.store()
        store.protocol = 1
        assert store.push(sales("S001", [1])).status_code == 200
        store.protocol = 2
        assert store.push(sales("S001", [2])).status_code == 200
        for version in (0, 3):
            store.protocol = version
            error = _error(store.push(sales("S001", [3])), 426, "unsupported_protocol_version")
            assert error["details"] == {"accepted": [1, 2], "current": 2}
        assert cloud.hq("/api/v1/stores/S001/sync-state").get_json()["protocol_version"] == 2
    finally:
        cloud.close()


def test_malformed_and_oversized_batches_are_refused(cloud):
    store = cloud.store()
    _error(store.signed("POST", "/api/v1/sync/push", b"not gzip"), 400, "bad_batch")
    limit = cloud.ctx.settings.sync.max_batch_events
    from sync.protocol import encode_batch

    big = encode_batch(
        "S001",
        [dict(e) for e in sales("S001", range(1, limit + 2))],
        batch_id="b",
        max_events=limit + 1,
    )
    _error(store.signed("POST", "/api/v1/sync/push", big), 413, "batch_too_large")
    assert _sales(cloud) == 0


def test_error_answers_to_signed_requests_are_signed_too(cloud):
    # The edge acts on refusals (revoked, diverged, unsupported version): they must be genuine.
    store = cloud.store()
    revoke_store(cloud.ctx.db, "S001", now=cloud.clock.now())
    response = store.push(sales("S001", [1]))
    assert response.status_code == 403
    store.verify(response)


def _revoke_tokens(cloud) -> None:
    with cloud.ctx.db.write() as uow:
        uow.session.execute(update(ApiToken).values(revoked_at=cloud.clock.now()))
        uow.commit()


@pytest.mark.parametrize("cache_s", [0, 300])
def test_a_revoked_hq_token_is_refused_once_its_check_lapses(database_url, tmp_path, cache_s):
    cloud = make_cloud(tmp_path / "hq", database_url, settings={"server.token_cache_s": cache_s})
    try:
        assert cloud.hq("/api/v1/quarantine").status_code == 200
        _revoke_tokens(cloud)
        after = cloud.hq("/api/v1/quarantine")
        if cache_s:
            # The worker trusts a token it checked for server.token_cache_s: the revocation
            # has not reached it yet (the price of one statement a lookup rather than two).
            assert after.status_code == 200
        else:
            assert after.status_code == 401
            assert after.get_json()["error"]["code"] == "unauthorized"
        # Only tokens found good are remembered: a made-up one is refused every time.
        for _ in range(2):
            made_up = cloud.client.get(
                "/api/v1/quarantine", headers={"Authorization": "Bearer aisle_hq_made-up"}
            )
            assert made_up.status_code == 401
    finally:
        cloud.close()
