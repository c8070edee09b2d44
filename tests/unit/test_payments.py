from __future__ import annotations

import time

import pytest

from edge.checkout.payments import PaymentDeclined, PaymentTimeout, SimulatedProvider


def test_approves_by_default_and_remembers_the_authorisation():
    provider = SimulatedProvider(latency_ms=0, seed=1)
    auth = provider.authorize(method="card", amount=1250, reference="k")
    assert auth.amount == 1250 and auth.reference in provider.authorized
    provider.void(auth)
    assert provider.authorized == {} and provider.voided == [auth.reference]


def test_declines_at_the_configured_rate():
    provider = SimulatedProvider(latency_ms=0, decline_rate_bp=2_500, seed=42)
    declined = 0
    for i in range(2_000):
        try:
            provider.authorize(method="wallet", amount=100, reference=str(i))
        except PaymentDeclined as exc:
            declined += 1
            assert exc.status == 402 and exc.code == "payment_declined"
    assert 400 <= declined <= 600  # 25 % of 2,000, with room for chance


def test_a_timeout_waits_the_timeout_then_fails():
    provider = SimulatedProvider(latency_ms=0, timeout_rate_bp=10_000, timeout_s=0.2, seed=1)
    start = time.monotonic()
    with pytest.raises(PaymentTimeout) as err:
        provider.authorize(method="card", amount=100, reference="k")
    assert time.monotonic() - start >= 0.2
    assert err.value.code == "payment_timeout"


def test_the_same_reference_gets_the_same_authorisation_never_a_second_charge(tmp_path):
    ledger = tmp_path / "acquirer.sqlite3"
    provider = SimulatedProvider(latency_ms=0, seed=1, ledger=ledger)
    first = provider.authorize(method="card", amount=1250, reference="intent-1")
    # The store crashed and came back: a new process, the same acquirer books.
    again = SimulatedProvider(latency_ms=0, seed=2, ledger=ledger)
    assert again.query("intent-1") == first
    assert again.authorize(method="card", amount=1250, reference="intent-1") == first
    assert list(again.authorized) == [first.reference]
    with pytest.raises(PaymentDeclined):
        again.authorize(method="card", amount=999, reference="intent-1")
    again.void(first)
    assert again.query("intent-1") is None
    assert again.voided == [first.reference]
