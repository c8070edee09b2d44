"""What one scan and one checkout cost inside one process, with no server and no concurrency.

Builds the store app exactly as a server worker does (``load_settings`` + ``create_app``) and the
floor app, drives both with Flask's test client from one thread, and reports per request:

* wall time and CPU time (``time.process_time``);
* for the store app, how long each write is serialized: the SQLite transaction (end of ``BEGIN
  IMMEDIATE`` to end of ``COMMIT``) and, where ``edge/db.py`` has one, the time its writer queue
  lock is held (see :class:`HoldTimer`);
* a cProfile of the store app's requests: the top functions by own time, and own time summed
  by layer (edge code, SQLAlchemy, Flask/Werkzeug, pydantic, the sqlite3 C calls, ...).

The write lock matters because SQLite has one writer: whatever a request does while it holds
the write lock is done one request at a time across all workers, so ``1 / hold`` caps the write
rate of the whole server, however many cores or workers it has.

Usage: ``python bench/profile_inprocess.py --config STORE/edge.toml --floor-db FLOOR.db
--token TOKEN --barcodes-file codes.txt [--scans 1500] [--checkouts 200]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Any

LAYERS = (
    ("edge/", "edge"),
    ("sync/", "sync"),
    ("sqlalchemy/", "sqlalchemy"),
    ("flask/", "flask+werkzeug"),
    ("werkzeug/", "flask+werkzeug"),
    ("pydantic", "pydantic"),
    ("biip/", "biip"),
    ("uuid6/", "uuid6"),
    ("json/", "json"),
    ("fractions.py", "fractions"),
)


def layer_of(filename: str, funcname: str) -> str:
    if filename == "~":
        if "sqlite3" in funcname:
            return "sqlite3 (C: SQL execution, fsync)"
        return "builtins"
    for marker, name in LAYERS:
        if marker in filename:
            return name
    return "other python"


def short(filename: str) -> str:
    for package in (
        "/shared/",
        "/edge/",
        "/sync/",
        "/aisle/",
    ):  # the work tree or a --code snapshot
        if package in filename and "site-packages" not in filename:
            return package[1:] + filename.rsplit(package, 1)[1]
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_summary(prof: cProfile.Profile, per: int, top: int) -> dict[str, Any]:
    stats = pstats.Stats(prof)
    rows = []
    by_layer: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        by_layer[layer_of(filename, func)] += tt
        rows.append((tt, ct, nc, f"{short(filename)}:{line}({func})"))
    rows.sort(reverse=True)
    cum = sorted(
        (r for r in rows if "edge/" in r[3] or "sync/" in r[3]), key=lambda r: r[1], reverse=True
    )
    return {
        "profiled_s_per_request_ms": total / per * 1000,
        "by_layer_pct": {
            k: round(v / total * 100, 1) for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])
        },
        "top_self": [
            {
                "function": name,
                "self_us_per_req": round(tt / per * 1e6, 1),
                "self_pct": round(tt / total * 100, 1),
                "calls_per_req": round(nc / per, 2),
            }
            for tt, _ct, nc, name in rows[:top]
        ],
        "top_edge_cumulative": [
            {
                "function": name,
                "cum_us_per_req": round(ct / per * 1e6, 1),
                "cum_pct": round(ct / total * 100, 1),
                "calls_per_req": round(nc / per, 2),
            }
            for _tt, ct, nc, name in cum[:top]
        ],
    }


class Driver:
    def __init__(self, app: Any, token: str) -> None:
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        resp = self.client.post(path, data=json.dumps(body), headers=headers)
        if resp.status_code >= 300:
            raise RuntimeError(f"{path}: {resp.status_code} {resp.get_data(as_text=True)[:300]}")
        return resp.get_json()

    def cart(self) -> str:
        return self.post("/api/v1/carts", {"channel": "kiosk"})["id"]

    def scan(self, cart: str, code: str) -> Any:
        return self.post(f"/api/v1/carts/{cart}/lines", {"barcode": code})

    def checkout(self, cart: str, total: int) -> Any:
        return self.post(
            f"/api/v1/carts/{cart}/checkout",
            {"payments": [{"method": "cash", "amount": total}]},
            key=uuid.uuid4().hex,
        )


class HoldTimer:
    """Times the serialized part of each write, two ways, on this process's objects only.

    * ``txn``: end of ``BEGIN IMMEDIATE`` to end of ``COMMIT``, on every writer engine the
      database has (``writer``, and ``cart_writer`` where it exists);
    * ``lock``: while ``db.write_lock`` is held (where the database has one): what other
      writers queue behind, including session set-up and tear-down.
    """

    def __init__(self, db: Any = None) -> None:
        self.txn: list[float] = []
        self.lock: list[float] = []
        self.active = False
        self._t = 0.0
        if db is None:
            return
        from sqlalchemy import event

        engines = [getattr(db, name, None) for name in ("writer", "cart_writer")]
        for engine in filter(None, engines):
            event.listen(engine, "begin", self._begin)  # after the app's BEGIN IMMEDIATE
            engine.dialect.do_commit = self._wrap_commit(engine.dialect.do_commit)
        lock = getattr(db, "write_lock", None)
        if lock is not None and hasattr(lock, "held"):
            lock.held = self._wrap_held(lock.held)

    def clear(self) -> None:
        self.txn.clear()
        self.lock.clear()

    def _begin(self, _conn: Any) -> None:
        self._t = time.perf_counter()

    def _wrap_commit(self, original: Callable[[Any], None]) -> Callable[[Any], None]:
        def do_commit(dbapi_connection: Any) -> None:
            original(dbapi_connection)
            if self.active:
                self.txn.append(time.perf_counter() - self._t)

        return do_commit

    def _wrap_held(self, original: Callable[[], Any]) -> Callable[[], Any]:
        @contextmanager
        def held() -> Iterator[None]:
            with original():
                t0 = time.perf_counter()
                try:
                    yield
                finally:
                    if self.active:
                        self.lock.append(time.perf_counter() - t0)

        return held


def measure(
    label: str,
    n: int,
    setup: Callable[[int], Any],
    call: Callable[[Any], Any],
    timer: HoldTimer | None,
    profile: bool,
    top: int,
) -> dict[str, Any]:
    """Time ``call(setup(i))`` for i < n (setup not timed), then once more under cProfile."""
    walls, cpus = [], []
    if timer is not None:
        timer.clear()
    for i in range(n):
        arg = setup(i)
        if timer is not None:
            timer.active = True
        c0, t0 = time.process_time(), time.perf_counter()
        call(arg)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if timer is not None:
            timer.active = False
    out: dict[str, Any] = {
        "what": label,
        "requests": n,
        "wall_ms_mean": sum(walls) / n * 1000,
        "wall_ms_median": median(walls) * 1000,
        "cpu_ms_mean": sum(cpus) / n * 1000,
        "max_rate_one_core_per_s": n / sum(cpus),
    }
    if timer is not None:
        for name, values in (("txn", timer.txn), ("lock", timer.lock)):
            if not values:
                continue
            out[f"{name}_per_request"] = len(values) / n
            out[f"{name}_hold_ms_median"] = median(values) * 1000
            out[f"{name}_ms_per_request"] = sum(values) / n * 1000
            out[f"{name}_cap_per_s"] = n / sum(values)
    if profile:
        prof = cProfile.Profile()
        for i in range(n):
            arg = setup(i)
            prof.enable()
            call(arg)
            prof.disable()
        out["profile"] = profile_summary(prof, n, top)
    return out


def run_app(
    app: Any, token: str, codes: list[str], timer: HoldTimer | None, args: argparse.Namespace
) -> dict[str, Any]:
    d = Driver(app, token)
    state: dict[str, Any] = {"cart": None, "i": 0}

    def scan_setup(i: int) -> tuple[str, str]:
        if i % 20 == 0:
            state["cart"] = d.cart()
        state["i"] += 1
        return state["cart"], codes[state["i"] % len(codes)]

    def checkout_setup(i: int) -> tuple[str, int]:
        cart = d.cart()
        last = None
        for _ in range(5):
            state["i"] += 1
            last = d.scan(cart, codes[state["i"] % len(codes)])
        return cart, last["totals"]["total"]

    for i in range(200):  # warm caches (SQLAlchemy statement cache, auth cache, page cache)
        d.scan(*scan_setup(i))
    for i in range(20):
        d.checkout(*checkout_setup(i))
    return {
        "scan": measure(
            "scan (POST /carts/{id}/lines)",
            args.scans,
            scan_setup,
            lambda a: d.scan(*a),
            timer,
            args.profile,
            args.top,
        ),
        "checkout": measure(
            "checkout (POST /carts/{id}/checkout)",
            args.checkouts,
            checkout_setup,
            lambda a: d.checkout(*a),
            timer,
            args.profile,
            args.top,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--floor-db", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--barcodes-file", required=True, type=Path)
    parser.add_argument("--scans", type=int, default=1500)
    parser.add_argument("--checkouts", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    args = parser.parse_args(argv)
    codes = [c for c in args.barcodes_file.read_text().split() if c]

    from edge.app import create_app
    from edge.settings import load_settings

    app = create_app(load_settings(args.config))
    timer = HoldTimer(app.extensions["aisle"].db)
    result: dict[str, Any] = {"edge": run_app(app, args.token, codes, timer, args)}

    os.environ["FLOOR_DB"] = args.floor_db
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import floor_app

    floor_timer = HoldTimer()
    floor_app.write_lock = floor_timer._wrap_held(floor_app.write_lock)
    args.profile = False
    result["floor"] = run_app(floor_app.app, args.token, codes, floor_timer, args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
