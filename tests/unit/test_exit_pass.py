"""Exit passes: signing, offline verification, the QR code, the key file and audit sampling."""

from __future__ import annotations

import base64
import json
import os
import random
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from edge.checkout.exit_pass import (
    AuditPolicy,
    ExitPassClaims,
    audit_rate_bp,
    exit_pass_qr_svg,
    issue_exit_pass,
    load_or_create_store_key,
    pick_for_audit,
    verify_exit_pass,
)
from edge.errors import ExitPassInvalid

STORE = "store-01"
SALE = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
ISSUED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TTL = 900
# Module-level for hypothesis tests, which cannot take function-scoped fixtures.
_KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _issue(key: Ed25519PrivateKey, **overrides: object) -> tuple[str, ExitPassClaims]:
    args: dict[str, object] = {
        "store_id": STORE,
        "sale_id": SALE,
        "total": 12_345,
        "item_count": 7,
        "issued_at": ISSUED,
        "ttl_s": TTL,
    }
    args.update(overrides)
    return issue_exit_pass(key, **args)  # type: ignore[arg-type]


def _reason(
    token: str, key: Ed25519PrivateKey, *, now: datetime = ISSUED, store: str = STORE
) -> str:
    with pytest.raises(ExitPassInvalid) as caught:
        verify_exit_pass(token, key.public_key(), now=now, store_id=store)
    assert caught.value.code == "invalid_exit_pass"
    return caught.value.details["reason"]


