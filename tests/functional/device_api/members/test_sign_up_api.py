"""Signing members up at the store over HTTP: offline, one member per phone, the phone shown
masked, and no phone or name in clear in the store's database file or its log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.pii import KeyringError, open_sealed
from sync.keys import public_key_b64
from tests.functional.conftest import Live

#: The cloud's key as this store pinned it (the test plays the cloud: it holds the private half).
CLOUD_KEY = Ed25519PrivateKey.generate()
CLOUD_SEED = CLOUD_KEY.private_bytes(
    serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
)


def _outbox(live: Live) -> list[tuple[str, dict]]:
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        rows = conn.execute("SELECT type, payload FROM outbox ORDER BY seq").fetchall()
    return [(t, json.loads(p)) for t, p in rows]


@pytest.fixture(scope="module")
def enrolled(live: Live) -> Iterator[Live]:
    """The package's store, linked to a cloud whose key the test holds; unlinked after."""
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute(
            "INSERT INTO cloud_link (id, cloud_url, store_id, cloud_public_key, protocol_version, "
            "max_batch_events, max_batch_bytes, enrolled_at) "
            "VALUES (1, 'http://127.0.0.1:9', 'S001', ?, 1, 1000, 2097152, "
            "'2026-11-27 08:00:00.000000')",
            (public_key_b64(CLOUD_KEY),),
        )
    yield live
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute("DELETE FROM cloud_link")


def test_a_store_not_enrolled_signs_nobody_up_and_reads_no_ledger(live: Live) -> None:
    pending = live.outbox_pending()
    answer = live.ok(live.post("/api/v1/members", "kiosk", json={"phone": "13912340000"}), 409)
    assert answer["error"]["code"] == "not_enrolled"
    assert live.outbox_pending() == pending
    # Nor does it read ledgers: they are the chain's.
    ledger = live.ok(live.get("/api/v1/members/m1/ledger", "tablet"), 409)
    assert ledger["error"]["code"] == "not_enrolled"


def test_a_member_signs_up_at_a_kiosk_and_again_with_the_same_phone(enrolled: Live) -> None:
    live = enrolled
    pending = live.outbox_pending()
    first = live.ok(
        live.post("/api/v1/members", "kiosk", json={"phone": "139 1234 5678", "name": "Wang Fang"}),
        201,
    )
    assert set(first) == {"id", "code", "masked_phone", "tier", "balance", "provisional"}
    assert first["masked_phone"] == "139****5678"
    assert (first["tier"], first["balance"], first["provisional"]) == ("basic", 0, True)
    assert len(first["code"]) == 18 and first["code"].isdigit()
    assert live.outbox_pending() == pending + 1
    kind, payload = _outbox(live)[-1]
    assert (kind, payload["member_id"], payload["code"]) == (
        "member.signed_up",
        first["id"],
        first["code"],
    )
    # The phone and name travel sealed to the cloud: only the cloud's key opens them.
    sealed = json.loads(open_sealed(CLOUD_SEED, payload["sealed"]))
    assert sealed == {"member_id": first["id"], "phone": "+8613912345678", "name": "Wang Fang"}
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    with pytest.raises(KeyringError):
        open_sealed(other, payload["sealed"])

    # The same phone, typed another way: the same member, nothing written.
    again = live.post("/api/v1/members", "tablet", json={"phone": "+86 13912345678"})
    assert live.ok(again, 200) == first
    assert live.outbox_pending() == pending + 1


def test_personal_data_is_not_in_the_database_file_or_the_log_in_clear(enrolled: Live) -> None:
    live = enrolled
    phone, name = "13787654321", "Zhang Xiuying"
    live.ok(live.post("/api/v1/members", "phone", json={"phone": phone, "name": name}), 201)
    with sqlite3.connect(live.data_dir / "edge.sqlite3") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in [*live.data_dir.glob("edge.sqlite3*"), live.log_path]:
        blob = path.read_bytes()
        for secret in (phone, "+86" + phone, name):
            assert secret.encode() not in blob, (secret, path.name)
            assert secret.encode("utf-16-le") not in blob, (secret, path.name)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phone": "12345"}, "bad_phone"),
        ({"phone": "010 6552 9988"}, "bad_phone"),  # a Beijing landline is not a mobile
        ({"phone": "\uff11\uff13\uff18" + "\uff10" * 8}, "bad_phone"),  # full-width digits
        ({"phone": "13800138000", "name": "Li\u202eLei"}, "validation_error"),
        ({}, "validation_error"),
    ],
)
def test_a_bad_sign_up_is_refused_and_writes_nothing(enrolled: Live, body: dict, code: str) -> None:
    live = enrolled
    pending = live.outbox_pending()
    answer = live.ok(live.post("/api/v1/members", "kiosk", json=body), 422)
    assert answer["error"]["code"] == code
    assert live.outbox_pending() == pending


def test_the_exit_gate_may_not_sign_members_up(live: Live) -> None:
    answer = live.ok(live.post("/api/v1/members", "exit", json={"phone": "13800138000"}), 403)
    assert answer["error"]["code"] == "forbidden"
