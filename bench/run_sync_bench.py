"""Sync backlog benchmark: a store's three days offline (50,000 sales, about 250,000 lines)
drained into the cloud on PostgreSQL, end to end, while the store keeps serving scans.

What it does (real processes and sockets throughout):

1. A cloud (``aisle cloud serve``, 2 workers) on a fresh PostgreSQL database, the demo catalog
   imported, stores S001 (the backlog) and S002 (ingest alone) added.
2. A store (``aisle edge init`` + the same catalog + a kiosk) enrolled with the cloud.
3. The backlog: one real checkout through the store's own code gives the shape of a
   ``sale.completed`` event; ``--sales`` events of that shape (new ids and numbers, ``--lines``
   random products each, totals and tax computed by the store's pricing rules) are written into
   the store's outbox with their sequence numbers, as a store that sold offline would have them.
   Only the outbox is filled (the drain reads nothing else); the sales tables stay small.
4. End to end: ``aisle edge serve`` starts on the store with its background sync (batches of
   ``--batch`` events); at the same moment ``--scan-devices`` simulated scanners start scanning
   against that server. The clock stops when the cloud's high-water mark for S001 reaches the
   last sequence number. Scan latency is measured over the drain, then again with no drain.
5. Ingest alone: as many sales again for S002, each with ids of its own (UUIDv7, like a
   store's), encoded and signed up front, posted batch after batch by one client straight to
   the cloud: events/s into PostgreSQL (which by then holds the first store's sales too).

Every answer's ``applied`` and ``quarantined`` are counted, and the cloud's own count for S001
after the drain: a quarantined event fails the run (exit status 1), since the figures would then
measure the quarantine path instead of ingest.

Run: ``.venv/bin/python bench/run_sync_bench.py`` (``make bench-sync``). PostgreSQL comes from
``--pg-url`` or ``AISLE_TEST_POSTGRES_URL`` (default: postgres on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = BENCH / "results"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    print(f"[sync-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def aisle(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(BIN / "aisle"), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"aisle {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc.stdout


def serve_cmd(side: str, config: str) -> list[str]:
    return [str(BIN / "aisle"), side, "serve", "--config", config, "--host", "127.0.0.1"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the backlog -----------------------------------------------------------------------------


def template_sale(store_dir: Path) -> dict[str, Any]:
    """One real checkout through the store's services; its outbox payload is the template."""
    from edge.app import build_context
    from edge.auth.service import Principal, pair_device
    from edge.checkout import carts, sales
    from edge.checkout.payment_rules import PaymentRequest
    from edge.settings import load_settings

    settings = load_settings(store_dir / "edge.toml", environ={"AISLE_PAYMENTS__LATENCY_MS": "0"})
    ctx = build_context(settings)
    device, _ = pair_device(ctx.db, role="kiosk", name="bench", now=ctx.clock.now())
    kiosk = Principal(device, "kiosk")
    with ctx.db.raw_read() as tx:
        code = tx.one(
            "SELECT b.gtin FROM barcodes b JOIN products p ON p.sku = b.sku "
            "WHERE p.sold_by = 'each' AND NOT p.age_restricted LIMIT 1",
            (),
        )[0]
    view = carts.create_cart(ctx.db, kiosk, channel="kiosk", currency="CNY", now=ctx.clock.now())
    view = carts.add_line(
        ctx.db, kiosk, view.cart.id, barcode=code, quantity=None, rules=ctx.scan_rules,
        shop=ctx.shop, now=ctx.clock.now(),
    )  # fmt: skip
    sales.checkout(
        ctx,
        kiosk,
        view.cart.id,
        payments=[PaymentRequest("card", view.totals.total)],
        idempotency_key=uuid.uuid4().hex,
    )
    with ctx.db.raw_read() as tx:
        payload = json.loads(tx.one("SELECT payload FROM outbox ORDER BY seq DESC LIMIT 1", ())[0])
    ctx.db.dispose()
    return dict(payload)


