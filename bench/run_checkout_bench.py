"""Scan-to-cart and checkout benchmarks at 32 devices, with a bare Flask + sqlite3 floor.

``make bench`` runs this (about 4.5 minutes). It builds a store in a temporary directory with the
real command line (``aisle edge init``, ``import-catalog`` of the 2,400-product demo catalog,
``pair --role kiosk``), serves it with ``aisle edge serve`` (granian and the store's gateway, the
defaults of 2 workers x 8 threads, payment latency 0) on 127.0.0.1, and measures:

a. scan-to-cart: 32 devices, each with an open cart, POST scans into it; a new cart every 20
   scans (``wrk`` + Lua when installed, else the asyncio client; see ``bench/loadgen.py``);
b. checkout: 32 devices, each looping create cart, scan 5 items, pay cash (asyncio client);
c. server RSS: VmRSS summed over the server's master and workers, sampled every 0.25 s during
   load (max), with PSS beside it; server CPU (cores) in the measured window; and the CPU other
   processes on the machine used meanwhile, so a disturbed run shows;
d. the floor: ``bench/floor_app.py`` (Flask + stdlib sqlite3, WAL, synchronous=FULL, the same
   statements, writers queued like edge/db.py) under the same server (``serve_floor.py``);
   our ratio to it.

Then a quick sweep of the scan test over workers x threads, waitress, and two floor
variants (SQLite's own busy handler; cart edits at synchronous=NORMAL); an in-process cost
breakdown (``bench/profile_inprocess.py``: CPU and write-lock hold per request, cProfile); the
same tests against ``bench/instrumented_edge.py`` (lock wait / lock held / service time inside
the workers); and, when ``py-spy`` is installed in the venv, a sampling profile of one worker.
Every server run starts from a fresh copy of the same store. Prints markdown tables and writes
JSON (and the markdown) to ``bench/results/``.

Options worth knowing: ``--code HEAD`` benchmarks a commit (extracted read-only with ``git
archive``) instead of the work tree; ``--wait-quiet 60`` waits for other processes to go quiet
before each test; ``--no-main --repeat 3 --sweep-duration 10`` for a steadier sweep;
``--no-sweep``, ``--no-profile``, ``--no-pyspy``, ``--duration``, ``--warmup``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402

BIN = Path(sys.executable).parent
# Where the code under test lives: the work tree, or a ``git archive`` of ``--code REV``.
CODE = {"root": ROOT, "rev": None}
RESULTS = BENCH / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"scans_per_s": 800, "scan_p99_ms": 50, "sales_per_s": 200, "rss_mb": 150}
PROD_WORKERS, PROD_THREADS = 2, 8  # the defaults ``aisle edge init`` writes to edge.toml


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------------


def run(cmd: list[str], **kw: Any) -> str:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


FINGERPRINTS: list[str] = []


def code_fingerprint() -> str:
    """A hash of the Python code the servers import (edge/, sync/, aisle/)."""
    h = hashlib.sha256()
    root = CODE["root"]
    for package in ("edge", "sync", "aisle"):
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            with contextlib.suppress(OSError):
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def process_tree(root: int) -> list[int]:
    parents = _parents()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(frontier)
    return tree


def vmrss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def system_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all CPUs): everything but idle and iowait."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return sum(values) - values[3] - values[4]


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f[9])
    return inodes


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """How many of the server's established client connections each process holds."""
    inodes = established_inodes(port)
    out = {}
    for pid in pids:
        n = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        n += 1
        out[pid] = n
    return out


