"""Pairing a device with a manager's six-digit code, through the store's HTTP API on a real
migrated SQLite file: the code pairs once and gives a working token of its role; a used, expired
or wrong code is refused alike; wrong guesses void the live codes; only a manager makes codes,
never for a manager login; only the code's hash is kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from edge.auth import pairing
from tests.builders import make_app_for, make_store


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "S001")


def _as(store, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.tokens[role]}"}


def _code(client, store, role: str = "kiosk", **extra: Any) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/pairing-codes",
        json={"role": role, "name": f"{role} by the door", **extra},
        headers=_as(store, "manager"),
    )
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def _pair(client, code: str) -> Any:
    return client.post("/api/v1/pairing", json={"code": code})


def test_a_code_pairs_one_device_of_its_role_once(store) -> None:
    client = make_app_for(store).test_client()
    made = _code(client, store, "kiosk")
    assert len(made["code"]) == 6 and made["code"].isdigit()
    assert made["expires_at"] == (store.clock.now() + pairing.DEFAULT_TTL).isoformat()
    paired = _pair(client, made["code"])
    assert paired.status_code == 201, paired.get_json()
    device = paired.get_json()
    assert (device["role"], device["name"]) == ("kiosk", "kiosk by the door")
    # The token works, as the role it was made for: a kiosk opens carts, and is no manager.
    token = {"Authorization": f"Bearer {device['token']}"}
    cart = client.post("/api/v1/carts", json={"channel": "kiosk"}, headers=token)
    assert cart.status_code == 201, cart.get_json()
    assert client.get("/api/v1/devices", headers=token).status_code == 403
    listed = client.get("/api/v1/devices", headers=_as(store, "manager")).get_json()["devices"]
    assert device["device_id"] in {d["id"] for d in listed}
    # Once only.
    again = _pair(client, made["code"])
    assert (again.status_code, again.get_json()["error"]["code"]) == (404, "pairing_code_invalid")
    # Only the code's hash is on disk.
    with store.db.read() as session:
        kept = session.execute(text("SELECT code_hash, device_id FROM pairing_codes")).one()
    assert made["code"] not in kept[0] and kept[1] == device["device_id"]


def test_an_expired_code_is_refused_like_a_wrong_one(store) -> None:
    client = make_app_for(store).test_client()
    made = _code(client, store, "phone", ttl_s=60)
    store.clock.advance(seconds=61)
    late = _pair(client, made["code"])
    assert (late.status_code, late.get_json()["error"]["code"]) == (404, "pairing_code_invalid")


def test_wrong_guesses_void_the_live_codes(store) -> None:
    client = make_app_for(store).test_client()
    made = _code(client, store, "handheld")
    wrong = f"{(int(made['code']) + 1) % 1_000_000:06d}"
    for _ in range(pairing.MAX_FAILURES):
        assert _pair(client, wrong).status_code == 404
    # Ten wrong codes were tried while it was live: the right one no longer pairs.
    assert _pair(client, made["code"]).status_code == 404
    with store.db.read() as session:
        assert session.execute(text("SELECT voided_at FROM pairing_codes")).scalar() is not None
    # A new code works.
    assert _pair(client, _code(client, store, "handheld")["code"]).status_code == 201


def test_who_may_make_codes_and_for_what(store) -> None:
    client = make_app_for(store).test_client()
    for role in ("kiosk", "tablet", "handheld"):
        answer = client.post(
            "/api/v1/pairing-codes", json={"role": "kiosk"}, headers=_as(store, role)
        )
        assert answer.status_code == 403, role
    for body in (
        {"role": "manager"},
        {"role": "kiosk", "ttl_s": 0},
        {"role": "kiosk", "ttl_s": 3601},
        {"role": "kiosk", "name": "bad\x00name"},
    ):
        answer = client.post("/api/v1/pairing-codes", json=body, headers=_as(store, "manager"))
        assert answer.status_code == 422, body
    full_width = "\uff11\uff12\uff13\uff14\uff15\uff16"
    for bad in ("12345", "1234567", "12a456", full_width):
        answer = _pair(client, bad)
        assert answer.status_code == 422, bad
    with store.db.read() as session:
        assert session.execute(text("SELECT count(*) FROM pairing_codes")).scalar() == 0


def test_the_store_qr_joins_any_number_of_phones_until_a_new_one_is_made(store) -> None:
    client = make_app_for(store).test_client()
    made = client.post("/api/v1/store-qr", headers=_as(store, "tablet"))
    assert made.status_code == 201, made.get_json()
    poster = made.get_json()
    assert poster["url"].startswith("http://localhost/go#join=") and "<svg" in poster["qr_svg"]
    token = poster["url"].split("#join=")[1]
    phones = [client.post("/api/v1/pairing", json={"join": token}) for _ in range(2)]
    assert [p.status_code for p in phones] == [201, 201]
    assert {p.get_json()["role"] for p in phones} == {"phone"}
    assert len({p.get_json()["token"] for p in phones}) == 2
    phone = {"Authorization": f"Bearer {phones[0].get_json()['token']}"}
    assert client.get("/api/v1/me", headers=phone).get_json()["role"] == "phone"
    # The phone's token lasts a month, then the phone scans the poster again.
    listed = client.get("/api/v1/devices", headers=_as(store, "manager")).get_json()["devices"]
    joined = next(d for d in listed if d["id"] == phones[0].get_json()["device_id"])
    assert joined["expires_at"] is not None
    # The manager's list of the store's own devices leaves the shoppers' phones out and counts
    # those that may still shop; the month over, the joined ones count no more.
    own = client.get("/api/v1/devices?phones=false", headers=_as(store, "manager")).get_json()
    assert {d["role"] for d in own["devices"]} == {d["role"] for d in listed} - {"phone"}
    active = sum(d["role"] == "phone" and d["status"] == "active" for d in listed)
    assert own["phones_active"] == active >= 2
    store.clock.advance(days=31)
    later = client.get("/api/v1/devices", headers=_as(store, "manager")).get_json()
    assert later["phones_active"] == active - 2
    assert (
        client.get("/api/v1/devices?phones=maybe", headers=_as(store, "manager")).status_code == 422
    )
    store.clock.advance(days=-31)
    # Only the hash is kept; a new poster retires the old one.
    with store.db.read() as s:
        kept = s.execute(text("SELECT token_hash FROM store_qr_codes")).scalars().all()
    assert token not in str(kept)
    client.post("/api/v1/store-qr", headers=_as(store, "manager"))
    old = client.post("/api/v1/pairing", json={"join": token})
    assert (old.status_code, old.get_json()["error"]["code"]) == (404, "store_qr_invalid")
    # Shoppers cannot make posters; a body with both a code and a join token is refused.
    assert client.post("/api/v1/store-qr", headers=_as(store, "phone")).status_code == 403
    for body in ({"join": token, "code": "123456"}, {"cookie": True}):
        refused = client.post("/api/v1/pairing", json=body)
        assert refused.status_code == 422
        assert refused.get_json()["error"]["code"] == "pairing_code_or_join"


def test_a_manager_renames_a_device(store) -> None:
    client = make_app_for(store).test_client()
    kiosk = store.devices["kiosk"]
    renamed = client.patch(
        f"/api/v1/devices/{kiosk}",
        json={"name": "kiosk by the door"},
        headers=_as(store, "manager"),
    )
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "kiosk by the door"
    me = client.get("/api/v1/me", headers=_as(store, "kiosk")).get_json()
    assert me["name"] == "kiosk by the door"
    assert (
        client.patch(
            f"/api/v1/devices/{kiosk}", json={"name": "x"}, headers=_as(store, "tablet")
        ).status_code
        == 403
    )
    bad = client.patch(
        f"/api/v1/devices/{kiosk}", json={"name": "a\u202eb"}, headers=_as(store, "manager")
    )
    assert bad.status_code == 422
    missing = client.patch(
        "/api/v1/devices/nope", json={"name": "x"}, headers=_as(store, "manager")
    )
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "unknown_device")