def backlog_events(
    store_id: str, template: dict[str, Any], products: list[tuple[Any, ...]], n: int, lines: int
) -> list[dict[str, Any]]:
    """``n`` sale events shaped like ``template``, ``lines`` random products each."""
    from edge.pricing.cart_pricing import LineInput, price_lines
    from shared.ids import new_id

    rng = random.Random(5)
    base = template["sale"]
    line_template = base["lines"][0]
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp()
    out = []
    for i in range(n):
        picked = rng.sample(products, lines)
        qty = [rng.choice((1, 1, 1, 2, 3)) for _ in picked]
        priced, totals = price_lines(
            [LineInput(p[2], q, p[3]) for p, q in zip(picked, qty, strict=True)]
        )
        at = datetime.fromtimestamp(start + i * 5.2, UTC).isoformat()  # three days of trading
        sale_id = new_id()
        sale_lines = []
        for position, (product, q, pl) in enumerate(zip(picked, qty, priced, strict=True), 1):
            line = dict(line_template)
            line.update(
                id=new_id(),
                sku=product[0],
                name=product[1],
                barcode=product[4],
                quantity=q,
                unit_price=product[2],
                price=product[2],
                subtotal=pl.subtotal,
                discount=pl.discount,
                tax=pl.tax,
                total=pl.total,
                tax_rate_bp=product[3],
            )
            if "position" in line:
                line["position"] = position
            sale_lines.append(line)
        sale = dict(base)
        sale.update(
            id=sale_id,
            number=f"{store_id}-{i + 2:06d}",
            cart_id=new_id(),
            subtotal=totals.subtotal,
            discount=totals.discount,
            tax=totals.tax,
            total=totals.total,
            paid=totals.total,
            change=0,
            item_count=sum(qty),
            created_at=at,
            lines=sale_lines,
            payments=[{**base["payments"][0], "amount": totals.total}],
        )
        out.append(
            {
                "id": new_id(),
                "type": "sale.completed",
                "aggregate_id": sale_id,
                "payload": {"store_id": store_id, "sale": sale},
                "created_at": at,
            }
        )
    return out


def write_backlog(db_path: Path, events: list[dict[str, Any]]) -> int:
    """Append the events to the store's outbox after its last seq; returns the last seq."""
    import sqlite3

    from sync.protocol import canonical_json

    conn = sqlite3.connect(db_path)
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
    rows = []
    for offset, e in enumerate(events, start=1):
        stamp = e["created_at"].replace("T", " ").removesuffix("+00:00")
        rows.append(
            (
                last + offset,
                e["id"],
                e["type"],
                e["aggregate_id"],
                canonical_json(e["payload"]).decode(),
                stamp if "." in stamp else stamp + ".000000",
            )
        )
    with conn:
        conn.executemany(
            "INSERT INTO outbox (seq, id, type, aggregate_id, payload, created_at, pushed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL)",
            rows,
        )
        conn.execute(
            "INSERT INTO counters (name, value) VALUES ('outbox', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (last + len(rows),),
        )
    conn.close()
    return int(last + len(rows))


# --- ingest alone ----------------------------------------------------------------------------