def _flip(text: str, index: int) -> str:
    """``text`` with one base64url character at ``index`` replaced by a different one."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


# --- round trip ---------------------------------------------------------------------------------


def test_round_trip_returns_the_issued_claims(key: Ed25519PrivateKey) -> None:
    token, claims = _issue(key)
    verified = verify_exit_pass(
        token, key.public_key(), now=ISSUED + timedelta(seconds=60), store_id=STORE
    )
    assert verified == claims
    assert claims == ExitPassClaims(
        store_id=STORE,
        sale_id=SALE,
        total=12_345,
        item_count=7,
        issued_at=int(ISSUED.timestamp()),
        expires_at=int(ISSUED.timestamp()) + TTL,
        pass_id=claims.pass_id,
    )


def test_token_is_compact_unpadded_base64url(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key)
    _, signature = token.split(".")
    assert "=" not in token
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64
    # Short enough for a small QR code at the exit.
    assert len(token) < 200


def test_pass_ids_are_random_and_urlsafe(key: Ed25519PrivateKey) -> None:
    ids = {_issue(key)[1].pass_id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 12 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


@given(
    sale_id=st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=60)),
    total=st.integers(min_value=0, max_value=2**63),
    item_count=st.integers(min_value=0, max_value=10_000),
    ttl_s=st.integers(min_value=1, max_value=86_400),
)
def test_round_trip_for_any_sale(sale_id: str, total: int, item_count: int, ttl_s: int) -> None:
    token, claims = issue_exit_pass(
        _KEY,
        store_id="门店-7",
        sale_id=sale_id,
        total=total,
        item_count=item_count,
        issued_at=ISSUED,
        ttl_s=ttl_s,
    )
    verified = verify_exit_pass(token, _KEY.public_key(), now=ISSUED, store_id="门店-7")
    assert verified == claims
    assert verified.sale_id == sale_id
    assert verified.total == total


def test_a_pass_is_valid_up_to_and_including_its_expiry_second(key: Ed25519PrivateKey) -> None:
    token, claims = _issue(key)
    at_expiry = datetime.fromtimestamp(claims.expires_at, UTC)
    verified = verify_exit_pass(token, key.public_key(), now=at_expiry, store_id=STORE)
    assert verified == claims


# --- rejections ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 5, 20, 40, -1])
def test_tampered_payload_is_forged(key: Ed25519PrivateKey, index: int) -> None:
    token, _ = _issue(key)
    payload, signature = token.split(".")
    index = index % (len(payload) - 1)  # the last character may carry padding bits only
    assert _reason(f"{_flip(payload, index)}.{signature}", key) == "forged"


def test_payload_of_another_pass_with_this_signature_is_forged(key: Ed25519PrivateKey) -> None:
    cheap, _ = _issue(key, total=100, item_count=1)
    big, _ = _issue(key, total=99_999, item_count=40)
    assert _reason(f"{cheap.split('.')[0]}.{big.split('.')[1]}", key) == "forged"


def test_tampered_signature_is_forged(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key)
    payload, signature = token.split(".")
    assert _reason(f"{payload}.{_flip(signature, 10)}", key) == "forged"


def test_token_signed_by_another_key_is_forged(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(Ed25519PrivateKey.generate())
    assert _reason(token, key) == "forged"


def test_pass_from_another_store_is_forged(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key, store_id="store-02")
    assert _reason(token, key, store=STORE) == "forged"


def test_expired_pass(key: Ed25519PrivateKey) -> None:
    token, claims = _issue(key)
    late = datetime.fromtimestamp(claims.expires_at, UTC) + timedelta(seconds=1)
    assert _reason(token, key, now=late) == "expired"


def test_forged_wins_over_expired(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(Ed25519PrivateKey.generate())
    assert _reason(token, key, now=ISSUED + timedelta(days=30)) == "forged"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "abc",
        "a.b.c",
        "not base64!.AAAA",
        "AAAA.AAAA",  # right shape, signature far too short
        "AAAA=.AAAA",  # padding is not part of the format
        "A" * 5000,
        "AAAA." + "A" * 85 + "é",  # a non-ASCII character where base64url belongs
    ],
)
def test_malformed_tokens(key: Ed25519PrivateKey, garbage: str) -> None:
    assert _reason(garbage, key) == "malformed"


def test_non_canonical_base64_is_malformed(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key)
    payload, signature = token.split(".")
    # 64 signature bytes use 86 characters; the last one carries 4 unused bits. Setting one of
    # them decodes to the same bytes, which would give one pass two spellings.
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    assert base64.urlsafe_b64decode(signature[:-1] + twin + "==") == base64.urlsafe_b64decode(
        signature + "=="
    )
    assert _reason(f"{payload}.{signature[:-1]}{twin}", key) == "malformed"


@given(st.text(max_size=300))
def test_arbitrary_text_never_verifies(text: str) -> None:
    with pytest.raises(ExitPassInvalid) as caught:
        verify_exit_pass(text, _KEY.public_key(), now=ISSUED, store_id=STORE)
    assert caught.value.details["reason"] in {"malformed", "forged"}


def test_naive_times_are_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError):
        _issue(key, issued_at=datetime(2024, 5, 1, 12, 0))
    token, _ = _issue(key)
    with pytest.raises(ValueError):
        verify_exit_pass(token, key.public_key(), now=datetime(2024, 5, 1), store_id=STORE)


@pytest.mark.parametrize(
    ("field", "value"), [("total", -1), ("item_count", -1), ("ttl_s", 0), ("sale_id", "")]
)
def test_nonsense_passes_are_not_issued(key: Ed25519PrivateKey, field: str, value: object) -> None:
    with pytest.raises(ValueError):
        _issue(key, **{field: value})


def test_float_total_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(TypeError):
        _issue(key, total=12.5)


# --- key file -----------------------------------------------------------------------------------


def test_key_file_is_created_private_and_reloaded_identically(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "exit-pass.pem"
    first = load_or_create_store_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = load_or_create_store_key(path)
    assert second.private_bytes_raw() == first.private_bytes_raw()
    # A pass signed before a restart still verifies after it.
    token, claims = _issue(first)
    assert verify_exit_pass(token, second.public_key(), now=ISSUED, store_id=STORE) == claims
    # No temporary files are left next to the key.
    assert sorted(p.name for p in path.parent.iterdir()) == ["exit-pass.pem"]


def test_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "exit-pass.pem"
    load_or_create_store_key(path)
    before = path.read_bytes()
    load_or_create_store_key(path)
    assert path.read_bytes() == before


def test_key_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "wrong.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_store_key(path)


# --- QR code ------------------------------------------------------------------------------------


def test_qr_svg_is_inline_svg(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key)
    svg = exit_pass_qr_svg(token)
    assert isinstance(svg, str)
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg


def test_qr_for_a_typical_pass_is_small(key: Ed25519PrivateKey) -> None:
    token, _ = _issue(key)
    qr = segno.make(token, error="m", micro=False)
    assert qr.error in {"M", "Q", "H"}
    # Version 8 is 49x49 modules; a phone at arm's length reads it easily.
    assert qr.version <= 8
    # The SVG draws the same symbol: 4 px per module plus the 4-module quiet zone on each side.
    size = (qr.symbol_size(scale=1)[0]) * 4
    assert f'width="{size}"' in exit_pass_qr_svg(token)


# --- audit sampling -----------------------------------------------------------------------------


class _Basket:
    def __init__(self, item_count: int, total: int) -> None:
        self.item_count = item_count
        self.total = total


def _picks(basket: _Basket, policy: AuditPolicy, draws: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    return sum(pick_for_audit(basket, policy, rng) for _ in range(draws))


def test_rate_zero_never_audits() -> None:
    policy = AuditPolicy(base_rate_bp=0, large_basket_rate_bp=0, large_total_rate_bp=0)
    assert _picks(_Basket(500, 10**9), policy, 20_000) == 0


def test_rate_10000_always_audits() -> None:
    policy = AuditPolicy(base_rate_bp=10_000)
    assert _picks(_Basket(1, 100), policy, 20_000) == 20_000


def test_large_baskets_are_audited_more_often() -> None:
    policy = AuditPolicy()  # 3 % base, 15 % for large baskets
    draws = 40_000
    small = _picks(_Basket(3, 2_000), policy, draws, seed=1)
    by_items = _picks(_Basket(25, 2_000), policy, draws, seed=2)
    by_total = _picks(_Basket(3, 80_000), policy, draws, seed=3)
    # Expected 1200 (sd ~34) against 6000 (sd ~71): the margins are many standard deviations.
    assert 1_000 < small < 1_400
    assert 5_500 < by_items < 6_500
    assert 5_500 < by_total < 6_500


def test_the_highest_applicable_rate_wins() -> None:
    policy = AuditPolicy(base_rate_bp=300, large_basket_rate_bp=1500, large_total_rate_bp=2500)
    assert audit_rate_bp(_Basket(1, 100), policy) == 300
    assert audit_rate_bp(_Basket(20, 100), policy) == 1500  # threshold is inclusive
    assert audit_rate_bp(_Basket(1, 50_000), policy) == 2500
    assert audit_rate_bp(_Basket(20, 50_000), policy) == 2500
    # A large-basket rate below the base rate never lowers it.
    low = AuditPolicy(base_rate_bp=800, large_basket_rate_bp=100)
    assert audit_rate_bp(_Basket(99, 100), low) == 800


def test_claims_can_be_audited_directly(key: Ed25519PrivateKey) -> None:
    _, claims = _issue(key, item_count=30)
    assert audit_rate_bp(claims, AuditPolicy()) == 1500
    always = AuditPolicy(base_rate_bp=10_000)
    assert pick_for_audit(claims, always, random.Random(0)) is True


def test_same_seed_same_decisions() -> None:
    policy = AuditPolicy()
    basket = _Basket(25, 1_000)
    rng = random.Random(42)
    first = [pick_for_audit(basket, policy, rng) for _ in range(500)]
    rng = random.Random(42)
    second = [pick_for_audit(basket, policy, rng) for _ in range(500)]
    assert first == second
    assert any(first)


@pytest.mark.parametrize("rate", [-1, 10_001])
def test_rates_outside_0_to_10000_are_refused(rate: int) -> None:
    with pytest.raises(ValueError):
        AuditPolicy(base_rate_bp=rate)


def test_json_payload_is_not_accepted(key: Ed25519PrivateKey) -> None:
    # A hand-made JSON payload signed by the store key is still not a valid pass format.
    payload = json.dumps({"s": STORE}).encode()
    raw_sig = key.sign(payload)
    token = (
        base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(raw_sig).rstrip(b"=").decode()
    )
    assert _reason(token, key) == "forged"
