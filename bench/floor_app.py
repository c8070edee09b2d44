"""The floor: a bare Flask + stdlib sqlite3 app doing the same kind of work per request as Aisle.

Same routes, same JSON shapes where the load generator reads them, same SQLite settings (WAL,
synchronous=FULL, BEGIN IMMEDIATE for writes, busy_timeout) and the same statements a scan and a
checkout need, written by hand: no ORM, no validation layer, no services. It is what "the
framework and the server alone" cost on this machine; Aisle's numbers are reported as a ratio to
it.

* ``POST /api/v1/carts``: insert a cart row.
* ``POST /api/v1/carts/<id>/lines``: in one write transaction read the cart, look the barcode up,
  merge into an existing line or insert a new one, touch the cart, read the lines back; answer the
  priced cart (lines with tax, totals).
* ``POST /api/v1/carts/<id>/checkout``: read the cart and its lines, then in one write transaction
  check the idempotency key, bump the sale counter, insert the sale, its lines, a stock level
  upsert and a stock movement per line, the payment, the outbox row (the sale as JSON), and close
  the cart; answer the sale.

Two knobs, from the environment, so the floor can match or not match choices Aisle makes that
are not framework overhead:

* ``FLOOR_LOCK``: ``queue`` (default) makes writers queue on a thread lock plus ``flock`` on a
  file beside the database before ``BEGIN IMMEDIATE``, as ``edge/db.py`` ``WriteLock`` does;
  ``busy`` leaves waiting to SQLite's busy handler (``busy_timeout``), which sleeps and polls.
* ``FLOOR_CART_SYNC``: ``FULL`` (default) or ``NORMAL``, the ``synchronous`` setting of cart
  edits (create cart, scan). Checkout always commits with ``synchronous=FULL``.

Set up a database once (before the server forks): ``python bench/floor_app.py init DB CATALOG
TOKEN``. Serve: ``FLOOR_DB=DB gunicorn -k gthread ... floor_app:app`` (with ``--chdir bench``),
or through ``bench/serve_waitress.py --app floor``.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, request

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (token_hash TEXT PRIMARY KEY, id TEXT NOT NULL, role TEXT);
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY, name TEXT NOT NULL, unit_price INTEGER NOT NULL,
    tax_rate_bp INTEGER NOT NULL, sold_by TEXT NOT NULL, age_restricted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS barcodes (gtin TEXT PRIMARY KEY, sku TEXT NOT NULL REFERENCES products);
CREATE TABLE IF NOT EXISTS carts (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, status TEXT NOT NULL, device_id TEXT NOT NULL,
    currency TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cart_lines (
    id TEXT PRIMARY KEY, cart_id TEXT NOT NULL REFERENCES carts ON DELETE CASCADE,
    position INTEGER NOT NULL, sku TEXT NOT NULL REFERENCES products, name TEXT NOT NULL,
    barcode TEXT NOT NULL, quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price INTEGER NOT NULL, tax_rate_bp INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_cart_lines_cart_id ON cart_lines (cart_id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sales (
    id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE, cart_id TEXT NOT NULL UNIQUE REFERENCES carts,
    idempotency_key TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, total INTEGER NOT NULL,
    tax INTEGER NOT NULL, paid INTEGER NOT NULL, change INTEGER NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sale_lines (
    id TEXT PRIMARY KEY, sale_id TEXT NOT NULL REFERENCES sales, position INTEGER NOT NULL,
    sku TEXT NOT NULL, name TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price INTEGER NOT NULL,
    total INTEGER NOT NULL, tax INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ix_sale_lines_sale_id ON sale_lines (sale_id);
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY, sale_id TEXT NOT NULL REFERENCES sales, method TEXT NOT NULL,
    amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stock_levels (sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stock_movements (
    id TEXT PRIMARY KEY, sku TEXT NOT NULL, quantity INTEGER NOT NULL, kind TEXT NOT NULL,
    ref_id TEXT, on_hand_after INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, aggregate_id TEXT NOT NULL,
    payload TEXT NOT NULL, created_at TEXT NOT NULL, pushed_at TEXT);
"""

_local = threading.local()
LOCK_MODE = os.environ.get("FLOOR_LOCK", "queue")
CART_SYNC = os.environ.get("FLOOR_CART_SYNC", "FULL")
if LOCK_MODE not in ("queue", "busy") or CART_SYNC not in ("FULL", "NORMAL"):
    raise SystemExit("FLOOR_LOCK must be queue or busy; FLOOR_CART_SYNC FULL or NORMAL")


