"""Card payments between the acquirer and the sale: written down first, never charged twice,
never held for nothing once the reconciler has run (real SQLite, the simulated acquirer)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from edge.app import payment_provider, release_open_payments
from edge.auth.service import Principal
from edge.checkout import carts, payment_intents, sales
from edge.checkout.models import Cart, Payment, Sale
from edge.checkout.payment_intents import PaymentIntent
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.payments import Authorization, PaymentProvider, PaymentTimeout, SimulatedProvider
from edge.errors import AisleError, Conflict
from tests.builders import MILK, RICE, SOAP, make_store

CODES = [p["barcodes"].split("|")[0] for p in (MILK, RICE, SOAP)]
LATER = timedelta(minutes=10)  # past any checkout that could still be running


def kiosk(store) -> Principal:
    return Principal(store.devices["kiosk"], "kiosk")


def open_cart(store, *codes: str) -> str:
    view = carts.create_cart(
        store.db, kiosk(store), channel="kiosk", currency="CNY", now=store.clock.now()
    )
    for code in codes or CODES[:1]:
        view = carts.add_line(
            store.db,
            kiosk(store),
            view.cart.id,
            barcode=code,
            quantity=None,
            rules=store.ctx.scan_rules,
            shop=store.ctx.shop,
            now=store.clock.now(),
        )
    return view.cart.id


def total_of(store, cart_id: str) -> int:
    return carts.get_cart(store.db, kiosk(store), cart_id, shop=store.ctx.shop).totals.total


def pay_card(store, cart_id: str, key: str, method: str = "card"):
    return sales.checkout(
        store.ctx,
        kiosk(store),
        cart_id,
        payments=[PaymentRequest(method, total_of(store, cart_id))],
        idempotency_key=key,
    )


def crash_after_authorize(store, cart_id: str, key: str) -> str:
    """What a store server killed between the acquirer's answer and the sale leaves behind."""
    amount = total_of(store, cart_id)
    intent, _stale = payment_intents.begin(
        store.db,
        device_id=store.devices["kiosk"],
        key=key,
        cart_id=cart_id,
        position=0,
        method="card",
        amount=amount,
        now=store.clock.now(),
    )
    # Declined or timed out, then killed: the intent is all that is left.
    with contextlib.suppress(AisleError):
        store.payments.authorize(method="card", amount=amount, reference=intent.id)
    return intent.id


def intents(store) -> dict[str, str]:
    with store.db.read() as s:
        return {i.id: i.status for i in s.execute(select(PaymentIntent)).scalars()}


def sale_card_refs(store) -> set[str]:
    with store.db.read() as s:
        return set(s.scalars(select(Payment.provider_ref).where(Payment.method == "card")).all())


@pytest.fixture
def card_store(tmp_path):
    # The acquirer's books in their own file, where the server keeps them.
    (tmp_path / "store").mkdir()
    books = tmp_path / "store" / "acquirer-simulator.sqlite3"
    s = make_store(
        tmp_path / "store", payments=SimulatedProvider(latency_ms=0, seed=7, ledger=books)
    )
    yield s
    s.db.dispose()


def test_a_retry_after_a_crash_gets_the_authorisation_already_given(card_store):
    store = card_store
    cart = open_cart(store, *CODES)
    intent_id = crash_after_authorize(store, cart, "tap-1")
    held = store.payments.query(intent_id)
    assert held is not None and held.amount == total_of(store, cart)
    sale = pay_card(store, cart, "tap-1").sale
    # One authorisation at the acquirer: the one the crashed request got, now the sale's.
    assert list(store.payments.authorized) == [held.reference]
    assert sale["payments"][0]["reference"] == held.reference
    assert intents(store) == {intent_id: "captured"}


def test_the_reconciler_voids_what_a_crash_left_and_the_cart_stays_open(card_store):
    store = card_store
    cart = open_cart(store, *CODES)
    intent_id = crash_after_authorize(store, cart, "tap-1")
    assert len(store.payments.authorized) == 1
    # Not yet: a checkout started this recently could still be running.
    assert (
        payment_intents.reconcile(store.db, store.payments, now=store.clock.now(), older_than=LATER)
        == 0
    )
    assert len(store.payments.authorized) == 1
    store.clock.advance(minutes=11)
    released = payment_intents.reconcile(
        store.db, store.payments, now=store.clock.now(), older_than=LATER
    )
    assert released == 1
    assert store.payments.authorized == {}
    assert intents(store) == {intent_id: "voided"}
    with store.db.read() as s:
        assert s.get(Cart, cart).status == "open"
    # The shopper pays again, under a new authorisation.
    sale = pay_card(store, cart, "tap-2").sale
    assert set(store.payments.authorized) == {sale["payments"][0]["reference"]}


