"""What the checkout benchmark runs against each server, and the profiles beside it.

The tests: scans into open carts, whole baskets (create, scan, pay), and paying carts seeded
ahead (:func:`seed_carts`); :func:`measured` runs one with the server's process tree sampled and
:func:`one_server` runs a list of them, each against a fresh copy of the store. The profiles:
time inside the workers (:func:`diagnose`, with ``instrumented_edge.py``), one request at a
time in process (:func:`inprocess_profile`), memory while the app is built (:func:`import_rss`)
and py-spy samples of one worker (:func:`pyspy_profiles`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import loadgen
from processes import (
    BENCH,
    BIN,
    Sampler,
    Server,
    cpu_probe,
    free_port,
    log,
    process_tree,
    run,
    wait_quiet,
)
from report import headline, headline_plain
from servers import PROD_THREADS, PROD_WORKERS, Fixture, edge_server, instrumented

from devices.statistics import percentile


def scan_test(
    fx: Fixture, port: int, args: argparse.Namespace, warmup: float, duration: float
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    if loadgen.wrk_available() and not args.no_wrk:
        return loadgen.run_wrk_scans(
            url,
            fx.token,
            fx.scan_codes,
            connections=args.connections,
            warmup=warmup,
            duration=duration,
        )
    return loadgen.run_flow(
        url,
        fx.token,
        fx.scan_codes,
        mode="scan",
        connections=args.connections,
        warmup=warmup,
        duration=duration,
    )


def checkout_test(
    fx: Fixture, port: int, args: argparse.Namespace, warmup: float, duration: float
) -> dict[str, Any]:
    return loadgen.run_flow(
        f"http://127.0.0.1:{port}",
        fx.token,
        fx.checkout_codes,
        mode="checkout",
        connections=args.connections,
        warmup=warmup,
        duration=duration,
        items=5,
    )


PAY_CARTS = 30_000  # more than 32 devices pay for in warm-up + 20 s at 1,000 sales/s
PAY_ITEMS = 5


def seed_carts(d: Path, n: int = PAY_CARTS, items: int = PAY_ITEMS) -> Path:
    """Put ``n`` open kiosk carts of ``items`` lines each into both databases of run dir ``d``.

    The checkout-only test pays for these, so it measures the sale write alone (the loop test
    measures a whole basket). Same cart ids, lines and totals in Aisle's store and the floor.
    Returns a file of ``cart_id:total`` entries for the load generator.
    """
    import random
    import sqlite3

    from edge.db import to_sql_time
    from shared.ids import new_id

    rng = random.Random(11)
    stamp = to_sql_time(datetime.now(UTC))
    store = sqlite3.connect(d / "store" / "edge.sqlite3")
    floor = sqlite3.connect(d / "floor.db")
    products = store.execute(
        "SELECT b.gtin, p.sku, p.name, p.sold_by, p.unit_price, p.tax_rate_bp "
        "FROM barcodes b JOIN products p ON p.sku = b.sku "
        "WHERE p.sold_by = 'each' AND NOT p.age_restricted ORDER BY b.gtin"
    ).fetchall()
    (device,) = store.execute("SELECT id FROM devices WHERE role = 'kiosk' LIMIT 1").fetchone()
    (floor_device,) = floor.execute("SELECT id FROM devices LIMIT 1").fetchone()
    entries, carts, floor_carts, lines, floor_lines = [], [], [], [], []
    for _ in range(n):
        cart_id = new_id()
        total = 0
        for position, (gtin, sku, name, sold_by, price, rate) in enumerate(
            rng.sample(products, items), start=1
        ):
            line_id = new_id()
            row = (line_id, cart_id, position, sku, name, sold_by, 0, gtin, 1, None, price)
            lines.append((*row, price, rate))
            floor_lines.append((line_id, cart_id, position, sku, name, gtin, 1, price, rate))
            total += price
        carts.append((cart_id, "kiosk", "open", device, "CNY", stamp, stamp))
        floor_carts.append((cart_id, "kiosk", "open", floor_device, "CNY", stamp, stamp))
        entries.append(f"{cart_id}:{total}")
    with store:
        store.executemany(
            "INSERT INTO carts (id, channel, status, device_id, currency, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            carts,
        )
        store.executemany(
            "INSERT INTO cart_lines (id, cart_id, position, sku, name, sold_by, age_restricted, "
            "barcode, quantity, weight_g, unit_price, piece_price, tax_rate_bp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            lines,
        )
    with floor:
        floor.executemany(
            "INSERT INTO carts (id, channel, status, device_id, currency, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            floor_carts,
        )
        floor.executemany(
            "INSERT INTO cart_lines (id, cart_id, position, sku, name, barcode, quantity, "
            "unit_price, tax_rate_bp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            floor_lines,
        )
    store.close()
    floor.close()
    path = d / "pay_carts.txt"
    rng.shuffle(entries)
    path.write_text("\n".join(entries) + "\n")
    return path


def pay_test(
    fx: Fixture, port: int, args: argparse.Namespace, warmup: float, duration: float, carts: Path
) -> dict[str, Any]:
    return loadgen.run_flow(
        f"http://127.0.0.1:{port}",
        fx.token,
        carts,
        mode="pay",
        connections=args.connections,
        warmup=warmup,
        duration=duration,
    )


def measured(server: Server, test: Any, *targs: Any) -> dict[str, Any]:
    """Run ``test`` against ``server`` with the RSS/CPU sampler on; adds the server's numbers."""
    assert server.proc is not None
    sampler = Sampler(server.proc.pid, server.port)
    sampler.start()
    t0 = time.monotonic()
    try:
        result = test(*targs)
    finally:
        t1 = time.monotonic()
        sampler.stop()
    duration = result["duration_s"]
    load = sampler.window(t0, t1)
    # The measured window is the last ``duration`` seconds of the test.
    window = sampler.window(t1 - duration, t1)
    result["server"] = {
        "rss_max_mb": load.get("rss_max_mb"),
        "pss_max_mb": load.get("pss_max_mb"),
        "processes": load.get("processes"),
        "cpu_cores": window.get("server_cpu_cores"),
        # Per process at the peak; the first is the one started (the server's master).
        "rss_mb_by_process_at_max": [
            round(kb / 1024, 1)
            for _pid, kb in sorted(
                sampler.rss_at_max.items(), key=lambda kv: kv[0] != server.proc.pid
            )
        ],
    }
    splits = [
        sorted((n for pid, n in split.items() if n), reverse=True)
        for t, split in sampler.conn_splits
        if t1 - duration <= t <= t1
    ]
    if splits:
        # Keep-alive connections stay with the process that accepted them: how even was it?
        result["server"]["connections_by_process"] = splits[len(splits) // 2]
    busy = window.get("machine_busy_cores")
    if busy is not None and window.get("server_cpu_cores") is not None:
        # Whatever else ran on the machine meanwhile (tests, builds...).
        other = busy - window["server_cpu_cores"] - result["client_cpu_share"]
        result["machine"] = {"busy_cores": busy, "other_cores": max(0.0, other)}
    return result


def one_server(
    fx: Fixture,
    make: Any,
    tests: list[str],
    args: argparse.Namespace,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    out = {}
    for test in tests:
        d = fx.fresh()
        port = free_port()
        wait_quiet(args.wait_quiet)
        probe = cpu_probe()
        extra: tuple[Any, ...] = ()
        if test == "pay":
            extra = (seed_carts(d),)
        with make(d, port) as server:
            log(f"{server.name}: {test} ({warmup:g} s warm-up + {duration:g} s)")
            fn = {"scan": scan_test, "checkout": checkout_test, "pay": pay_test}[test]
            out[test] = measured(server, fn, fx, port, args, warmup, duration, *extra)
            out[test]["server_name"] = server.name
            out[test]["cpu_probe_ms"] = probe
            log(f"  -> {headline(out[test])}")
        shutil.rmtree(d, ignore_errors=True)
    return out


def diagnose(fx: Fixture, args: argparse.Namespace) -> dict[str, Any]:
    """Scan and checkout tests against bench/instrumented_edge.py: time inside the worker."""
    out: dict[str, Any] = {}
    warmup, duration = args.sweep_warmup, args.sweep_duration + 2
    for test in ("scan", "checkout"):
        d = fx.fresh()
        stats = d / "stats"
        stats.mkdir()
        port = free_port()
        with instrumented(d, port, PROD_WORKERS, PROD_THREADS, stats) as server:
            log(f"{server.name}: {test} ({warmup:g} s warm-up + {duration:g} s)")
            fn = scan_test if test == "scan" else checkout_test
            client = fn(fx, port, args, warmup, duration)
            end = time.time()
            time.sleep(1.5)  # let every worker write its samples once more
        rows: list[list[Any]] = []
        for f in stats.glob("stats-*.json"):
            rows.extend(json.loads(f.read_text()))
        start = end - duration
        rows = [r for r in rows if start <= r[0] <= end]
        kinds: dict[str, Any] = {}
        for kind in sorted({r[1] for r in rows}):
            rs = [r for r in rows if r[1] == kind]
            service = [r[2] for r in rs]
            waits = [r[4] for r in rs if r[6]]
            helds = [r[5] for r in rs if r[6]]
            kinds[kind] = {
                "count": len(rs),
                "service_p50_ms": _ms(percentile(service, 50)),
                "service_p99_ms": _ms(percentile(service, 99)),
                "cpu_ms_mean": sum(r[3] for r in rs) / len(rs) * 1000,
                "lock_wait_p50_ms": _ms(percentile(waits, 50)),
                "lock_wait_p99_ms": _ms(percentile(waits, 99)),
                "lock_held_mean_ms": _ms(sum(helds) / len(helds) if helds else None),
                "lock_held_p99_ms": _ms(percentile(helds, 99)),
            }
        client_kinds = client.get("by_kind") or {"scan": {"p50_ms": client["p50_ms"]}}
        for kind, k in kinds.items():
            k["client_p50_ms"] = client_kinds.get(kind, {}).get("p50_ms")
        out[test] = {
            "client": headline(client | {"server": {"cpu_cores": None}}),
            "kinds": kinds,
            "lock_busy_share": sum(r[5] for r in rows) / duration,
            "requests_in_window": len(rows),
        }
        log(f"  -> lock busy {out[test]['lock_busy_share'] * 100:.0f}% of the window")
        shutil.rmtree(d, ignore_errors=True)
    return out


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1000


def inprocess_profile(fx: Fixture) -> dict[str, Any]:
    d = fx.fresh()
    env = dict(os.environ, AISLE_PAYMENTS__LATENCY_MS="0")
    out = run(
        [
            sys.executable,
            str(BENCH / "profile_inprocess.py"),
            "--config",
            str(d / "store" / "edge.toml"),
            "--floor-db",
            str(d / "floor.db"),
            "--token",
            fx.token,
            "--barcodes-file",
            str(fx.checkout_codes),
            "--scans",
            "800",
            "--checkouts",
            "120",
        ],
        env=env,
    )
    shutil.rmtree(d, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def import_rss(fx: Fixture) -> list[dict[str, Any]]:
    d = fx.fresh()
    out = run(
        [sys.executable, str(BENCH / "import_rss.py"), "--config", str(d / "store" / "edge.toml")],
        cwd=tempfile.gettempdir(),
    )
    shutil.rmtree(d, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def summarize_pyspy(path: Path, top: int = 15) -> dict[str, Any]:
    """Collapsed py-spy stacks -> top functions (own and inclusive) and deepest edge frames."""
    own: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    edge_lines: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not n_text.isdigit():
            continue
        n = int(n_text)
        total += n
        frames = stack.split(";")
        funcs = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") and ":" in f else f for f in frames]
        own[funcs[-1]] += n
        leaf[frames[-1]] += n
        for f in set(funcs):
            incl[f] += n
        ours = [f for f in frames if "(edge/" in f or "(sync/" in f]
        edge_lines[ours[-1] if ours else "(no edge/sync frame)"] += n

    def pct(c: Counter[str]) -> list[list[Any]]:
        return [[k, round(v / total * 100, 1)] for k, v in c.most_common(top)]

    return {
        "samples": total,
        "own": pct(own),
        "leaf_with_line": pct(leaf),
        "inclusive": pct(incl),
        "inclusive_edge": [
            [k, round(v / total * 100, 1)]
            for k, v in incl.most_common()
            if "(edge/" in k or "(sync/" in k
        ][:top],
        "deepest_edge_frame": pct(edge_lines),
    }


def pyspy_profiles(fx: Fixture, args: argparse.Namespace) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)
    if pyspy is None:
        return {"skipped": "py-spy not installed (pip install py-spy into the venv to enable)"}
    out: dict[str, Any] = {}
    # py-spy's default mode leaves out threads it sees idle (sleeping in a syscall); a thread
    # blocked on a lock may still show up, as a leaf frame on the lock's line.
    plan = [("scan_oncpu", "scan", []), ("checkout_oncpu", "checkout", [])]
    seconds = 6
    for name, test, flags in plan:
        d = fx.fresh()
        port = free_port()
        with edge_server(d, port, PROD_WORKERS, PROD_THREADS) as server:
            assert server.proc is not None
            workers = [p for p in process_tree(server.proc.pid) if p != server.proc.pid]
            raw = fx.tmp / f"{name}.txt"
            log(f"py-spy {name}: worker {workers[0]} of {server.name}, {seconds} s under load")
            result: dict[str, Any] = {}

            def load(test: str = test, result: dict[str, Any] = result, port: int = port) -> None:
                fn = scan_test if test == "scan" else checkout_test
                result.update(fn(fx, port, args, 1, seconds + 3))

            t = threading.Thread(target=load)
            t.start()
            time.sleep(2)
            proc = subprocess.run(
                [
                    pyspy,
                    "record",
                    "-p",
                    str(workers[0]),
                    "-d",
                    str(seconds),
                    "-r",
                    "100",
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    "--nonblocking",
                    *flags,
                ],
                check=False,
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
            t.join()
            if proc.returncode != 0 or not raw.exists():
                out[name] = {"error": (proc.stderr or proc.stdout)[-500:]}
            else:
                out[name] = summarize_pyspy(raw)
                out[name]["load_during_profile"] = headline_plain(result)
        shutil.rmtree(d, ignore_errors=True)
    return out
