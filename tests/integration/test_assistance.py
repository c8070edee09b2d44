"""The attendant's board through the store's HTTP API on a real migrated SQLite file: a kiosk
calls for assistance once however often it presses, a cart holding age-restricted items waits
on the board until an attendant approves it, the board answers 304 to its own ETag while
nothing changed, and only staff read it."""

from __future__ import annotations

import pytest

from tests.builders import BAIJIU, MILK, make_app_for, make_store


@pytest.fixture
def store(tmp_path):
    made = make_store(tmp_path / "S001")
    yield made
    made.db.dispose()


def _as(store, role: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.tokens[role]}", **extra}


def _cart(client, store, role: str, *barcodes: str) -> dict:
    channel = "scan_to_buy" if role == "phone" else "kiosk"
    cart = client.post("/api/v1/carts", json={"channel": channel}, headers=_as(store, role))
    assert cart.status_code == 201, cart.get_json()
    body = cart.get_json()
    for code in barcodes:
        answer = client.post(
            f"/api/v1/carts/{body['id']}/lines", json={"barcode": code}, headers=_as(store, role)
        )
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
    return body


def test_a_call_is_made_once_shown_and_answered(store) -> None:
    client = make_app_for(store).test_client()
    cart = _cart(client, store, "kiosk", MILK["barcodes"])
    first = client.post(
        "/api/v1/assistance",
        json={"reason": "scale", "cart_id": cart["id"]},
        headers=_as(store, "kiosk", **{"Idempotency-Key": "call-1"}),
    )
    assert first.status_code == 201, first.get_json()
    call = first.get_json()
    assert call["device_name"] == "kiosk" and call["reason"] == "scale"
    assert call["cart_id"] == cart["id"] and call["answered_at"] is None
    # Pressing again (another key) is the same call, not a second one on the board.
    again = client.post("/api/v1/assistance", json={}, headers=_as(store, "kiosk"))
    assert again.status_code == 200 and again.get_json()["id"] == call["id"]
    mine = client.get("/api/v1/assistance/mine", headers=_as(store, "kiosk")).get_json()
    assert mine["call"]["id"] == call["id"]

    board = client.get("/api/v1/assistance", headers=_as(store, "tablet"))
    assert board.status_code == 200
    assert [c["id"] for c in board.get_json()["calls"]] == [call["id"]]
    etag = board.headers["ETag"]
    unchanged = client.get(
        "/api/v1/assistance", headers=_as(store, "tablet", **{"If-None-Match": etag})
    )
    assert unchanged.status_code == 304 and unchanged.get_data() == b""

    answered = client.post(
        f"/api/v1/assistance/{call['id']}/answer", headers=_as(store, "handheld")
    )
    assert answered.status_code == 200
    assert answered.get_json()["answered_by"] == store.devices["handheld"]
    changed = client.get(
        "/api/v1/assistance", headers=_as(store, "tablet", **{"If-None-Match": etag})
    )
    assert changed.status_code == 200 and changed.get_json()["calls"] == []
    assert changed.headers["ETag"] != etag
    mine = client.get("/api/v1/assistance/mine", headers=_as(store, "kiosk")).get_json()
    assert mine["call"] is None
    # The next press is a new call.
    assert (
        client.post("/api/v1/assistance", json={}, headers=_as(store, "kiosk")).status_code == 201
    )


def test_a_cart_with_a_bottle_waits_on_the_board_until_approved(store) -> None:
    client = make_app_for(store).test_client()
    plain = _cart(client, store, "kiosk", MILK["barcodes"])
    bottle = _cart(client, store, "phone", MILK["barcodes"], BAIJIU["barcodes"])
    board = client.get("/api/v1/assistance", headers=_as(store, "tablet")).get_json()
    assert [w["cart_id"] for w in board["approvals"]] == [bottle["id"]]
    waiting = board["approvals"][0]
    assert waiting["device_role"] == "phone"
    assert [(i["name"], i["quantity"]) for i in waiting["items"]] == [(BAIJIU["name"], 1)]
    assert plain["id"] not in {w["cart_id"] for w in board["approvals"]}

    approved = client.post(
        f"/api/v1/carts/{bottle['id']}/approvals", json={}, headers=_as(store, "tablet")
    )
    assert approved.status_code == 200, approved.get_json()
    assert (
        client.get("/api/v1/assistance", headers=_as(store, "tablet")).get_json()["approvals"] == []
    )
    # A second bottle is not covered: the cart is back on the board.
    line = approved.get_json()["lines"][1]["id"]
    more = client.patch(
        f"/api/v1/carts/{bottle['id']}/lines/{line}",
        json={"quantity": 2},
        headers=_as(store, "phone"),
    )
    assert more.status_code == 200, more.get_json()
    board = client.get("/api/v1/assistance", headers=_as(store, "tablet")).get_json()
    assert [(w["cart_id"], w["items"][0]["quantity"]) for w in board["approvals"]] == [
        (bottle["id"], 2)
    ]
    # A cart left for hours leaves the board.
    store.clock.advance(hours=5)
    assert (
        client.get("/api/v1/assistance", headers=_as(store, "tablet")).get_json()["approvals"] == []
    )


def test_who_may_call_and_who_reads_the_board(store) -> None:
    client = make_app_for(store).test_client()
    for role in ("kiosk", "phone", "exit"):
        assert client.get("/api/v1/assistance", headers=_as(store, role)).status_code == 403
    for role in ("tablet", "handheld", "manager", "exit"):
        assert (
            client.post("/api/v1/assistance", json={}, headers=_as(store, role)).status_code == 403
        )
    # A phone cannot name another device's cart, nor a paid one.
    other = _cart(client, store, "kiosk", MILK["barcodes"])
    answer = client.post(
        "/api/v1/assistance", json={"cart_id": other["id"]}, headers=_as(store, "phone")
    )
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "unknown_cart"
    assert client.get("/api/v1/assistance", headers=_as(store, "tablet")).get_json()["calls"] == []
    unknown = client.post("/api/v1/assistance/nope/answer", headers=_as(store, "tablet"))
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_call"