def test_at_server_start_every_open_payment_is_released(card_store):
    store = card_store
    cart = open_cart(store, *CODES)
    fresh = crash_after_authorize(store, cart, "tap-1")  # moments before the server was killed
    paid = pay_card(store, open_cart(store), "tap-2").sale
    store.payments.close()
    # The server starts again: its acquirer's books are the same file.
    assert release_open_payments(store.settings, clock=store.clock) == 1
    books = payment_provider(store.settings)
    try:
        assert books.query(fresh) is None
        assert set(books.authorized) == {paid["payments"][0]["reference"]}
    finally:
        books.close()
    assert intents(store)[fresh] == "voided"


def test_a_timeout_whose_authorisation_went_through_is_voided_by_reference(tmp_path):
    # Half the simulated timeouts authorise all the same (the answer is lost on the way).
    provider = SimulatedProvider(latency_ms=0, timeout_rate_bp=10_000, timeout_s=0.001, seed=3)
    store = make_store(tmp_path / "store", payments=provider)
    try:
        for n in range(8):
            cart = open_cart(store)
            with pytest.raises(PaymentTimeout):
                pay_card(store, cart, f"k-{n}")
        assert provider.voided, "no timeout authorised behind the store's back; pick a seed"
        assert provider.authorized == {}
        assert set(intents(store).values()) == {"voided"}
    finally:
        store.db.dispose()


def test_a_retry_paid_in_cash_releases_the_card_the_crash_left(card_store):
    store = card_store
    cart = open_cart(store, *CODES)
    intent_id = crash_after_authorize(store, cart, "tap-1")
    assert store.payments.query(intent_id) is not None
    pay_card(store, cart, "tap-1", method="cash")
    assert store.payments.authorized == {}
    assert intents(store) == {intent_id: "voided"}