class Sampler(threading.Thread):
    """Samples the server's process tree: summed VmRSS and Pss, and CPU ticks, every 0.25 s."""

    def __init__(self, root: int, port: int | None = None) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.port = port
        # (time, {pid: established client connections}), every 2 s
        self.conn_splits: list[tuple[float, dict[int, int]]] = []
        self.samples: list[tuple[float, int, int, int, int, int]] = []
        self.rss_at_max: dict[int, int] = {}  # pid -> VmRSS kB, at the largest summed sample
        self._stop_event = threading.Event()
        self._pids = process_tree(root)
        self._pids_at = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.monotonic()
            if now - self._pids_at > 2:
                self._pids, self._pids_at = process_tree(self.root), now
                if self.port:
                    self.conn_splits.append((now, connections_by_process(self._pids, self.port)))
            per_pid = {p: vmrss_kb(p) for p in self._pids}
            rss = sum(per_pid.values())
            if rss > sum(self.rss_at_max.values()):
                self.rss_at_max = per_pid
            pss = sum(pss_kb(p) for p in self._pids)
            ticks = sum(cpu_ticks(p) for p in self._pids)
            busy = system_busy_ticks()
            self.samples.append((now, rss, pss, ticks, len(self._pids), busy))
            self._stop_event.wait(0.25)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        return {
            "rss_max_mb": max(s[1] for s in inside) / 1024,
            "pss_max_mb": max(s[2] for s in inside) / 1024,
            "processes": max(s[4] for s in inside),
            "server_cpu_cores": (last[3] - first[3]) / CLK_TCK / (last[0] - first[0]),
            "machine_busy_cores": (last[5] - first[5]) / CLK_TCK / (last[0] - first[0]),
        }


class Server:
    """A server process group started by this script; stopped by signalling that group only."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def __enter__(self) -> Server:
        FINGERPRINTS.append(code_fingerprint())
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=tempfile.gettempdir(),  # not the work tree: '' on sys.path must not shadow --code
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    time.sleep(0.5)  # let every worker finish booting
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz in 60 s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


# --- the store and the floor ---------------------------------------------------------------------


class Fixture:
    """Template store + floor database, copied fresh for every server run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.template = tmp / "template"
        self.runs = 0
        from aisle.demo.catalog import write_demo_catalog

        store = self.template / "store"
        run([str(BIN / "aisle"), "edge", "init", str(store), "--store-id", "S001"])
        catalog = write_demo_catalog(self.template / "catalog.csv", count=2400, seed=7)
        out = run(
            [
                str(BIN / "aisle"),
                "edge",
                "import-catalog",
                str(catalog.path),
                "--config",
                str(store / "edge.toml"),
            ]
        )
        self.import_line = out.strip().splitlines()[-1]
        out = run(
            [
                str(BIN / "aisle"),
                "edge",
                "pair",
                "--role",
                "kiosk",
                "--config",
                str(store / "edge.toml"),
            ]
        )
        self.token = out.strip().splitlines()[-1]
        restricted = set(catalog.age_restricted_barcodes)
        # Scans use every scannable code (a few need an attendant's approval, as in a store);
        # checkout baskets leave the age-restricted ones out so the sale needs no approval.
        self.scan_codes = tmp / "scan_codes.txt"
        self.scan_codes.write_text("\n".join(catalog.barcodes) + "\n")
        self.checkout_codes = tmp / "checkout_codes.txt"
        self.checkout_codes.write_text(
            "\n".join(c for c in catalog.barcodes if c not in restricted) + "\n"
        )
        self.n_scan_codes = len(catalog.barcodes)
        self.n_restricted = len(restricted)
        run(
            [
                sys.executable,
                str(BENCH / "floor_app.py"),
                "init",
                str(self.template / "floor.db"),
                str(catalog.path),
                self.token,
            ]
        )

    def fresh(self) -> Path:
        """A new copy of the template (store dir + floor db); returns its directory."""
        self.runs += 1
        target = self.tmp / f"run{self.runs:02d}"
        shutil.copytree(self.template, target)
        return target