def connect(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def db(synchronous: str = "FULL") -> sqlite3.Connection:
    """This thread's connection with the given ``synchronous`` setting."""
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    conn = conns.get(synchronous)
    if conn is None:
        conn = conns[synchronous] = connect(os.environ["FLOOR_DB"], synchronous)
    return conn


_thread_lock = threading.Lock()
_lock_fd: dict[int, int] = {}


@contextmanager
def write_lock() -> Iterator[None]:
    """Queue writers (thread lock + flock) unless ``FLOOR_LOCK=busy``."""
    if LOCK_MODE == "busy":
        yield
        return
    with _thread_lock:
        fd = _lock_fd.get(os.getpid())
        if fd is None:
            fd = _lock_fd[os.getpid()] = os.open(
                os.environ["FLOOR_DB"] + ".writelock", os.O_RDWR | os.O_CREAT, 0o600
            )
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_id() -> str:
    return str(uuid.uuid4())


def tax_included(total: int, rate_bp: int) -> int:
    return (total * rate_bp * 2 + (10_000 + rate_bp)) // ((10_000 + rate_bp) * 2)


def init_db(path: str, catalog: str, token: str) -> int:
    """Create the schema, load the catalog CSV and register ``token`` as a kiosk."""
    conn = connect(path)
    conn.executescript(SCHEMA)
    conn.execute("BEGIN IMMEDIATE")
    n = 0
    with open(catalog, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rate_bp = round(float(row["tax_rate"]) * 100)
            conn.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row["sku"],
                    row["name"],
                    int(row["unit_price"]),
                    rate_bp,
                    row["sold_by"],
                    int(row["age_restricted"] == "true"),
                ),
            )
            for gtin in filter(None, row["barcodes"].split("|")):
                conn.execute("INSERT INTO barcodes VALUES (?, ?)", (gtin, row["sku"]))
            n += 1
    conn.execute("INSERT INTO devices VALUES (?, ?, 'kiosk')", (hash_token(token), new_id()))
    conn.execute("COMMIT")
    conn.close()
    return n


app = Flask("floor")
_tokens: dict[str, str] = {}
_tokens_lock = threading.Lock()


def _device() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    digest = hash_token(token.strip())
    with _tokens_lock:
        hit = _tokens.get(digest)
    if hit is not None:
        return hit
    row = db().execute("SELECT id FROM devices WHERE token_hash = ?", (digest,)).fetchone()
    if row is None:
        return None
    with _tokens_lock:
        _tokens[digest] = row[0]
    return row[0]


def _err(status: int, code: str) -> tuple[dict[str, Any], int]:
    return {"error": {"code": code, "message": code, "details": {}}}, status


