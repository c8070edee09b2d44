"""Many devices paying at once on one SQLite file: unique gap-free numbers, no event lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from edge.auth.service import Principal
from edge.checkout import carts, sales
from edge.checkout.models import Sale
from edge.checkout.payment_rules import PaymentRequest
from edge.checkout.payments import SimulatedProvider
from edge.inventory.service import ledger_mismatches
from edge.outbox.models import OutboxEvent
from tests.builders import MILK, RICE, make_store

THREADS = 8
SALES_PER_THREAD = 15


def _shop(store, principal, key_prefix, n, errors):
    try:
        for i in range(n):
            view = carts.create_cart(
                store.db, principal, channel="kiosk", currency="CNY", now=store.clock.now()
            )
            for code in (MILK["barcodes"], RICE["barcodes"]):
                view = carts.add_line(
                    store.db,
                    principal,
                    view.cart.id,
                    barcode=code,
                    quantity=None,
                    rules=store.ctx.scan_rules,
                    shop=store.ctx.shop,
                    now=store.clock.now(),
                )
            sales.checkout(
                store.ctx,
                principal,
                view.cart.id,
                payments=[PaymentRequest("card", view.totals.total)],
                idempotency_key=f"{key_prefix}-{i}",
            )
    except Exception as exc:  # collected and asserted on below
        errors.append(exc)


def _assert_consistent(store, expected_sales):
    with store.db.read() as s:
        numbers = sorted(s.execute(select(Sale.number)).scalars())
        seqs = [e for e in s.execute(select(OutboxEvent.seq).order_by(OutboxEvent.seq)).scalars()]
        events = [
            json.loads(p)["sale"]["id"]
            for p in s.execute(
                select(OutboxEvent.payload).where(OutboxEvent.type == "sale.completed")
            ).scalars()
        ]
        sale_ids = set(s.execute(select(Sale.id)).scalars())
        mismatches = ledger_mismatches(s)
    assert numbers == [f"S001-{i:06d}" for i in range(1, expected_sales + 1)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sorted(events) == sorted(sale_ids)
    assert len(events) == len(set(events)) == expected_sales
    assert mismatches == []


def test_concurrent_checkouts_from_threads_never_duplicate_numbers_or_lose_events(tmp_path):
    store = make_store(tmp_path, payments=SimulatedProvider(latency_ms=2, seed=3))
    errors: list[Exception] = []
    workers = [
        threading.Thread(
            target=_shop,
            args=(
                store,
                Principal(store.devices["kiosk"], "kiosk"),
                f"t{t}",
                SALES_PER_THREAD,
                errors,
            ),
        )
        for t in range(THREADS)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    _assert_consistent(store, THREADS * SALES_PER_THREAD)


def test_one_key_paid_twice_at_once_makes_one_sale_and_voids_the_twin(tmp_path):
    provider = SimulatedProvider(latency_ms=20, seed=5)
    store = make_store(tmp_path, payments=provider)
    principal = Principal(store.devices["kiosk"], "kiosk")
    view = carts.create_cart(
        store.db, principal, channel="kiosk", currency="CNY", now=store.clock.now()
    )
    view = carts.add_line(
        store.db,
        principal,
        view.cart.id,
        barcode=MILK["barcodes"],
        quantity=None,
        rules=store.ctx.scan_rules,
        shop=store.ctx.shop,
        now=store.clock.now(),
    )
    results, errors = [], []
    barrier = threading.Barrier(4)

    def pay():
        barrier.wait()
        try:
            results.append(
                sales.checkout(
                    store.ctx,
                    principal,
                    view.cart.id,
                    payments=[PaymentRequest("card", 1250)],
                    idempotency_key="double-tap",
                )
            )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Every tap either got the one sale or was told the cart is closed; none paid twice.
    assert {r.sale["id"] for r in results} and len({r.sale["id"] for r in results}) == 1
    assert all(getattr(e, "code", None) == "cart_closed" for e in errors), errors
    assert len(provider.authorized) == 1
    with store.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Sale)) == 1


WORKER = """
import sys
from pathlib import Path
from edge.app import build_context
from edge.auth.service import Principal
from edge.checkout.payments import SimulatedProvider
from tests.builders import make_settings
from tests.integration.test_concurrency import _shop

class S:  # the slice of tests.builders.Store that _shop uses
    pass

settings = make_settings(Path(sys.argv[1]))
s = S()
s.ctx = build_context(settings, payments=SimulatedProvider(latency_ms=1, seed=int(sys.argv[3])))
s.db = s.ctx.db
s.clock = s.ctx.clock
errors = []
_shop(s, Principal(sys.argv[2], "kiosk"), "p" + sys.argv[3], int(sys.argv[4]), errors)
if errors:
    raise errors[0]
"""


def test_two_server_processes_share_the_file_safely(tmp_path):
    store = make_store(tmp_path / "store")
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(tmp_path / "store"),
                store.devices["kiosk"],
                str(n),
                "20",
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    _assert_consistent(store, 60)