def edge_server(d: Path, port: int, workers: int, threads: int) -> Server:
    env = dict(os.environ, AISLE_PAYMENTS__LATENCY_MS="0", AISLE_SERVER__THREADS=str(threads))
    cmd = [
        str(BIN / "aisle"),
        "edge",
        "serve",
        "--config",
        str(d / "store" / "edge.toml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(f"aisle edge serve -w{workers} threads={threads}", cmd, env, port)


FLOOR_VARIANTS = {
    # The floor of the main table: writers queue like edge/db.py WriteLock, everything FULL.
    "queue": {"FLOOR_LOCK": "queue", "FLOOR_CART_SYNC": "FULL"},
    # Bare SQLite waiting: busy_timeout's sleeping busy handler, everything FULL.
    "busy": {"FLOOR_LOCK": "busy", "FLOOR_CART_SYNC": "FULL"},
    # Durability matched to Aisle's current choice: cart edits commit with synchronous=NORMAL.
    "normal": {"FLOOR_LOCK": "queue", "FLOOR_CART_SYNC": "NORMAL"},
}


def floor_server(d: Path, port: int, workers: int, threads: int, variant: str = "queue") -> Server:
    """The floor served the store's way (``bench/serve_floor.py``: granian + the gateway)."""
    env = dict(os.environ, FLOOR_DB=str(d / "floor.db"), **FLOOR_VARIANTS[variant])
    cmd = [
        sys.executable,
        str(BENCH / "serve_floor.py"),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--port",
        str(port),
    ]
    return Server(f"floor[{variant}] -w{workers} threads={threads}", cmd, env, port)


def waitress_server(d: Path, port: int, threads: int, app: str) -> Server:
    env = dict(
        os.environ,
        AISLE_PAYMENTS__LATENCY_MS="0",
        FLOOR_DB=str(d / "floor.db"),
        **FLOOR_VARIANTS["queue"],
    )
    cmd = [
        sys.executable,
        str(BENCH / "serve_waitress.py"),
        "--app",
        app,
        "--config",
        str(d / "store" / "edge.toml"),
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]
    return Server(f"{app} waitress threads={threads}", cmd, env, port)


# --- tests ---------------------------------------------------------------------------------------


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


def cpu_probe() -> float:
    """Milliseconds for a fixed pure-Python loop (best of 3): shows a host that got slower."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sum(i * i for i in range(200_000))
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def wait_quiet(limit: float) -> None:
    """Wait (at most ``limit`` s) until the machine is nearly idle before starting a server."""
    deadline = time.monotonic() + limit
    while limit > 0:
        b0, t0 = system_busy_ticks(), time.monotonic()
        time.sleep(1)
        busy = (system_busy_ticks() - b0) / CLK_TCK / (time.monotonic() - t0)
        if busy < 0.25:
            return
        if time.monotonic() > deadline:
            log(f"machine still busy ({busy:.2f} cores used by others); going ahead")
            return
        log(f"waiting for a quiet machine ({busy:.2f} cores busy)")


def headline(r: dict[str, Any]) -> str:
    if "sales_per_s" in r:
        return (
            f"{r['sales_per_s']:.1f} sales/s, checkout p99 {r['checkout_p99_ms']:.1f} ms, "
            f"errors {r['errors']}, server CPU {fmt(r['server']['cpu_cores'], 2)} cores, "
            f"other load {fmt(other_load(r), 2)} cores"
        )
    return (
        f"{r['scans_per_s']:.1f} scans/s, p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f} ms, "
        f"connections per process {split_text(r)}, "
        f"errors {r['errors']}, server CPU {fmt(r['server']['cpu_cores'], 2)} cores, "
        f"other load {fmt(other_load(r), 2)} cores"
    )


def split_text(r: dict[str, Any]) -> str:
    split = r.get("server", {}).get("connections_by_process")
    return "/".join(str(n) for n in split) if split else "n/a"


def other_load(r: dict[str, Any]) -> float | None:
    return r.get("machine", {}).get("other_cores")


# --- profiles ------------------------------------------------------------------------------------


def instrumented(d: Path, port: int, workers: int, threads: int, stats: Path) -> Server:
    env = dict(
        os.environ,
        AISLE_PAYMENTS__LATENCY_MS="0",
        AISLE_SERVER__THREADS=str(threads),
        BENCH_STATS_DIR=str(stats),
    )
    cmd = [
        sys.executable,
        str(BENCH / "instrumented_edge.py"),
        "--config",
        str(d / "store" / "edge.toml"),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(f"instrumented edge -w{workers} threads={threads}", cmd, env, port)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return loadgen.percentile(sorted(values), q)


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
                "service_p50_ms": _ms(_pct(service, 50)),
                "service_p99_ms": _ms(_pct(service, 99)),
                "cpu_ms_mean": sum(r[3] for r in rs) / len(rs) * 1000,
                "lock_wait_p50_ms": _ms(_pct(waits, 50)),
                "lock_wait_p99_ms": _ms(_pct(waits, 99)),
                "lock_held_mean_ms": _ms(sum(helds) / len(helds) if helds else None),
                "lock_held_p99_ms": _ms(_pct(helds, 99)),
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


def headline_plain(r: dict[str, Any]) -> str:
    if "sales_per_s" in r:
        return f"{r['sales_per_s']:.1f} sales/s, {r['errors']} errors (profiler attached)"
    return f"{r['scans_per_s']:.1f} scans/s, {r['errors']} errors (profiler attached)"


# --- report --------------------------------------------------------------------------------------


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    commit = dirty = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        status = subprocess.run(
            # --no-optional-locks: read only, never refreshes the index.
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "edge", "sync", "aisle"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout
        dirty = "clean" if not status.strip() else f"{len(status.splitlines())} files modified"
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "commit": commit,
        "worktree_edge_sync_aisle": dirty,
        "wrk": shutil.which("wrk") or "not installed",
        "loadavg_at_start": os.getloadavg(),
        "code_under_test": (
            f"git archive of {CODE['rev']}" if CODE["rev"] else "work tree (as found on disk)"
        ),
    }


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}; Python {m['python']}; "
        f"HEAD {m['commit']} (work tree edge/sync/aisle: {m['worktree_edge_sync_aisle']}); "
        f"code under test: {m['code_under_test']}; {m['date_utc']}; load average at start "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}; elapsed "
        f"{res['elapsed_s']:.0f} s",
    ]
    if "edge" in res:
        lines += main_tables(res)
    if res.get("sweep"):
        lines += sweep_table(res)
    if res.get("inprocess"):
        lines += inprocess_tables(res["inprocess"])
    if res.get("diagnosis"):
        lines += diagnosis_table(res["diagnosis"])
    if res.get("import_rss"):
        lines += [
            "",
            "Memory of one process building the app step by step (bench/import_rss.py):",
            "",
            "| step | VmRSS MB | added MB |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['step']} | {r['rss_mb']:.1f} | {r['added_mb']:+.1f} |" for r in res["import_rss"]
        ]
    if res.get("pyspy"):
        lines += pyspy_tables(res["pyspy"])
    if res.get("edge_changed_during_run"):
        lines += [
            "",
            "**Warning: files under edge/, sync/ or aisle/ changed while this ran** "
            "(edits during the run); servers started at different times ran different code. "
            "Use --code HEAD to benchmark a fixed commit.",
        ]
    return "\n".join(lines)


def main_tables(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    edge, floor = res["edge"], res["floor"]
    es, ec, fs, fc = edge["scan"], edge["checkout"], floor["scan"], floor["checkout"]
    ep, fp = edge["pay"], floor["pay"]
    rss = max(r["server"]["rss_max_mb"] or 0 for r in (es, ec, ep))
    frss = max(r["server"]["rss_max_mb"] or 0 for r in (fs, fc, fp))
    pss = max(r["server"]["pss_max_mb"] or 0 for r in (es, ec, ep))
    fpss = max(r["server"]["pss_max_mb"] or 0 for r in (fs, fc, fp))
    per_proc = max(max(r["server"].get("rss_mb_by_process_at_max") or [0]) for r in (es, ec, ep))
    ek, fk = ec["by_kind"].get("checkout", {}), fc["by_kind"].get("checkout", {})
    by_proc = " + ".join(f"{x:.1f}" for x in es["server"].get("rss_mb_by_process_at_max", []))
    lines = [
        f"Config: aisle edge serve (granian + gateway), {PROD_WORKERS} workers x "
        f"{PROD_THREADS} threads "
        f"(edge.toml defaults), {res['connections']} connections, "
        f"{res['warmup']:g} s warm-up + {res['duration']:g} s measured; scan load: "
        f"{es['tool']}; checkout load: asyncio client.",
        "",
        "| test | target | Aisle | floor (Flask + sqlite3, writers queued, all FULL) "
        "| Aisle / floor | verdict |",
        "|---|---|---|---|---|---|",
        f"| scans/s | >= {TARGETS['scans_per_s']} | {es['scans_per_s']:.1f} | "
        f"{fs['scans_per_s']:.1f} | {es['scans_per_s'] / fs['scans_per_s']:.2f} | "
        f"{verdict(es['scans_per_s'] >= TARGETS['scans_per_s'])} |",
        f"| scan p50 / p90 / p99 ms | p99 < {TARGETS['scan_p99_ms']} | "
        f"{es['p50_ms']:.1f} / {es['p90_ms']:.1f} / {es['p99_ms']:.1f} | "
        f"{fs['p50_ms']:.1f} / {fs['p90_ms']:.1f} / {fs['p99_ms']:.1f} | "
        f"p99 x{es['p99_ms'] / fs['p99_ms']:.2f} | "
        f"{verdict(es['p99_ms'] < TARGETS['scan_p99_ms'])} |",
        f"| scan errors (non-2xx + socket) | 0 | {es['errors']} | {fs['errors']} | | "
        f"{verdict(es['errors'] == 0)} |",
        f"| sales/s (create + 5 scans + checkout) | >= {TARGETS['sales_per_s']} | "
        f"{ec['sales_per_s']:.1f} | {fc['sales_per_s']:.1f} | "
        f"{ec['sales_per_s'] / fc['sales_per_s']:.2f} | "
        f"{verdict(ec['sales_per_s'] >= TARGETS['sales_per_s'])} |",
        f"| checkouts/s (paying ready 5-item carts) | >= {TARGETS['sales_per_s']} | "
        f"{ep['sales_per_s']:.1f} | {fp['sales_per_s']:.1f} | "
        f"{ep['sales_per_s'] / fp['sales_per_s']:.2f} | "
        f"{verdict(ep['sales_per_s'] >= TARGETS['sales_per_s'])} |",
        f"| checkout p50 / p90 / p99 ms (paying ready carts) | | "
        f"{ep['p50_ms']:.1f} / {ep['p90_ms']:.1f} / {ep['p99_ms']:.1f} | "
        f"{fp['p50_ms']:.1f} / {fp['p90_ms']:.1f} / {fp['p99_ms']:.1f} | | |",
        f"| checkout errors (paying ready carts) | 0 | {ep['errors']} | {fp['errors']} | | "
        f"{verdict(ep['errors'] == 0)} |",
        f"| checkout request p50 / p99 ms (in the loop) | | "
        f"{fmt(ek.get('p50_ms'))} / {fmt(ec['checkout_p99_ms'])} | "
        f"{fmt(fk.get('p50_ms'))} / {fmt(fc['checkout_p99_ms'])} | | |",
        f"| checkout-flow requests/s (all kinds) | | {ec['requests_per_s']:.1f} | "
        f"{fc['requests_per_s']:.1f} | {ec['requests_per_s'] / fc['requests_per_s']:.2f} | |",
        f"| checkout-flow errors | 0 | {ec['errors']} | {fc['errors']} | | "
        f"{verdict(ec['errors'] == 0)} |",
        f"| server RSS max MB (sum of master + workers) | | {rss:.1f} | {frss:.1f} | | |",
        f"| largest single process RSS MB | < {TARGETS['rss_mb']} | {per_proc:.1f} | | | "
        f"{verdict(per_proc < TARGETS['rss_mb'])} |",
        f"| server RSS at the scan peak, master + workers MB | | {by_proc} | | | |",
        f"| client connections per worker, mid-test, scans / checkouts | | "
        f"{split_text(es)} / {split_text(ec)} | {split_text(fs)} / {split_text(fc)} | | |",
        f"| server PSS max MB (shared pages counted once) | < {TARGETS['rss_mb']} | {pss:.1f} | "
        f"{fpss:.1f} | | {verdict(pss < TARGETS['rss_mb'])} |",
        f"| server CPU during scans / checkouts (cores of {m['nproc']}) | | "
        f"{fmt(es['server']['cpu_cores'], 2)} / {fmt(ec['server']['cpu_cores'], 2)} | "
        f"{fmt(fs['server']['cpu_cores'], 2)} / {fmt(fc['server']['cpu_cores'], 2)} | | |",
        f"| load generator CPU, scans / checkouts (cores) | | "
        f"{es['client_cpu_share']:.2f} / {ec['client_cpu_share']:.2f} | "
        f"{fs['client_cpu_share']:.2f} / {fc['client_cpu_share']:.2f} | | |",
        f"| CPU probe before the test, scans / checkouts (ms, lower = faster host) | | "
        f"{fmt(es.get('cpu_probe_ms'))} / {fmt(ec.get('cpu_probe_ms'))} | "
        f"{fmt(fs.get('cpu_probe_ms'))} / {fmt(fc.get('cpu_probe_ms'))} | | |",
        f"| other processes on the machine, scans / checkouts (cores) | 0 | "
        f"{fmt(other_load(es), 2)} / {fmt(other_load(ec), 2)} | "
        f"{fmt(other_load(fs), 2)} / {fmt(other_load(fc), 2)} | | |",
        "",
        "Checkout flow, per request type:",
        "",
        "| app | request | count | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for app, r in (("Aisle", ec), ("floor", fc)):
        for kind in ("create", "scan", "checkout"):
            k = r["by_kind"].get(kind)
            if k:
                lines.append(
                    f"| {app} | {kind} | {k['count']} | {k['p50_ms']:.1f} | {k['p90_ms']:.1f} | "
                    f"{k['p99_ms']:.1f} | {k['max_ms']:.1f} |"
                )
    return lines


def sweep_table(res: dict[str, Any]) -> list[str]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    names: dict[tuple[str, str], str] = {}
    for row in res["sweep"]:
        key = (row["kind"], row["shape"])
        groups.setdefault(key, []).append(row["result"])
        names[key] = row["server"]
    reps = max(len(v) for v in groups.values())
    lines = [
        "",
        f"Scan test by server and settings ({res['sweep_warmup']:g} s warm-up + "
        f"{res['sweep_duration']:g} s each, fresh store each"
        + (f"; {reps} interleaved runs each, mean [min - max]" if reps > 1 else "")
        + "):",
        "",
        "| server | workers x threads | scans/s | p50 ms | p99 ms | errors | server CPU cores "
        "| other load cores | RSS max MB | connections per worker | CPU probe ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def span(values: list[float], digits: int = 1) -> str:
        mean = sum(values) / len(values)
        if len(values) == 1:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} [{min(values):.{digits}f} - {max(values):.{digits}f}]"

    for key, rs in groups.items():
        lines.append(
            f"| {names[key]} | {key[1]} | {span([r['scans_per_s'] for r in rs])} | "
            f"{span([r['p50_ms'] for r in rs])} | {span([r['p99_ms'] for r in rs])} | "
            f"{sum(r['errors'] for r in rs)} | "
            f"{span([r['server']['cpu_cores'] or 0 for r in rs], 2)} | "
            f"{span([other_load(r) or 0 for r in rs], 2)} | "
            f"{max(r['server']['rss_max_mb'] or 0 for r in rs):.1f} | "
            f"{', '.join(split_text(r) for r in rs)} | "
            f"{span([r.get('cpu_probe_ms', 0) for r in rs])} |"
        )
    same = groups.get(("aisle", f"{PROD_WORKERS} x {PROD_THREADS}"))
    normal = groups.get(("floor-normal", f"{PROD_WORKERS} x {PROD_THREADS}"))
    if same and normal:
        a = sum(r["scans_per_s"] for r in same) / len(same)
        b = sum(r["scans_per_s"] for r in normal) / len(normal)
        lines += [
            "",
            f"Aisle / floor with cart edits at synchronous=NORMAL (as Aisle commits them), "
            f"{PROD_WORKERS} x {PROD_THREADS}, same sweep settings: {a / b:.2f} "
            f"(scans/s {a:.1f} vs {b:.1f}).",
        ]
    return lines


def inprocess_tables(ip: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "One request at a time, in process (Flask test client, no server, no contention):",
        "",
        "| app | request | wall ms | CPU ms | write lock held ms | cap = 1 / lock held "
        "| cap from CPU on 2 cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for app in ("edge", "floor"):
        for kind in ("scan", "checkout"):
            r = ip[app][kind]
            held, cap = r.get("lock_ms_per_request"), r.get("lock_cap_per_s")
            note = ""
            if held is None:  # no write lock in this version: the SQLAlchemy transaction
                held, cap, note = r.get("txn_ms_per_request"), r.get("txn_cap_per_s"), " (txn)"
            lines.append(
                f"| {'Aisle' if app == 'edge' else 'floor'} | {kind} | "
                f"{r['wall_ms_mean']:.2f} | {r['cpu_ms_mean']:.2f} | {fmt(held, 2)}{note} | "
                f"{fmt(cap, 0)}/s | {2 * r['max_rate_one_core_per_s']:.0f}/s |"
            )
    for kind in ("scan", "checkout"):
        prof = ip["edge"][kind].get("profile")
        if not prof:
            continue
        layers = ", ".join(f"{k} {v}%" for k, v in list(prof["by_layer_pct"].items())[:8])
        lines += [
            "",
            f"cProfile of Aisle {kind} (times inflated by the profiler), own time by "
            f"layer: {layers}",
            "",
            "| edge/sync function | cumulative us/request | % |",
            "|---|---|---|",
        ]
        for row in prof["top_edge_cumulative"][:12]:
            lines.append(
                f"| `{row['function']}` | {row['cum_us_per_req']:.0f} | {row['cum_pct']} |"
            )
        lines += ["", "| any function, own time | us/request | % | calls/request |"]
        lines += ["|---|---|---|---|"]
        for row in prof["top_self"][:12]:
            lines.append(
                f"| `{row['function']}` | {row['self_us_per_req']:.0f} | "
                f"{row['self_pct']} | {row['calls_per_req']} |"
            )
    return lines


def diagnosis_table(diag: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Inside the server under load (bench/instrumented_edge.py, {PROD_WORKERS} x "
        f"{PROD_THREADS}, same tests; service = time inside the app; lock = the store's "
        "write lock):",
        "",
        "| test | request | count | client p50 ms | service p50 / p99 ms | CPU ms/request "
        "| lock wait p50 / p99 ms | lock held mean / p99 ms | lock busy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for test, dres in diag.items():
        for kind, k in dres["kinds"].items():
            if kind == "other":
                continue
            lines.append(
                f"| {test} | {kind} | {k['count']} | {fmt(k['client_p50_ms'])} | "
                f"{fmt(k['service_p50_ms'])} / {fmt(k['service_p99_ms'])} | "
                f"{k['cpu_ms_mean']:.2f} | {fmt(k['lock_wait_p50_ms'])} / "
                f"{fmt(k['lock_wait_p99_ms'])} | {fmt(k['lock_held_mean_ms'], 2)} / "
                f"{fmt(k['lock_held_p99_ms'])} | {dres['lock_busy_share'] * 100:.0f}% |"
            )
    return lines


def pyspy_tables(spy: dict[str, Any]) -> list[str]:
    if "skipped" in spy:
        return ["", f"py-spy: {spy['skipped']}"]
    lines: list[str] = []
    for name, prof in spy.items():
        if "error" in prof:
            lines += ["", f"py-spy {name}: error {prof['error']}"]
            continue
        lines += [
            "",
            f"py-spy `{name}` (one worker, {prof['samples']} samples at 100 Hz, "
            f"{prof['load_during_profile']}):",
            "",
            "| where threads were (leaf frame) | % | edge/sync function, inclusive | % |",
            "|---|---|---|---|",
        ]
        for (k1, v1), (k2, v2) in zip(
            prof["leaf_with_line"][:12], prof["inclusive_edge"][:12], strict=False
        ):
            lines.append(f"| `{k1}` | {v1} | `{k2}` | {v2} |")
    return lines


# --- main ----------------------------------------------------------------------------------------

SWEEP_KINDS = {
    "aisle": "Aisle, aisle edge serve (granian + gateway)",
    "waitress": "Aisle, waitress",
    "floor-waitress": "floor, waitress",
    "floor-busy": "floor, SQLite busy handler (no queue)",
    "floor-normal": "floor, cart edits synchronous=NORMAL (as Aisle)",
}


def sweep_server(kind: str, w: int, t: int) -> tuple[Any, str]:
    if kind == "aisle":
        return (lambda d, p: edge_server(d, p, w, t)), SWEEP_KINDS[kind]
    if kind == "waitress":
        return (lambda d, p: waitress_server(d, p, t, "edge")), SWEEP_KINDS[kind]
    if kind == "floor-waitress":
        return (lambda d, p: waitress_server(d, p, t, "floor")), SWEEP_KINDS[kind]
    if kind in ("floor-busy", "floor-normal"):
        variant = kind.split("-")[1]
        return (lambda d, p: floor_server(d, p, w, t, variant)), SWEEP_KINDS[kind]
    raise SystemExit(f"unknown sweep server {kind!r}: one of {', '.join(SWEEP_KINDS)}")


def use_code_snapshot(rev: str, tmp: Path) -> str:
    """Extract edge/, sync/, aisle/, devices/ at ``rev`` (read-only ``git archive``) and make
    this process and every child import them instead of the work tree. Returns the short sha."""
    sha = run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT).strip()
    target = tmp / "code"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, "edge", "sync", "aisle", "devices"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(target), os.environ.get("PYTHONPATH")])
    )
    sys.path.insert(0, str(target))
    CODE["root"], CODE["rev"] = target, sha
    return sha


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="aisle-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--sweep-duration", type=float, default=5)
    parser.add_argument("--sweep-warmup", type=float, default=2)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-main", action="store_true", help="skip the 20 s main tests")
    parser.add_argument("--repeat", type=int, default=1, help="run the sweep N times")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each test wait up to S seconds for other processes to use < 0.25 cores",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip both profiles")
    parser.add_argument("--no-pyspy", action="store_true", help="skip the py-spy profiles")
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio client for scans")
    parser.add_argument(
        "--code",
        metavar="REV",
        help="benchmark the committed code of git revision REV (e.g. HEAD), extracted with "
        "git archive, instead of the work tree (which may change during a run)",
    )
    parser.add_argument(
        "--sweep",
        default="aisle:2x4,aisle:2x8,aisle:3x4,aisle:3x8,aisle:4x8,aisle:1x8,waitress:1x8,"
        "floor-busy:2x8,floor-normal:2x8",
        help="comma list of SERVER:WORKERSxTHREADS; SERVER is one of " + ", ".join(SWEEP_KINDS),
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if not loadgen.wrk_available() and not args.no_wrk:
        log("wrk not found (Debian: apt-get install -y wrk); scans use the asyncio client")

    with workdir() as tmp:
        if args.code:
            log(f"benchmarking git {args.code} = {use_code_snapshot(args.code, tmp)} (archive)")
        FINGERPRINTS.append(code_fingerprint())
        res: dict[str, Any] = {
            "machine": machine(),
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "targets": TARGETS,
        }
        log(f"setting up the store in {tmp}")
        fx = Fixture(tmp)
        res["fixture"] = {
            "import": fx.import_line,
            "scan_codes": fx.n_scan_codes,
            "age_restricted_in_scan_codes": fx.n_restricted,
        }
        w, t = PROD_WORKERS, PROD_THREADS
        if not args.no_main:
            res["edge"] = one_server(
                fx,
                lambda d, p: edge_server(d, p, w, t),
                ["scan", "checkout", "pay"],
                args,
                args.warmup,
                args.duration,
            )
            res["floor"] = one_server(
                fx,
                lambda d, p: floor_server(d, p, w, t),
                ["scan", "checkout", "pay"],
                args,
                args.warmup,
                args.duration,
            )
        if not args.no_sweep:
            res["sweep_duration"], res["sweep_warmup"] = args.sweep_duration, args.sweep_warmup
            res["sweep"] = []
            items = [i for i in args.sweep.split(",") if i]
            if importlib.util.find_spec("waitress") is None:
                skipped = [i for i in items if "waitress" in i]
                if skipped:
                    log(f"waitress is not installed (pip install waitress): skipping {skipped}")
                items = [i for i in items if "waitress" not in i]
            for rep in range(args.repeat):  # interleaved, so drift hits every setting alike
                for item in items:
                    kind, shape = item.split(":")
                    sw, st = (int(x) for x in shape.split("x"))
                    make, name = sweep_server(kind, sw, st)
                    r = one_server(fx, make, ["scan"], args, args.sweep_warmup, args.sweep_duration)
                    res["sweep"].append(
                        {
                            "kind": kind,
                            "server": name,
                            "shape": f"{sw} x {st}",
                            "repeat": rep,
                            "result": r["scan"],
                        }
                    )
        if not args.no_profile:
            log("in-process cost breakdown (profile_inprocess.py)")
            res["inprocess"] = inprocess_profile(fx)
            res["import_rss"] = import_rss(fx)
            res["diagnosis"] = diagnose(fx, args)
            if not args.no_pyspy:
                res["pyspy"] = pyspy_profiles(fx, args)
        FINGERPRINTS.append(code_fingerprint())
    res["code_fingerprints"] = sorted(set(FINGERPRINTS))
    res["edge_changed_during_run"] = len(set(FINGERPRINTS)) > 1
    res["elapsed_s"] = time.monotonic() - started
    text = report(res)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"checkout-bench-{stamp}.json"
    path.write_text(json.dumps(res, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(res, indent=2))
    (RESULTS / "latest.md").write_text(text + "\n")
    log(f"done in {res['elapsed_s']:.0f} s; results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