def _json_body() -> dict[str, Any] | None:
    try:
        data = json.loads(request.get_data(cache=False) or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _cart_json(cart: tuple[Any, ...], lines: list[tuple[Any, ...]]) -> dict[str, Any]:
    out_lines = []
    subtotal = tax = 0
    for line_id, sku, name, barcode, qty, price, rate in lines:
        total = price * qty
        line_tax = tax_included(total, rate)
        subtotal += total
        tax += line_tax
        out_lines.append(
            {
                "id": line_id,
                "sku": sku,
                "name": name,
                "barcode": barcode,
                "quantity": qty,
                "unit_price": price,
                "tax_rate_bp": rate,
                "subtotal": total,
                "discount": 0,
                "tax": line_tax,
                "total": total,
            }
        )
    return {
        "id": cart[0],
        "channel": cart[1],
        "status": cart[2],
        "currency": cart[3],
        "lines": out_lines,
        "totals": {"subtotal": subtotal, "discount": 0, "tax": tax, "total": subtotal},
        "created_at": cart[4],
        "updated_at": cart[5],
    }


_LINES = (
    "SELECT id, sku, name, barcode, quantity, unit_price, tax_rate_bp FROM cart_lines "
    "WHERE cart_id = ? ORDER BY position"
)
_CART = "SELECT id, channel, status, currency, created_at, updated_at FROM carts WHERE id = ?"


@app.post("/api/v1/carts")
def create_cart() -> tuple[dict[str, Any], int]:
    device = _device()
    if device is None:
        return _err(401, "unauthorized")
    body = _json_body()
    if body is None or body.get("channel") not in ("kiosk", "scan_to_buy"):
        return _err(422, "validation_error")
    cart = (new_id(), body["channel"], "open", "CNY", now_iso(), now_iso())
    conn = db(CART_SYNC)
    with write_lock():
        _insert_cart(conn, cart, device)
    return _cart_json(cart, []), 201


def _insert_cart(conn: sqlite3.Connection, cart: tuple[Any, ...], device: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO carts (id, channel, status, currency, created_at, updated_at, device_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*cart, device),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@app.post("/api/v1/carts/<cart_id>/lines")
def add_line(cart_id: str) -> tuple[dict[str, Any], int]:
    if _device() is None:
        return _err(401, "unauthorized")
    body = _json_body()
    if body is None or not isinstance(body.get("barcode"), str):
        return _err(422, "validation_error")
    conn = db(CART_SYNC)
    with write_lock():
        conn.execute("BEGIN IMMEDIATE")
        try:
            cart = conn.execute(_CART, (cart_id,)).fetchone()
            if cart is None:
                conn.execute("ROLLBACK")
                return _err(404, "unknown_cart")
            product = conn.execute(
                "SELECT p.sku, p.name, p.unit_price, p.tax_rate_bp FROM products p "
                "JOIN barcodes b ON b.sku = p.sku WHERE b.gtin = ?",
                (body["barcode"],),
            ).fetchone()
            if product is None:
                conn.execute("ROLLBACK")
                return _err(404, "unknown_product")
            sku, name, price, rate = product
            existing = conn.execute(
                "SELECT id FROM cart_lines WHERE cart_id = ? AND sku = ? AND unit_price = ?",
                (cart_id, sku, price),
            ).fetchone()
            if existing is not None:
                conn.execute(
                    "UPDATE cart_lines SET quantity = quantity + 1 WHERE id = ?", (existing[0],)
                )
            else:
                _count, last = conn.execute(
                    "SELECT count(*), max(position) FROM cart_lines WHERE cart_id = ?", (cart_id,)
                ).fetchone()
                conn.execute(
                    "INSERT INTO cart_lines VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                    (new_id(), cart_id, (last or 0) + 1, sku, name, body["barcode"], price, rate),
                )
            updated = now_iso()
            conn.execute("UPDATE carts SET updated_at = ? WHERE id = ?", (updated, cart_id))
            lines = conn.execute(_LINES, (cart_id,)).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return _cart_json((*cart[:5], updated), lines), 200


_BUMP = (
    "INSERT INTO counters (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
)
_STOCK = (
    "INSERT INTO stock_levels (sku, on_hand) VALUES (?, ?) "
    "ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand RETURNING on_hand"
)


@app.post("/api/v1/carts/<cart_id>/checkout")
def checkout(cart_id: str) -> tuple[dict[str, Any], int]:
    device = _device()
    if device is None:
        return _err(401, "unauthorized")
    key = request.headers.get("Idempotency-Key", "").strip()
    body = _json_body()
    if not key or body is None or not isinstance(body.get("payments"), list):
        return _err(422, "validation_error")
    paid = sum(int(p.get("amount", 0)) for p in body["payments"])
    conn = db()
    # Read the cart and its lines first (a deferred read), as the real checkout does.
    conn.execute("BEGIN")
    cart = conn.execute(_CART, (cart_id,)).fetchone()
    lines = conn.execute(_LINES, (cart_id,)).fetchall()
    conn.execute("COMMIT")
    if cart is None:
        return _err(404, "unknown_cart")
    view = _cart_json(cart, lines)
    total = view["totals"]["total"]
    if not lines or cart[2] != "open":
        return _err(409, "cart_closed")
    if paid < total:
        return _err(422, "payment_mismatch")
    now = now_iso()
    with write_lock():
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT id FROM sales WHERE idempotency_key = ?", (key,)).fetchone():
                conn.execute("ROLLBACK")
                return _err(409, "replayed")
            status = conn.execute("SELECT status FROM carts WHERE id = ?", (cart_id,)).fetchone()
            if status is None or status[0] != "open":
                conn.execute("ROLLBACK")
                return _err(409, "cart_closed")
            number = conn.execute(_BUMP, ("sale",)).fetchone()[0]
            sale_id = new_id()
            sale = {
                "id": sale_id,
                "number": f"FLOOR-{number:06d}",
                "cart_id": cart_id,
                "total": total,
                "tax": view["totals"]["tax"],
                "paid": paid,
                "change": paid - total,
                "created_at": now,
                "lines": view["lines"],
                "payments": body["payments"],
            }
            conn.execute(
                "INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sale_id,
                    sale["number"],
                    cart_id,
                    key,
                    device,
                    total,
                    sale["tax"],
                    paid,
                    paid - total,
                    now,
                ),
            )
            for position, line in enumerate(view["lines"], 1):
                conn.execute(
                    "INSERT INTO sale_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new_id(),
                        sale_id,
                        position,
                        line["sku"],
                        line["name"],
                        line["quantity"],
                        line["unit_price"],
                        line["total"],
                        line["tax"],
                    ),
                )
                on_hand = conn.execute(_STOCK, (line["sku"], -line["quantity"])).fetchone()[0]
                conn.execute(
                    "INSERT INTO stock_movements VALUES (?, ?, ?, 'sale', ?, ?, ?)",
                    (new_id(), line["sku"], -line["quantity"], sale_id, on_hand, now),
                )
            for p in body["payments"]:
                conn.execute(
                    "INSERT INTO payments VALUES (?, ?, ?, ?)",
                    (new_id(), sale_id, str(p.get("method")), int(p.get("amount", 0))),
                )
            conn.execute(
                "UPDATE carts SET status = 'checked_out', updated_at = ? WHERE id = ?",
                (now, cart_id),
            )
            seq = conn.execute(_BUMP, ("outbox",)).fetchone()[0]
            payload = json.dumps({"sale": sale}, sort_keys=True, separators=(",", ":"))
            conn.execute(
                "INSERT INTO outbox VALUES (?, ?, 'sale.completed', ?, ?, ?, NULL)",
                (seq, new_id(), sale_id, payload, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return {"sale": sale}, 201


@app.get("/healthz")
def healthz() -> dict[str, str]:
    db().execute("SELECT 1").fetchone()
    return {"status": "ok"}


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "init":
        sys.exit("usage: floor_app.py init DB CATALOG_CSV TOKEN")
    count = init_db(sys.argv[2], sys.argv[3], sys.argv[4])
    print(f"floor database {Path(sys.argv[2])}: {count} products")
