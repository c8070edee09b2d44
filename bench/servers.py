"""The servers the checkout benchmark compares, and the store they all serve.

:class:`Fixture` builds one store (the real command line and the demo catalog) and the floor's
database from the same catalog, then hands every server run a fresh copy. The servers: Aisle's own
``aisle edge serve`` (:func:`edge_server`), the floor (Flask + sqlite3) under the same server
(:func:`floor_server`, in three :data:`FLOOR_VARIANTS`), either app under waitress
(:func:`waitress_server`), and Aisle with timing inside the workers (:func:`instrumented`).
:func:`sweep_server` names them for ``--sweep``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from processes import BENCH, BIN, Server, run

PROD_WORKERS, PROD_THREADS = 2, 8  # the defaults ``aisle edge init`` writes to edge.toml


class Fixture:
    """Template store + floor database, copied fresh for every server run."""

    def __init__(self, tmp: Path, promotions: int = 0) -> None:
        self.tmp = tmp
        self.template = tmp / "template"
        self.runs = 0
        self.promotions = promotions
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
        if promotions:
            _load_promotions(store / "edge.toml", catalog.path, promotions)
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


def _load_promotions(config: Path, catalog: Path, count: int) -> None:
    """``count`` promotions of every kind (``promotion_mix``) over the catalog, written into the
    store as its pull would write them."""
    import csv
    import random
    from datetime import UTC, datetime

    from promotion_mix import promotion_docs

    from edge.db import Database
    from edge.pricing.store_promotions import apply_promotion_items
    from edge.settings import load_settings
    from sync.contract import PromotionItem

    with catalog.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["sold_by"] == "each"]
    now = datetime.now(UTC)
    docs = promotion_docs(
        random.Random(7),
        count,
        [r["sku"] for r in rows],
        category_of={r["sku"]: r["category"] for r in rows},
        price_of={r["sku"]: int(r["unit_price"]) for r in rows},
        today=now.date(),
    )
    db = Database.open(load_settings(config).database_path)
    try:
        with db.write() as uow:
            apply_promotion_items(uow.session, [PromotionItem.model_validate(d) for d in docs], now)
            uow.commit()
    finally:
        db.dispose()


def edge_serve_cmd(d: Path, port: int, *extra: str) -> list[str]:
    """``aisle edge serve`` of the store in run directory ``d`` on 127.0.0.1:``port``."""
    return [
        str(BIN / "aisle"),
        "edge",
        "serve",
        "--config",
        str(d / "store" / "edge.toml"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


def edge_server(d: Path, port: int, workers: int, threads: int) -> Server:
    env = dict(os.environ, AISLE_PAYMENTS__LATENCY_MS="0", AISLE_SERVER__THREADS=str(threads))
    cmd = edge_serve_cmd(d, port, "--workers", str(workers))
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