def test_a_changed_cart_releases_the_old_intent_of_the_same_key(card_store):
    store = card_store
    cart = open_cart(store)
    first = crash_after_authorize(store, cart, "tap-1")
    carts.add_line(
        store.db,
        kiosk(store),
        cart,
        barcode=CODES[1],
        quantity=None,
        rules=store.ctx.scan_rules,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    sale = pay_card(store, cart, "tap-1").sale
    assert intents(store)[first] == "voided"
    assert set(store.payments.authorized) == {sale["payments"][0]["reference"]}
    assert sale["total"] == total_of(store, cart)


def test_a_sale_is_refused_on_an_intent_released_meanwhile(card_store, monkeypatch):
    """The reconciler (or a concurrent request) released the intent while this checkout was at
    the acquirer: the sale is not written on a voided authorisation."""
    store = card_store
    cart = open_cart(store)
    real = store.payments.authorize

    def authorize_then_lose_it(**kw) -> Authorization:
        auth = real(**kw)
        store.clock.advance(minutes=11)
        payment_intents.reconcile(store.db, store.payments, now=store.clock.now(), older_than=LATER)
        return auth

    monkeypatch.setattr(store.payments, "authorize", authorize_then_lose_it)
    with pytest.raises(Conflict) as err:
        pay_card(store, cart, "tap-1")
    assert err.value.code == "payment_released"
    assert store.payments.authorized == {}
    with store.db.read() as s:
        assert s.get(Cart, cart).status == "open"
        assert s.scalars(select(Sale)).all() == []


class _DiesOnVoid:
    """The acquirer as seen by a process killed just before its void went out."""

    def __init__(self, provider: PaymentProvider) -> None:
        self._provider = provider

    def query(self, reference: str) -> Authorization | None:
        return self._provider.query(reference)

    def authorize(self, **kw) -> Authorization:
        return self._provider.authorize(**kw)

    def void(self, authorization: Authorization) -> None:
        raise _Killed


class _Killed(BaseException):
    pass


@settings(
    # More under `make soak`.
    max_examples=int(os.environ.get("AISLE_TEST_STATEFUL_EXAMPLES", "40")),
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
class PaymentIntentMachine(RuleBasedStateMachine):
    """Checkouts, retries, crashes at every step, declines and timeouts, in any order.

    Always: every authorisation the acquirer holds is under an intent the store wrote; every
    sale's card payment is held, once; no cart is paid twice. Once the reconciler has run past
    every open intent, the acquirer holds exactly the sales' card payments.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="aisle-intents-"))
        provider = SimulatedProvider(
            latency_ms=0, decline_rate_bp=1_500, timeout_rate_bp=1_500, timeout_s=0.001, seed=11
        )
        self.store = make_store(self.tmp / "store", payments=provider)
        self.carts: list[str] = []
        self.keys: dict[str, str] = {}

    def teardown(self) -> None:
        self.store.db.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def first_cart(self) -> None:
        self.open()

    @rule()
    def open(self) -> None:
        cart = open_cart(self.store, CODES[len(self.carts) % 3])
        self.carts.append(cart)
        self.keys[cart] = uuid.uuid4().hex

    @rule(n=st.integers(0, 50), fresh_key=st.booleans(), method=st.sampled_from(["card", "cash"]))
    def checkout(self, n: int, fresh_key: bool, method: str) -> None:
        cart = self.carts[n % len(self.carts)]
        if fresh_key:  # a kiosk that rebooted forgets its key
            self.keys[cart] = uuid.uuid4().hex
        key = self.keys[cart]
        try:
            sale = pay_card(self.store, cart, key, method=method).sale
        except AisleError as exc:
            assert exc.code in {"payment_declined", "payment_timeout", "cart_closed"}, exc
            return
        # Paid: of everything this key ever asked the acquirer for, only the sale's card
        # payment is held (none if the sale was paid in cash).
        with self.store.db.read() as s:
            asked = s.scalars(
                select(PaymentIntent.id).where(PaymentIntent.idempotency_key == key)
            ).all()
        held = [i for i in asked if self.store.payments.query(i) is not None]
        assert len(held) == sum(p["method"] == "card" for p in sale["payments"]), held

    @rule(n=st.integers(0, 50))
    def crash_after_authorize(self, n: int) -> None:
        cart = self.carts[n % len(self.carts)]
        with self.store.db.read() as s:
            if s.get(Cart, cart).status != "open":
                return
        crash_after_authorize(self.store, cart, self.keys[cart])

    @rule(n=st.integers(0, 50))
    def crash_mid_void(self, n: int) -> None:
        cart = self.carts[n % len(self.carts)]
        with self.store.db.read() as s:
            open_ones = s.scalars(
                select(PaymentIntent.id).where(
                    PaymentIntent.cart_id == cart, PaymentIntent.status == "pending"
                )
            ).all()
        dying = _DiesOnVoid(self.store.payments)
        for intent_id in open_ones:
            with contextlib.suppress(_Killed):
                payment_intents.release(
                    self.store.db,
                    dying,
                    [payment_intents.Intent(intent_id, "card", 0)],
                    self.store.clock.now(),
                )

    @rule(n=st.integers(0, 50))
    def change_cart(self, n: int) -> None:
        cart = self.carts[n % len(self.carts)]
        with self.store.db.read() as s:
            if s.get(Cart, cart).status != "open":
                return
        carts.add_line(
            self.store.db,
            kiosk(self.store),
            cart,
            barcode=CODES[n % 3],
            quantity=None,
            rules=self.store.ctx.scan_rules,
            shop=self.store.ctx.shop,
            now=self.store.clock.now(),
        )

    @rule()
    def reconcile(self) -> None:
        self.store.clock.advance(minutes=11)
        payment_intents.reconcile(
            self.store.db, self.store.payments, now=self.store.clock.now(), older_than=LATER
        )
        # Everything open was older than the cut: the acquirer holds the sales' payments only.
        assert set(self.store.payments.authorized) == sale_card_refs(self.store)
        assert not {"pending", "voiding"} & set(intents(self.store).values())

    @invariant()
    def held_only_under_intents_and_each_sale_held_once(self) -> None:
        store = self.store
        live = store.payments.authorized
        with store.db.read() as s:
            rows = s.execute(select(PaymentIntent)).scalars().all()
            sales_by_cart = {sale.cart_id: sale for sale in s.scalars(select(Sale))}
            paid = {
                p.provider_ref: p.amount
                for p in s.scalars(select(Payment).where(Payment.method == "card"))
            }
        by_intent = {}
        for intent in rows:
            held = store.payments.query(intent.id)
            if held is not None:
                by_intent[held.reference] = intent
                assert intent.status in {"pending", "voiding", "captured"}, intent.status
        assert set(live) == set(by_intent), "an authorisation no intent accounts for"
        for ref, amount in paid.items():
            assert ref in live and live[ref].amount == amount, "a sale's payment is not held"
            assert by_intent[ref].status == "captured"
            assert by_intent[ref].sale_id == sales_by_cart[by_intent[ref].cart_id].id
        captured = [i for i in rows if i.status == "captured"]
        assert len({i.cart_id for i in captured}) == len(captured), "a cart paid twice"


TestPaymentIntentMachine = PaymentIntentMachine.TestCase