def ingest_alone(
    cloud_url: str, code: str, store_id: str, events: list[dict[str, Any]], batch: int
) -> dict[str, Any]:
    """Post the events as pre-encoded signed batches, one after another; events/s."""
    import requests

    from sync.keys import generate_private_key, public_key_b64
    from sync.protocol import BATCH_CONTENT_TYPE, canonical_json, encode_batch
    from sync.signing import sign_request

    key = generate_private_key()
    session = requests.Session()
    body = canonical_json({"code": code, "store_public_key": public_key_b64(key)})
    headers = sign_request(
        key, method="POST", target="/api/v1/enroll", store_id=store_id, body=body,
        now=datetime.now(UTC),
    )  # fmt: skip
    r = session.post(
        cloud_url + "/api/v1/enroll",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    r.raise_for_status()
    t0 = time.perf_counter()
    bodies = []
    for start in range(0, len(events), batch):
        chunk = [{**e, "seq": start + i + 1} for i, e in enumerate(events[start : start + batch])]
        bodies.append(encode_batch(store_id, chunk, batch_id=str(uuid.uuid4())))
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    applied = quarantined = 0
    for b in bodies:
        headers = sign_request(
            key, method="POST", target="/api/v1/sync/push", store_id=store_id, body=b,
            now=datetime.now(UTC),
        )  # fmt: skip
        r = session.post(
            cloud_url + "/api/v1/sync/push",
            data=b,
            headers={**headers, "Content-Type": BATCH_CONTENT_TYPE, "Content-Encoding": "gzip"},
            timeout=120,
        )
        r.raise_for_status()
        answer = r.json()
        applied += answer["applied"]
        quarantined += len(answer["quarantined"])
    seconds = time.perf_counter() - t0
    acked = r.json()["acked_seq"]
    assert acked == len(events), f"cloud acked {acked} of {len(events)}"
    return {
        "events": len(events),
        "applied": applied,
        "quarantined": quarantined,
        "batches": len(bodies),
        "encode_s": round(encode_s, 2),
        "post_s": round(seconds, 2),
        "events_per_s": round(len(events) / seconds, 1),
        "compressed_mb": round(sum(map(len, bodies)) / 1e6, 1),
    }


# --- the run ---------------------------------------------------------------------------------


def sync_state(cloud_url: str, hq: str, store_id: str) -> dict[str, Any]:
    import requests

    r = requests.get(
        f"{cloud_url}/api/v1/stores/{store_id}/sync-state",
        headers={"Authorization": f"Bearer {hq}"},
        timeout=10,
    )
    r.raise_for_status()
    state: dict[str, Any] = r.json()
    return state


def high_water(cloud_url: str, hq: str, store_id: str) -> int:
    return int(sync_state(cloud_url, hq, store_id)["high_water_seq"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sales", type=int, default=50_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--scan-devices", type=int, default=8)
    parser.add_argument(
        "--drain-by",
        choices=("server", "sync-now"),
        default="server",
        help="server: the store server's own background sync; sync-now: the server serves "
        "scans only and a separate `aisle edge sync-now` process drains",
    )
    parser.add_argument("--pg-url", default=os.environ.get("AISLE_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)

    import psycopg
    from sqlalchemy.engine import make_url

    from aisle.demo.catalog import write_demo_catalog

    started = time.monotonic()
    admin = make_url(args.pg_url).set(drivername="postgresql").render_as_string(False)
    dbname = f"aisle_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    db_url = make_url(args.pg_url).set(database=dbname).render_as_string(False)
    res: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "postgresql": _pg_version(admin),
        },
        "commit": _git("rev-parse", "--short", "HEAD"),
        "sales": args.sales,
        "lines_per_sale": args.lines,
        "batch_events": args.batch,
        "scan_devices": args.scan_devices,
        "drain_by": args.drain_by,
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="aisle-sync-bench-") as tmp_name:
            tmp = Path(tmp_name)
            cenv = {"AISLE_DATABASE_URL": db_url, "AISLE_SERVER__WORKERS": "2"}
            catalog = write_demo_catalog(tmp / "catalog.csv", count=2400, seed=7)
            aisle("cloud", "init", str(tmp / "cloud"), env=cenv)
            ccfg = str(tmp / "cloud" / "cloud.toml")
            aisle("cloud", "import-catalog", str(catalog.path), "--config", ccfg, env=cenv)
            code1 = aisle("cloud", "add-store", "S001", "--config", ccfg, env=cenv).split()[-1]
            code2 = aisle("cloud", "add-store", "S002", "--config", ccfg, env=cenv).split()[-1]
            hq = aisle("cloud", "token", "--role", "hq", "--config", ccfg, env=cenv).split()[-1]
            cport = free_port()
            cloud_url = f"http://127.0.0.1:{cport}"
            cloud = subprocess.Popen(
                [*serve_cmd("cloud", ccfg), "--port", str(cport)],
                env={**os.environ, **cenv},
                stdout=(tmp / "cloud.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(cloud)
            wait_healthy(cloud_url, cloud)

            store = tmp / "store"
            aisle("edge", "init", str(store), "--store-id", "S001")
            ecfg = str(store / "edge.toml")
            aisle("edge", "import-catalog", str(catalog.path), "--config", ecfg)
            token = aisle("edge", "pair", "--role", "kiosk", "--config", ecfg).split()[-1]
            aisle("edge", "enroll", "--cloud", cloud_url, "--code", code1, "--config", ecfg)

            log(f"building {args.sales} sales of {args.lines} lines")
            import sqlite3

            conn = sqlite3.connect(store / "edge.sqlite3")
            products = conn.execute(
                "SELECT p.sku, p.name, p.unit_price, p.tax_rate_bp, b.gtin FROM products p "
                "JOIN barcodes b ON b.sku = p.sku WHERE p.sold_by = 'each' "
                "AND NOT p.age_restricted"
            ).fetchall()
            conn.close()
            template = template_sale(store)
            t0 = time.perf_counter()
            events = backlog_events("S001", template, products, args.sales, args.lines)
            last_seq = write_backlog(store / "edge.sqlite3", events)
            res["backlog"] = {
                "events": len(events),
                "last_seq": last_seq,
                "lines": sum(len(e["payload"]["sale"]["lines"]) for e in events),
                "build_s": round(time.perf_counter() - t0, 1),
                "outbox_mb": round((store / "edge.sqlite3").stat().st_size / 1e6, 1),
            }
            log(f"backlog: {res['backlog']}")

            log("end to end: store server with background sync + scanners")
            codes = tmp / "codes.txt"
            codes.write_text("\n".join(catalog.barcodes) + "\n")
            eport = free_port()
            eenv = {
                "AISLE_PAYMENTS__LATENCY_MS": "0",
                "AISLE_SYNC__BATCH_EVENTS": str(args.batch),
                "AISLE_SYNC__PUSH_INTERVAL_S": "1",
            }
            if args.drain_by == "sync-now":
                eenv["AISLE_SYNC__ENABLED"] = "false"
            scan_result: dict[str, Any] = {}
            t_start = time.perf_counter()
            edge = subprocess.Popen(
                [*serve_cmd("edge", ecfg), "--port", str(eport)],
                env={**os.environ, **eenv},
                stdout=(tmp / "edge.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(edge)
            wait_healthy(f"http://127.0.0.1:{eport}", edge)
            t_up = time.perf_counter()

            def scan_during() -> None:
                scan_result.update(
                    loadgen.run_flow(
                        f"http://127.0.0.1:{eport}",
                        token,
                        codes,
                        mode="scan",
                        connections=args.scan_devices,
                        warmup=0.0,
                        duration=15.0,
                    )
                )

            scanner = threading.Thread(target=scan_during)
            scanner.start()
            if args.drain_by == "sync-now":
                procs.append(
                    subprocess.Popen(
                        [str(BIN / "aisle"), "edge", "sync-now", "--config", ecfg],
                        env={**os.environ, **eenv},
                        stdout=(tmp / "sync-now.log").open("wb"),
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            first_seen = None
            while True:
                hw = high_water(cloud_url, hq, "S001")
                if first_seen is None and hw > 1:
                    first_seen = time.perf_counter()
                if hw >= last_seq:
                    break
                if time.perf_counter() - t_start > 600:
                    raise RuntimeError(f"drain stalled at {hw} of {last_seq}")
                time.sleep(0.1)
            t_done = time.perf_counter()
            scanner.join()
            drain_s = t_done - t_start
            state = sync_state(cloud_url, hq, "S001")
            res["end_to_end"] = {
                "applied": state["events_applied"],
                "quarantined": state["quarantined"],
                "seconds_from_server_start": round(drain_s, 2),
                "seconds_from_server_up": round(t_done - t_up, 2),
                "sales_per_s": round(args.sales / drain_s, 1),
                "lines_per_s": round(res["backlog"]["lines"] / drain_s, 1),
            }
            res["scans_during_drain"] = _scan_summary(scan_result)
            res["scans_during_drain"]["window_s"] = 15.0
            log(f"end to end: {res['end_to_end']}; scans {res['scans_during_drain']}")
            scan_result.clear()
            scan_during()
            res["scans_without_drain"] = _scan_summary(scan_result)
            log(f"scans without drain: {res['scans_without_drain']}")
            log("ingest alone (S002, pre-encoded signed batches, one client)")
            # Sales of its own: the same ids under another store would all be refused.
            s2 = backlog_events("S002", template, products, args.sales, args.lines)
            res["ingest_alone"] = ingest_alone(cloud_url, code2, "S002", s2, args.batch)
            log(f"ingest alone: {res['ingest_alone']}")

    finally:
        for p in procs:
            stop(p)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    res["elapsed_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"sync-bench-{stamp}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    quarantined = res["end_to_end"]["quarantined"] + res["ingest_alone"]["quarantined"]
    if quarantined:
        log(f"FAILED: {quarantined} events quarantined; the figures measure the quarantine path")
        return 1
    return 0


def _scan_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "scans_per_s": round(r.get("scans_per_s", 0.0), 1),
        "p50_ms": round(r.get("p50_ms", 0.0), 1),
        "p99_ms": round(r.get("p99_ms", 0.0), 1),
        "errors": r.get("errors"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _pg_version(conninfo: str) -> str:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
