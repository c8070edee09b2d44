"""Cloud ingest at scale: from an empty PostgreSQL database to ten million sale lines, with the
rate of the first batches held to the last.

What it does:

1. Creates a database of its own on the PostgreSQL server (``--pg-url``, by default the one at
   127.0.0.1:5432), migrates it, turns autovacuum off on every table and never runs ``ANALYZE``:
   the planner has no statistics from the first batch to the last, as on a server with
   autovacuum off, after a restore or after ``pg_upgrade``.
2. Enrolls store S000 and ``--others`` stores beside it (S001, S002, ...).
3. Pushes ``--batches`` batches of ``--sales`` sales (``--lines`` lines each) for S000, through
   the cloud's own ``cloud.ingest.service.push`` (in process: no HTTP, signing or JSON, so
   what is timed is ingest into the database), on one long-lived connection: psycopg prepares
   each statement after its fifth run and PostgreSQL may then keep a generic plan. After every
   ``--other-every`` batches of S000, one of the other stores, in turn, pushes a batch of the
   same size. Ids are UUIDv7, as stores make them (``--ids v4`` for random ones, to compare).
   Each batch is built before its clock starts; the WAL it wrote is the move of
   ``pg_current_wal_lsn()`` across it.
4. Splits S000's batches into ``--windows`` windows and compares the last with the first:
   events/s (events over the time spent in ``push``) at least 0.8 of the first window's, p99
   batch time at most 2x, median WAL per batch at most 2x (median, because the server's WAL is
   shared with whatever else runs on it), and not one event quarantined.
5. Ends with a plan guard on a new connection with ``plan_cache_mode = force_generic_plan``: one
   more batch of new sales for S000, then that batch again (all duplicates), each statement's
   rows read counted by PostgreSQL (``cloud/ingest/plan_guard.py``); none may read more than
   ten times the rows the batch writes.
6. Drops the database, prints a summary, writes JSON to ``bench/results/ingest-scale-*.json``
   and exits 1 if any check failed.

Run: ``make bench-ingest`` (the full run, 2,000 batches: about 10.5 million lines with the other
stores' batches, some 20-30 minutes on 2 cores) or ``.venv/bin/python
bench/run_ingest_scale_bench.py --batches 100`` while developing (about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from devices.statistics import percentile  # noqa: E402

RESULTS = BENCH / "results"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BIG = "S000"
#: The checks of a run: last window against the first.
MIN_RATE_RATIO, MAX_P99_RATIO, MAX_WAL_RATIO = 0.8, 2.0, 2.0
#: The plan guard: rows one statement may read, per row the batch writes.
GUARD_FACTOR = 10
#: Products the sales are made of: (sku, name, barcode, unit price in fen, tax rate bp).
PRODUCTS = [
    (f"SKU{i:04d}", f"Product {i}", f"69{i:011d}", 150 + 37 * i, (900, 1300)[i % 2])
    for i in range(1, 201)
]


def log(msg: str) -> None:
    print(f"[ingest-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the sales ------------------------------------------------------------------------------


@dataclass
class SaleMaker:
    """Sales shaped like a store's ``sale.completed`` events, numbered per store."""

    new_id: Callable[[], str]
    lines: int
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    start: datetime = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def event(self, store_id: str, seq: int) -> dict[str, Any]:
        at = (self.start + timedelta(seconds=seq * 2.5)).isoformat()
        sale_id = self.new_id()
        lines = []
        for sku, name, barcode, price, tax_bp in self.rng.sample(PRODUCTS, self.lines):
            qty = self.rng.choice((1, 1, 1, 2, 3))
            total = price * qty
            lines.append(
                {
                    "id": self.new_id(),
                    "sku": sku,
                    "name": name,
                    "barcode": barcode,
                    "quantity": qty,
                    "weight_g": None,
                    "unit_price": price,
                    "price": price,
                    "subtotal": total,
                    "discount": 0,
                    "tax": total * tax_bp // (10_000 + tax_bp),
                    "total": total,
                    "tax_rate_bp": tax_bp,
                    "returned_quantity": 0,
                    "refunded_amount": 0,
                }
            )
        total = sum(line["total"] for line in lines)
        sale = {
            "id": sale_id,
            "number": f"{store_id}-{seq:08d}",
            "cart_id": self.new_id(),
            "channel": "kiosk",
            "currency": "CNY",
            "subtotal": total,
            "discount": 0,
            "tax": sum(line["tax"] for line in lines),
            "total": total,
            "paid": total,
            "change": 0,
            "item_count": sum(line["quantity"] for line in lines),
            "device_id": "kiosk-1",
            "approved_by": None,
            "created_at": at,
            "lines": lines,
            "payments": [{"method": "card", "amount": total, "reference": f"auth-{seq}"}],
        }
        return {
            "seq": seq,
            "id": self.new_id(),
            "type": "sale.completed",
            "aggregate_id": sale_id,
            "payload": {"store_id": store_id, "sale": sale},
            "created_at": at,
        }

    def batch(self, store_id: str, first_seq: int, count: int) -> Any:
        from sync.protocol import Batch, WireEvent

        events = (WireEvent(**self.event(store_id, s)) for s in range(first_seq, first_seq + count))
        return Batch(store_id, self.new_id(), tuple(events))


