"""Enrollment: a one-time, expiring code registers a store's key; the answer pins the cloud."""

from __future__ import annotations

from sqlalchemy import select

from cloud.stores.models import StoreKey
from cloud.stores.service import revoke_store
from sync.keys import generate_private_key, public_key_b64
from sync.protocol import PROTOCOL_VERSION
from tests.cloud.harness import StoreClient


def test_a_code_enrolls_its_store_and_names_the_cloud_key(cloud):
    code = cloud.add_store("S001", name="Riverside", format="hypermarket", area_m2=5200)
    store = StoreClient(cloud, "S001")
    response = store.enroll(code)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["store_id"] == "S001"
    assert body["store"]["format"] == "hypermarket"
    assert body["store"]["area_m2"] == 5200
    assert body["cloud_public_key"] == public_key_b64(cloud.ctx.cloud_key)
    assert body["protocol_version"] == PROTOCOL_VERSION
    assert PROTOCOL_VERSION in body["accepted_protocol_versions"]
    assert body["timestamp_window_s"] == 300
    # The enrollment answer is signed by the key it announces.
    store.last_nonce = response.request.headers["X-Aisle-Nonce"]
    store.verify(response)
    with cloud.ctx.db.read() as session:
        keys = session.execute(select(StoreKey.public_key)).scalars().all()
    assert keys == [public_key_b64(store.key)]


def test_a_code_works_once(cloud):
    code = cloud.add_store("S001")
    assert StoreClient(cloud, "S001").enroll(code).status_code == 200
    again = StoreClient(cloud, "S001").enroll(code)
    assert again.status_code == 403
    assert again.get_json()["error"]["code"] == "enrollment_code_used"


def test_codes_expire(cloud):
    code = cloud.add_store("S001")
    cloud.clock.advance(seconds=cloud.ctx.settings.enrollment.code_ttl_s + 1)
    response = StoreClient(cloud, "S001").enroll(code)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "enrollment_code_expired"


def test_unknown_codes_and_codes_of_another_store_are_refused(cloud):
    response = StoreClient(cloud, "S001").enroll("AAAA-BBBB-CCCC-DDDD")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "enrollment_code_invalid"
    code = cloud.add_store("S002")
    response = StoreClient(cloud, "S001").enroll(code)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "store_mismatch"


def test_codes_ignore_case_and_dashes(cloud):
    code = cloud.add_store("S001")
    assert StoreClient(cloud, "S001").enroll(code.lower().replace("-", "")).status_code == 200


def test_enrollment_must_be_signed_by_the_key_it_registers(cloud):
    code = cloud.add_store("S001")
    store = StoreClient(cloud, "S001")
    response = store.enroll(code, key=generate_private_key())
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bad_signature"
    # The code was not spent by the failed attempt.
    assert store.enroll(code).status_code == 200


def test_a_revoked_store_cannot_enroll(cloud):
    code = cloud.add_store("S001")
    revoke_store(cloud.ctx.db, "S001", now=cloud.clock.now())
    response = StoreClient(cloud, "S001").enroll(code)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "store_revoked"


def test_a_malformed_key_is_refused(cloud):
    code = cloud.add_store("S001")
    response = cloud.client.post(
        "/api/v1/enroll", json={"code": code, "store_public_key": "x" * 44}
    )
    assert response.status_code in (401, 422)
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


def test_adding_an_enrolled_store_again_is_refused(cloud):
    cloud.store("S001")
    from cloud.errors import Conflict

    try:
        cloud.add_store("S001")
    except Conflict as exc:
        assert exc.code == "store_enrolled"
    else:
        raise AssertionError("adding an enrolled store again must fail")
