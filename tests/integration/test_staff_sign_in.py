"""Staff sign-in on a tablet through the store's HTTP API on a real migrated SQLite file: a staff
id and PIN open a session; five wrong PINs lock the account for fifteen minutes; a manager
signed in on a tablet has the manager's routes there until sign-out; approvals, stock counts
and member sign-ups record who was signed in; only the PIN's hash is kept."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from aisle.cli import main
from edge.auth.staff import add_staff
from sync.keys import generate_private_key, load_or_create_private_key, public_key_b64
from tests.builders import BAIJIU, MILK, make_app_for, make_store


@pytest.fixture
def store(tmp_path):
    made = make_store(tmp_path / "S001")
    add_staff(
        made.db, staff_id="E100", name="Li Wei", role="attendant", pin="2468", now=made.clock.now()
    )
    add_staff(
        made.db, staff_id="M1", name="Zhang Min", role="manager", pin="135790", now=made.clock.now()
    )
    yield made
    made.db.dispose()


def _as(store, role: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.tokens[role]}", **extra}


def _sign_in(client, store, staff_id: str, pin: str, role: str = "tablet"):
    return client.post(
        "/api/v1/staff/sign-in", json={"staff_id": staff_id, "pin": pin}, headers=_as(store, role)
    )


def test_a_manager_signed_in_on_a_tablet_has_the_managers_routes_until_sign_out(store) -> None:
    client = make_app_for(store).test_client()
    assert client.get("/api/v1/devices", headers=_as(store, "tablet")).status_code == 403
    signed = _sign_in(client, store, "M1", "135790")
    assert signed.status_code == 201, signed.get_json()
    body = signed.get_json()
    assert (body["staff_id"], body["name"], body["role"]) == ("M1", "Zhang Min", "manager")
    session = {"X-Staff-Session": body["token"]}
    me = client.get("/api/v1/me", headers=_as(store, "tablet", **session)).get_json()
    assert me["role"] == "manager" and me["staff"] == {"id": "M1", "name": "Zhang Min"}
    assert client.get("/api/v1/devices", headers=_as(store, "tablet", **session)).status_code == 200
    # The session is this tablet's: another device sending it is just itself.
    other = client.get("/api/v1/devices", headers=_as(store, "handheld", **session))
    assert other.status_code == 403
    out = client.post("/api/v1/staff/sign-out", headers=_as(store, "tablet", **session))
    assert out.status_code == 200
    assert client.get("/api/v1/devices", headers=_as(store, "tablet", **session)).status_code == 403
    # An attendant signed in is still a tablet.
    attendant = _sign_in(client, store, "E100", "2468").get_json()["token"]
    me = client.get("/api/v1/me", headers=_as(store, "tablet", **{"X-Staff-Session": attendant}))
    assert me.get_json()["role"] == "tablet" and me.get_json()["staff"]["id"] == "E100"


def test_five_wrong_pins_lock_the_account_for_fifteen_minutes(store) -> None:
    client = make_app_for(store).test_client()
    unknown = _sign_in(client, store, "NOBODY", "2468")
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (
        403,
        "staff_sign_in_failed",
    )
    for _ in range(5):
        wrong = _sign_in(client, store, "E100", "1111")
        assert wrong.get_json()["error"]["code"] == "staff_sign_in_failed"
    locked = _sign_in(client, store, "E100", "2468")  # the right PIN, too late
    assert (locked.status_code, locked.get_json()["error"]["code"]) == (409, "staff_locked")
    assert locked.get_json()["error"]["details"]["locked_until"]
    store.clock.advance(minutes=16)
    assert _sign_in(client, store, "E100", "2468").status_code == 201
    # Four wrong then a right one: the count starts again.
    for _ in range(4):
        _sign_in(client, store, "E100", "1111")
    assert _sign_in(client, store, "E100", "2468").status_code == 201
    assert _sign_in(client, store, "E100", "1111").status_code == 403
    assert _sign_in(client, store, "E100", "2468").status_code == 201
    # Kiosks and phones have no staff; a PIN that is not 4-8 digits is refused as such.
    assert _sign_in(client, store, "E100", "2468", role="kiosk").status_code == 403
    assert _sign_in(client, store, "E100", "24").status_code == 422
    with sqlite3.connect(store.settings.database_path) as conn:
        hashes = [r[0] for r in conn.execute("SELECT pin_hash FROM staff")]
    assert all(h.startswith("scrypt$") and "2468" not in h for h in hashes)


def test_approvals_counts_and_sign_ups_record_the_staff_member(store) -> None:
    client = make_app_for(store).test_client()
    token = _sign_in(client, store, "E100", "2468").get_json()["token"]
    tablet = _as(store, "tablet", **{"X-Staff-Session": token})
    cart = client.post("/api/v1/carts", json={"channel": "kiosk"}, headers=_as(store, "kiosk"))
    cart_id = cart.get_json()["id"]
    client.post(
        f"/api/v1/carts/{cart_id}/lines",
        json={"barcode": BAIJIU["barcodes"]},
        headers=_as(store, "kiosk"),
    )
    approved = client.post(f"/api/v1/carts/{cart_id}/approvals", json={}, headers=tablet)
    assert approved.status_code == 200, approved.get_json()
    approval = approved.get_json()["approval"]
    assert (approval["approved_by"], approval["approved_staff_id"]) == (
        store.devices["tablet"],
        "E100",
    )
    moved = client.post(
        "/api/v1/stock/movements",
        json={"sku": MILK["sku"], "quantity": 3, "kind": "adjust", "reason": "count"},
        headers={**tablet, "Idempotency-Key": "count-1"},
    )
    assert moved.status_code == 201, moved.get_json()
    # A member signed up at the tablet (the store enrolled, its cloud not answering).
    load_or_create_private_key(store.settings.sync_key_path)
    with sqlite3.connect(store.settings.database_path) as conn:
        conn.execute(
            "INSERT INTO cloud_link (id, cloud_url, store_id, cloud_public_key, protocol_version, "
            "max_batch_events, max_batch_bytes, enrolled_at) VALUES (1, 'http://127.0.0.1:9', "
            "'S001', ?, 1, 1000, 2097152, '2026-11-27 08:00:00.000000')",
            (public_key_b64(generate_private_key()),),
        )
    signed_up = client.post("/api/v1/members", json={"phone": "13800138000"}, headers=tablet)
    assert signed_up.status_code == 201, signed_up.get_json()
    with sqlite3.connect(store.settings.database_path) as conn:
        staff = conn.execute(
            "SELECT staff_id FROM stock_movements WHERE id = ?", (moved.get_json()["id"],)
        ).fetchone()[0]
        payload = conn.execute(
            "SELECT payload FROM outbox WHERE type = 'member.signed_up'"
        ).fetchone()[0]
    assert staff == "E100"
    assert json.loads(payload)["recruited_by"] == "E100"
    # A sale rung up at the tablet (a bottle at the service desk): the sale and its event name
    # the staff member.
    cart = client.post("/api/v1/carts", json={"channel": "kiosk"}, headers=tablet).get_json()
    cart = client.post(
        f"/api/v1/carts/{cart['id']}/lines", json={"barcode": MILK["barcodes"]}, headers=tablet
    ).get_json()
    paid = client.post(
        f"/api/v1/carts/{cart['id']}/checkout",
        json={"payments": [{"method": "cash", "amount": cart["due"]}]},
        headers={**tablet, "Idempotency-Key": "desk-sale-1"},
    )
    assert paid.status_code == 201, paid.get_json()
    sale = paid.get_json()["sale"]
    assert sale["staff_id"] == "E100"
    with sqlite3.connect(store.settings.database_path) as conn:
        event = conn.execute(
            "SELECT payload FROM outbox WHERE type = 'sale.completed' AND aggregate_id = ?",
            (sale["id"],),
        ).fetchone()[0]
    assert json.loads(event)["sale"]["staff_id"] == "E100"


def test_staff_are_added_with_the_command_line(store, tmp_path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(
        f'data_dir = "{store.settings.data_dir}"\n[store]\nid = "S001"\nname = "t"\n',
        encoding="utf-8",
    )
    config = str(path)
    runner = CliRunner()
    made = runner.invoke(
        main,
        ["edge", "staff", "add", "E200", "--name", "Wang", "--pin", "9753", "--config", config],
    )
    assert made.exit_code == 0, made.output
    again = runner.invoke(
        main,
        ["edge", "staff", "add", "E200", "--name", "Wang", "--pin", "9753", "--config", config],
    )
    assert again.exit_code != 0 and "exists" in again.output
    client = make_app_for(store).test_client()
    assert _sign_in(client, store, "E200", "9753").status_code == 201
