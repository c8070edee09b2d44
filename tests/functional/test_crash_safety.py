"""SIGKILL the store server in the middle of a checkout rush: every paid sale survives whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from tests.builders import MILK, RICE, SOAP, write_catalog

ROOT = Path(__file__).resolve().parents[2]


def _aisle(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "aisle", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, AISLE_PAYMENTS__LATENCY_MS="1")
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aisle",
                "edge",
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so one kill takes every worker
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start:\n" + log.read_text()[-3000:])


def _shopper(base: str, token: str, stop: threading.Event, paid: list[dict], lock):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    codes = [MILK["barcodes"], RICE["barcodes"], SOAP["barcodes"].split("|")[0]]
    while not stop.is_set():
        try:
            cart = session.post(f"{base}/api/v1/carts", json={"channel": "kiosk"}, timeout=5).json()
            for code in codes:
                cart = session.post(
                    f"{base}/api/v1/carts/{cart['id']}/lines", json={"barcode": code}, timeout=5
                ).json()
            r = session.post(
                f"{base}/api/v1/carts/{cart['id']}/checkout",
                json={"payments": [{"method": "card", "amount": cart["totals"]["total"]}]},
                headers={"Idempotency-Key": str(uuid.uuid4())},
                timeout=5,
            )
            if r.status_code == 201:
                with lock:
                    paid.append(r.json()["sale"])
        except (requests.RequestException, KeyError, ValueError):
            return  # the server died under us: that is the point


def test_sigkill_mid_rush_loses_no_paid_sale_and_leaves_no_half_sale(tmp_path):
    store = tmp_path / "store"
    _aisle("edge", "init", str(store), "--store-id", "S001")
    config = store / "edge.toml"
    _aisle(
        "edge", "import-catalog", str(write_catalog(tmp_path / "c.csv")), "--config", str(config)
    )
    token = _aisle("edge", "pair", "--role", "kiosk", "--config", str(config))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    paid: list[dict] = []
    lock = threading.Lock()
    for _round in range(3):
        proc = _serve(config, port, log)
        stop = threading.Event()
        threads = [
            threading.Thread(target=_shopper, args=(base, token, stop, paid, lock))
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        os.killpg(proc.pid, signal.SIGKILL)  # power cut: no shutdown hooks run
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert len(paid) > 10, "the rush made too few sales to test anything"

    # Restart once more: the server must come up on the killed database and serve.
    proc = _serve(config, port, log)
    try:
        assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)

    db = sqlite3.connect(store / "edge.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sales = dict(db.execute("SELECT id, total FROM sales").fetchall())
    # Every sale a device was told about is there, with the total it was told.
    for sale in paid:
        assert sales.get(sale["id"]) == sale["total"]
    # Every sale is whole: lines, payment, stock movements and exactly one outbox event.
    events = [
        json.loads(p)["sale"]["id"]
        for (p,) in db.execute("SELECT payload FROM outbox WHERE type = 'sale.completed'")
    ]
    assert sorted(events) == sorted(sales)
    for sale_id, total in sales.items():
        line_total = db.execute(
            "SELECT SUM(total) FROM sale_lines WHERE sale_id = ?", (sale_id,)
        ).fetchone()[0]
        assert line_total == total
        assert (
            db.execute("SELECT SUM(amount) FROM payments WHERE sale_id = ?", (sale_id,)).fetchone()[
                0
            ]
            == total
        )
        assert (
            db.execute(
                "SELECT COUNT(*) FROM stock_movements WHERE ref_id = ?", (sale_id,)
            ).fetchone()[0]
            == 3
        )
    numbers = sorted(n for (n,) in db.execute("SELECT number FROM sales"))
    assert numbers == [f"S001-{i:06d}" for i in range(1, len(numbers) + 1)]
    seqs = [s for (s,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    level = dict(db.execute("SELECT sku, on_hand FROM stock_levels"))
    summed = dict(db.execute("SELECT sku, SUM(quantity) FROM stock_movements GROUP BY sku"))
    assert level == summed
    db.close()