# --- the database ---------------------------------------------------------------------------


def _driver(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def own_database(pg_url: str) -> Iterator[str]:
    """A new database on the server, dropped at the end; the server itself is left alone."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"aisle_ingest_bench_{os.getpid()}"
    admin = _driver(make_url(pg_url).set(database="postgres").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare(url: str, stores: list[str]) -> None:
    """Migrate, switch autovacuum off table by table, enroll the stores."""
    import psycopg

    from cloud.db import Base, Database
    from cloud.migrations import upgrade
    from cloud.stores.service import StoreInput, add_store, enroll
    from sync.keys import generate_private_key, public_key_b64

    db = Database.open(url)
    upgrade(db.writer)
    with psycopg.connect(_driver(url), autocommit=True) as conn:
        for table in Base.metadata.sorted_tables:
            conn.execute(f'ALTER TABLE "{table.name}" SET (autovacuum_enabled = false)')
    now = datetime.now(UTC)
    for store_id in stores:
        code = add_store(db, StoreInput(store_id), now=now, code_ttl_s=3600)
        key = public_key_b64(generate_private_key())
        enroll(db, code=code, store_public_key=key, store_id=store_id, now=now)
    db.dispose()


def lsn(conn: Any) -> int:
    """The server's WAL position in bytes."""
    (text,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


# --- the run --------------------------------------------------------------------------------


@dataclass
class Pushed:
    store_id: str
    events: int
    seconds: float
    wal_bytes: int
    applied: int
    quarantined: int


def run_batches(url: str, args: argparse.Namespace, maker: SaleMaker) -> tuple[list[Pushed], int]:
    """Every batch on one engine (one connection, used batch after batch); the pushes and how
    many connections the engine opened."""
    import psycopg
    from sqlalchemy import event

    from cloud.db import Database
    from cloud.ingest.service import push

    db = Database.open(url)
    opened = []
    event.listen(db.writer, "connect", lambda *_: opened.append(1))
    next_seq = {f"S{i:03d}": 1 for i in range(args.others + 1)}
    pushed: list[Pushed] = []
    started = time.perf_counter()
    try:
        with psycopg.connect(_driver(url), autocommit=True) as wal:
            for n in range(1, args.batches + 1):
                stores = [BIG]
                if args.others and n % args.other_every == 0:
                    stores.append(f"S{(n // args.other_every - 1) % args.others + 1:03d}")
                for store_id in stores:
                    batch = maker.batch(store_id, next_seq[store_id], args.sales)
                    wal_before = lsn(wal)
                    t0 = time.perf_counter()
                    result = push(db, store_id=store_id, batch=batch, now=datetime.now(UTC))
                    seconds = time.perf_counter() - t0
                    wal_bytes = lsn(wal) - wal_before
                    next_seq[store_id] = result.acked_seq + 1
                    pushed.append(
                        Pushed(
                            store_id,
                            len(batch.events),
                            seconds,
                            wal_bytes,
                            result.applied,
                            len(result.quarantined),
                        )
                    )
                if n % max(1, args.batches // 20) == 0:
                    mine = [p for p in pushed if p.store_id == BIG][-max(1, args.batches // 20) :]
                    rate = sum(p.events for p in mine) / sum(p.seconds for p in mine)
                    log(
                        f"batch {n}/{args.batches}: S000 at {next_seq[BIG] - 1:,} events, "
                        f"{rate:,.0f} events/s lately, {time.perf_counter() - started:,.0f} s"
                    )
    finally:
        db.dispose()
    return pushed, len(opened)


def windows(pushed: list[Pushed], count: int) -> list[dict[str, Any]]:
    """S000's batches in ``count`` consecutive windows."""
    mine = [p for p in pushed if p.store_id == BIG]
    size = max(1, len(mine) // count)
    out = []
    for i in range(count):
        part = mine[i * size : (i + 1) * size if i < count - 1 else len(mine)]
        if not part:
            continue
        times = [p.seconds for p in part]
        wal = [p.wal_bytes for p in part]
        out.append(
            {
                "window": i + 1,
                "batches": len(part),
                "s000_events_at_end": sum(p.events for p in mine[: i * size + len(part)]),
                "events_per_s": sum(p.events for p in part) / sum(times),
                "p50_s": statistics.median(times),
                "p99_s": percentile(times, 99),
                "wal_median_mb": statistics.median(wal) / 1e6,
                "wal_mean_mb": statistics.fmean(wal) / 1e6,
            }
        )
    return out


def plan_guard(url: str, maker: SaleMaker, first_seq: int, sales: int) -> dict[str, Any]:
    """One more batch of new sales for S000, then the same batch again, on a connection with
    generic plans; the rows each statement read."""
    from sqlalchemy.engine import make_url

    from cloud.db import Database
    from cloud.ingest.plan_guard import GENERIC_PLANS, counting_reads, over_bound
    from cloud.ingest.service import push

    guarded = make_url(url).update_query_dict({"options": GENERIC_PLANS})
    db = Database.open(guarded.render_as_string(hide_password=False))
    batch = maker.batch(BIG, first_seq, sales)
    rows = len(batch.events) * (2 + maker.lines)  # events, sales, lines
    bound = GUARD_FACTOR * rows
    report: dict[str, Any] = {"batch_rows": rows, "bound": bound, "pushes": []}
    try:
        for name in ("new sales", "the same batch again"):
            with counting_reads(db.writer) as transactions:
                result = push(db, store_id=BIG, batch=batch, now=datetime.now(UTC))
            reads = transactions[-1]
            statements: dict[str, int] = {}
            for s in reads.statements:
                statements[s.shape] = max(statements.get(s.shape, 0), s.rows_read)
            report["pushes"].append(
                {
                    "push": name,
                    "applied": result.applied,
                    "duplicates": result.duplicates,
                    "quarantined": len(result.quarantined),
                    "total_rows_read": reads.total,
                    "copy_rows_read": reads.outside_statements,
                    "statements": statements,
                    "over_bound": [asdict(f) for f in over_bound(reads, bound)],
                }
            )
        with db.read() as session:
            from sqlalchemy import text

            report["pg_stats_rows"] = session.execute(
                text("SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()")
            ).scalar_one()
            report["plan_cache_mode"] = session.execute(text("SHOW plan_cache_mode")).scalar_one()
    finally:
        db.dispose()
    return report


def checks(result: dict[str, Any]) -> list[tuple[str, bool]]:
    first, last = result["windows"][0], result["windows"][-1]
    guard = result["plan_guard"]
    rate = last["events_per_s"] / first["events_per_s"]
    p99 = last["p99_s"] / first["p99_s"]
    wal = last["wal_median_mb"] / first["wal_median_mb"]
    pushes = guard["pushes"]
    return [
        (f"events/s last/first {rate:.2f} (>= {MIN_RATE_RATIO})", rate >= MIN_RATE_RATIO),
        (f"p99 batch time last/first {p99:.2f} (<= {MAX_P99_RATIO})", p99 <= MAX_P99_RATIO),
        (f"WAL per batch last/first {wal:.2f} (<= {MAX_WAL_RATIO})", wal <= MAX_WAL_RATIO),
        (f"quarantined {result['quarantined']} (0)", result["quarantined"] == 0),
        (
            f"applied {result['applied']:,} of {result['events']:,}",
            result["applied"] == result["events"],
        ),
        (f"connections opened {result['connections']} (1)", result["connections"] == 1),
        (
            f"plan guard: every statement within {guard['bound']:,} rows",
            all(not p["over_bound"] and p["quarantined"] == 0 for p in pushes),
        ),
        (
            f"plan guard: no statistics (pg_stats rows {guard['pg_stats_rows']})",
            guard["pg_stats_rows"] == 0,
        ),
    ]


def summary(result: dict[str, Any], passed: list[tuple[str, bool]]) -> str:
    lines = [
        f"ingest at scale ({result['date']}, commit {result['commit']}, "
        f"{result['machine']['cpus']} CPUs, PostgreSQL {result['machine']['postgresql']}, "
        f"autovacuum {result['machine']['autovacuum']}, ids {result['ids']})",
        f"  {result['batches_pushed']:,} batches, {result['events']:,} sales, "
        f"{result['lines']:,} lines; S000 at {result['s000_events']:,} events beside "
        f"{result['others']} stores; wall time {result['wall_s']:,.0f} s",
        "",
        "| window | S000 batches | S000 events at end | events/s | p50 s | p99 s "
        "| WAL/batch MB median | mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in result["windows"]:
        lines.append(
            f"| {w['window']} | {w['batches']} | {w['s000_events_at_end']:,} "
            f"| {w['events_per_s']:,.0f} | {w['p50_s']:.3f} | {w['p99_s']:.3f} "
            f"| {w['wal_median_mb']:.2f} | {w['wal_mean_mb']:.2f} |"
        )
    guard = result["plan_guard"]
    lines += [
        "",
        f"plan guard (plan_cache_mode {guard['plan_cache_mode']}, a batch writes "
        f"{guard['batch_rows']:,} rows, bound {guard['bound']:,} rows read per statement):",
    ]
    for push in guard["pushes"]:
        lines.append(
            f"  {push['push']}: applied {push['applied']}, duplicates {push['duplicates']}, "
            f"rows read in all {push['total_rows_read']:,} (COPY {push['copy_rows_read']:,})"
        )
        for shape, rows in push["statements"].items():
            lines.append(f"    {rows:>9,}  {_brief(shape)}")
    lines.append("")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {text}" for text, ok in passed]
    return "\n".join(lines)


def _brief(shape: str) -> str:
    """A statement's shape with its column lists elided and parameters as ``?``: one line."""
    shape = re.sub(r"%\(\w+\)s(::[A-Z]+( WITHOUT TIME ZONE)?)?", "?", shape)
    shape = re.sub(r"^SELECT .+? FROM", "SELECT ... FROM", shape)
    shape = re.sub(r"^(INSERT INTO \w+) \(.*?\) VALUES .*?(?= ON CONFLICT| RETURNING|$)",
                   r"\1 VALUES (...)", shape)  # fmt: skip
    shape = re.sub(r"^(UPDATE \w+ SET) .+? WHERE", r"\1 ... WHERE", shape)
    return re.sub(r"\b\w+\.(\w+)", r"\1", shape)[:140]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=2000, help="batches of S000")
    parser.add_argument("--sales", type=int, default=1000, help="sales a batch")
    parser.add_argument("--lines", type=int, default=5, help="lines a sale")
    parser.add_argument("--others", type=int, default=20, help="stores beside S000")
    parser.add_argument("--other-every", type=int, default=20, help="S000 batches per other one")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--ids", choices=("v7", "v4"), default="v7")
    parser.add_argument("--pg-url", default=os.environ.get("AISLE_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)

    from shared.ids import new_id

    make_id = new_id if args.ids == "v7" else lambda: str(uuid.uuid4())
    maker = SaleMaker(make_id, args.lines)
    stores = [f"S{i:03d}" for i in range(args.others + 1)]
    started = time.perf_counter()
    with own_database(args.pg_url) as url:
        log(f"database {url.rsplit('/', 1)[-1]}: migrating, enrolling {len(stores)} stores")
        prepare(url, stores)
        pushed, connections = run_batches(url, args, maker)
        s000 = sum(p.events for p in pushed if p.store_id == BIG)
        log("plan guard")
        guard = plan_guard(url, maker, s000 + 1, args.sales)
        machine = _machine(url)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "machine": machine,
        "args": vars(args) | {"pg_url": None},
        "ids": f"UUID{args.ids}",
        "batches_pushed": len(pushed),
        "events": sum(p.events for p in pushed),
        "lines": sum(p.events for p in pushed) * args.lines,
        "s000_events": s000,
        "others": args.others,
        "applied": sum(p.applied for p in pushed),
        "quarantined": sum(p.quarantined for p in pushed),
        "connections": connections,
        "windows": windows(pushed, args.windows),
        "others_p99_s": percentile([p.seconds for p in pushed if p.store_id != BIG] or [0.0], 99),
        "plan_guard": guard,
        "wall_s": time.perf_counter() - started,
    }
    passed = checks(result)
    result["checks"] = [{"check": text, "ok": ok} for text, ok in passed]
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ingest-scale-{stamp}.json").write_text(json.dumps(result, indent=2))
    print(summary(result, passed))
    return 0 if all(ok for _, ok in passed) else 1


def _machine(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(_driver(url)) as conn:
        settings = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("server_version", "autovacuum", "shared_buffers", "max_wal_size")
        }
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": settings["server_version"].split()[0],
        **{k: v for k, v in settings.items() if k != "server_version"},
    }


def _git(*args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
