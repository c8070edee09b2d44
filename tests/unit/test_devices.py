"""Device client and simulators, tested without the edge: real sockets against tiny local servers.

The client's error mapping and checkout retry run against ``http.server`` in a thread; the
simulators run against a small in-memory fake of the device API that checks what they send
(same idempotency key after an approval, cash rounded up, the exit pass shown at the gate).
"""

from __future__ import annotations

import csv
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from biip.gtin import Gtin

import devices.client as client_module
import devices.statistics as statistics_module
from aisle.demo.catalog import write_demo_catalog
from devices.barcodes import make_weighed_code
from devices.client import (
    AisleClient,
    AisleConnectionError,
    AisleHTTPError,
    AisleProtocolError,
)
from devices.fleet import run_fleet
from devices.shoppers import KioskSimulator, PhoneSimulator, ShopperProfile
from devices.statistics import FleetStats, percentile
from shared.catalog_csv import CATALOG_COLUMNS

# -- a real HTTP server in a thread ---------------------------------------------------------------

#: What a test server answers: (status, JSON body or raw bytes), or None to drop the connection.
Answer = tuple[int, Any] | None
Responder = Callable[[str, str, dict[str, str], bytes], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server, so the pool is exercised
    # Headers and body go out in two writes; without this, Nagle meets delayed ACK (40 ms each).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def _serve(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        with server.lock:
            server.seen.append((self.command, self.path, headers, body))
        answer = server.responder(self.command, self.path, headers, body)
        if answer is None:
            # Read the request, then hang up without a word: a lost answer.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload = answer
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, responder: Responder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.responder = responder
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out leaves a broken pipe behind; that is the test's point."""


@pytest.fixture
def serve() -> Iterator[Callable[[Responder], _Server]]:
    servers: list[tuple[_Server, threading.Thread]] = []

    def start(responder: Responder) -> _Server:
        server = _Server(responder)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _dead_url() -> str:
    """A URL where nothing listens: bind a port, then free it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- make_weighed_code ----------------------------------------------------------------------------


def test_weighed_code_is_a_valid_ean13_with_the_store_layout() -> None:
    code = make_weighed_code("100023", 1234)
    assert len(code) == 13
    assert code[:12] == "2" + "100023" + "01234"
    assert Gtin.parse(code).value == code  # biip verifies the check digit


def test_weighed_code_pads_the_plu_and_matches_a_published_vector() -> None:
    # Odoo's scale-barcode documentation: prefix 21, item 12345, value 00000 -> 2112345000008.
    assert make_weighed_code("12345", 0, prefix="21", plu_length=5) == "2112345000008"
    assert make_weighed_code("42", 5)[:12] == "200004200005"


@pytest.mark.parametrize(
    ("plu", "price", "kwargs", "error"),
    [
        ("100023", 100_000, {}, ValueError),  # price does not fit 5 digits
        ("1234567", 100, {}, ValueError),  # PLU longer than 6
        ("12a4", 100, {}, ValueError),
        ("100023", -1, {}, ValueError),
        ("100023", 12.5, {}, TypeError),  # money is never a float
        ("100023", 100, {"prefix": "21"}, ValueError),  # 14 digits is not an EAN-13
    ],
)
def test_weighed_code_refuses_what_does_not_fit(
    plu: str, price: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make_weighed_code(plu, price, **kwargs)


# -- demo catalog ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    path = tmp_path_factory.mktemp("catalog") / "catalog.csv"
    return path, write_demo_catalog(path)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_catalog_header_and_size(catalog_file: tuple[Path, Any]) -> None:
    path, catalog = catalog_file
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "sku,name,barcodes,unit_price,tax_rate,category,sold_by,age_restricted,plu"
    assert tuple(first_line.split(",")) == CATALOG_COLUMNS
    rows = _rows(path)
    assert len(rows) == catalog.count == 2400
    assert len({r["sku"] for r in rows}) == len(rows)


def test_catalog_barcodes_are_valid_unique_gtins(catalog_file: tuple[Path, Any]) -> None:
    rows = _rows(catalog_file[0])
    codes = [c for r in rows for c in r["barcodes"].split("|") if c]
    assert len(codes) == len(set(codes))
    for code in codes:
        assert Gtin.parse(code).value == code
        assert (len(code) == 13 and code.startswith("69")) or len(code) == 12
    assert any(len(c) == 12 for c in codes), "no UPC-A at all"
    assert sum("|" in r["barcodes"] for r in rows) > 20, "too few products with two barcodes"


def test_catalog_kg_items_age_restriction_prices_and_taxes(catalog_file: tuple[Path, Any]) -> None:
    rows = _rows(catalog_file[0])
    kg = [r for r in rows if r["sold_by"] == "kg"]
    assert 0.08 <= len(kg) / len(rows) <= 0.12
    assert all(re.fullmatch(r"\d{6}", r["plu"]) for r in kg)
    assert len({r["plu"] for r in kg}) == len(kg)
    assert {r["category"] for r in kg} <= {"produce", "meat"}
    assert all(r["sold_by"] == "each" and r["barcodes"] for r in rows if r not in kg)
    restricted = [r for r in rows if r["age_restricted"] == "true"]
    assert 0.02 <= len(restricted) / len(rows) <= 0.04
    assert {r["category"] for r in restricted} == {"alcohol", "tobacco"}
    assert all(r["age_restricted"] in ("true", "false") for r in rows)
    assert all(100 <= int(r["unit_price"]) <= 20000 for r in rows)
    assert {r["tax_rate"] for r in rows} == {"0", "9", "13"}
    assert any(re.search(r"[\u4e00-\u9fff]", r["name"]) for r in rows)
    assert any(r["name"].isascii() for r in rows)


def test_catalog_is_deterministic_and_seeded(tmp_path: Path) -> None:
    write_demo_catalog(tmp_path / "a.csv", count=2000, seed=3)
    write_demo_catalog(tmp_path / "b.csv", count=2000, seed=3)
    write_demo_catalog(tmp_path / "c.csv", count=2000, seed=4)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()
    with pytest.raises(ValueError):
        write_demo_catalog(tmp_path / "d.csv", count=1999)


def test_demo_catalog_describes_what_to_scan(catalog_file: tuple[Path, Any]) -> None:
    path, catalog = catalog_file
    rows = _rows(path)
    restricted = {
        c for r in rows if r["age_restricted"] == "true" for c in r["barcodes"].split("|")
    }
    each = {c for r in rows if r["sold_by"] == "each" for c in r["barcodes"].split("|") if c}
    assert set(catalog.barcodes) <= each
    scanned_restricted = [c for c in catalog.barcodes if c in restricted]
    assert scanned_restricted == catalog.age_restricted_barcodes
    # A few, so approvals happen without most baskets needing one.
    assert 1 <= len(scanned_restricted) <= len(catalog.barcodes) // 100
    assert sorted(catalog.weighed) == sorted(
        (r["plu"], int(r["unit_price"])) for r in rows if r["sold_by"] == "kg"
    )


# -- percentiles and stats ------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([0.5, 0.1, 0.3], 50) == 0.3
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_fleet_stats_scan_percentiles_use_scans_only() -> None:
    stats = FleetStats()
    for ms in range(1, 101):
        stats.record_latency("add_line", ms / 1000)
    stats.record_latency("checkout", 9.0)
    assert len(stats.scan_latencies) == 100
    assert stats.scan_p50() == 0.050
    assert stats.scan_p99() == 0.099
    assert stats.latency_percentile("checkout", 50) == 9.0
    assert FleetStats().scan_p50() is None


def test_fleet_stats_keep_a_bounded_latency_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics_module, "LATENCY_SAMPLE_CAP", 10)
    stats = FleetStats()
    for i in range(1000):
        stats.record_latency("add_line", float(i))
    sample = stats.scan_latencies
    assert len(sample) == 10
    assert max(sample) >= 10.0, "the reservoir never replaced the first samples"


def test_fleet_stats_error_accounting() -> None:
    stats = FleetStats()
    stats.add("requests", 3)
    stats.record_error("payment_declined", "402 payment_declined: card refused")
    assert stats.unexpected_errors() == {}
    assert not stats.all_failed
    stats.record_error("connection_error", "refused")
    stats.record_error("connection_error", "refused again")
    assert stats.unexpected_errors() == {"connection_error": 2}
    assert stats.all_failed
    assert stats.error_samples["connection_error"] == "refused"
    with pytest.raises(ValueError):
        stats.add("sales")  # money and sales go through record_sale only


# -- AisleHTTPError parsing -----------------------------------------------------------------------


def test_http_error_from_contract_body() -> None:
    body = {"error": {"code": "invalid_barcode", "message": "bad", "details": {"reason": "x"}}}
    for raw in (json.dumps(body).encode(), json.dumps(body), body):
        err = AisleHTTPError.from_body(422, raw)
        assert (err.status, err.code, err.message, err.details) == (
            422,
            "invalid_barcode",
            "bad",
            {"reason": "x"},
        )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<html>Bad Gateway</html>", "http_502"),
        (b"", "http_502"),
        (b'{"error": "nope"}', "http_502"),
        (b'{"error": {"message": "no code"}}', "http_502"),
        (b"[1, 2]", "http_502"),
    ],
)
def test_http_error_from_other_bodies_keeps_the_status(body: bytes, code: str) -> None:
    err = AisleHTTPError.from_body(502, body)
    assert err.code == code
    assert err.status == 502
    assert err.details == {}
    assert isinstance(err.message, str) and err.message


# -- AisleClient over a real socket ---------------------------------------------------------------


def test_client_maps_error_bodies_and_sends_the_token(
    serve: Callable[[Responder], _Server],
) -> None:
    error = {"error": {"code": "unknown_product", "message": "no such", "details": {"b": "1"}}}
    server = serve(lambda *_: (404, error))
    with AisleClient(server.url, "tok-1") as client, pytest.raises(AisleHTTPError) as caught:
        client.product_by_barcode("12/34")
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        404,
        "unknown_product",
        {"b": "1"},
    )
    method, path, headers, _ = server.seen[0]
    assert (method, path) == ("GET", "/api/v1/products/by-barcode/12%2F34")
    assert headers["authorization"] == "Bearer tok-1"


def test_client_sends_json_and_decodes_answers(serve: Callable[[Responder], _Server]) -> None:
    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method == "DELETE":
            return 204, b""
        return 201, {"id": "c1", "echo": json.loads(body or b"null")}

    server = serve(respond)
    latencies: list[tuple[str, float]] = []
    with AisleClient(server.url, None, latency_sink=lambda op, s: latencies.append((op, s))) as c:
        assert c.create_cart("kiosk") == {"id": "c1", "echo": {"channel": "kiosk"}}
        assert c.add_line("c1", "6901234567892")["echo"] == {"barcode": "6901234567892"}
        assert c.add_line("c1", "6901234567892", 3)["echo"]["quantity"] == 3
        assert c.update_line("c1", "l1", 2)["echo"] == {"quantity": 2}
        assert c.remove_line("c1", "l1") == {}
    assert [op for op, _ in latencies] == [
        "create_cart",
        "add_line",
        "add_line",
        "update_line",
        "remove_line",
    ]
    assert all(s > 0 for _, s in latencies)
    assert [(m, p) for m, p, _, _ in server.seen][3:] == [
        ("PATCH", "/api/v1/carts/c1/lines/l1"),
        ("DELETE", "/api/v1/carts/c1/lines/l1"),
    ]
    assert "authorization" not in server.seen[0][2]


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]"])
def test_client_refuses_a_success_that_is_not_a_json_object(
    serve: Callable[[Responder], _Server], payload: bytes
) -> None:
    server = serve(lambda *_: (200, payload))
    with AisleClient(server.url, "t") as client, pytest.raises(AisleProtocolError):
        client.health()


def test_client_connection_refused_and_timeout(serve: Callable[[Responder], _Server]) -> None:
    with AisleClient(_dead_url(), "t", timeout=1.0) as client, pytest.raises(AisleConnectionError):
        client.health()

    def slow(*_: Any) -> Answer:
        time.sleep(0.5)
        return 200, {}

    server = serve(slow)
    with AisleClient(server.url, "t", timeout=0.1) as client, pytest.raises(AisleConnectionError):
        client.sync_status()


def test_client_pool_is_small_and_shared() -> None:
    with AisleClient("http://127.0.0.1:1", "t") as client:
        adapter = client.session.get_adapter("http://127.0.0.1:1/")
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == client_module.POOL_MAXSIZE == 4


def _drop_first(n: int, answer: Answer) -> Responder:
    """Hang up on the first ``n`` requests, then answer."""
    count = 0
    lock = threading.Lock()

    def respond(*_: Any) -> Answer:
        nonlocal count
        with lock:
            count += 1
            return None if count <= n else answer

    return respond


def test_checkout_retries_a_lost_answer_with_the_same_key(
    serve: Callable[[Responder], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "CHECKOUT_BACKOFF_S", 0.001)
    server = serve(_drop_first(2, (201, {"sale": {"id": "s1", "total": 500}})))
    payments = [{"method": "card", "amount": 500}]
    with AisleClient(server.url, "t") as client:
        result = client.checkout("c1", payments, idempotency_key="key-1")
    assert result["sale"]["id"] == "s1"
    keys = [h.get("idempotency-key") for _, _, h, _ in server.seen]
    assert keys == ["key-1", "key-1", "key-1"]
    assert {json.loads(b)["payments"][0]["amount"] for _, _, _, b in server.seen} == {500}


def test_checkout_generates_one_key_for_all_attempts(
    serve: Callable[[Responder], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "CHECKOUT_BACKOFF_S", 0.001)
    server = serve(_drop_first(1, (201, {"sale": {"id": "s1"}})))
    with AisleClient(server.url, "t") as client:
        client.checkout("c1", [{"method": "cash", "amount": 100}])
    keys = {h["idempotency-key"] for _, _, h, _ in server.seen}
    assert len(server.seen) == 2
    assert len(keys) == 1
    assert uuid.UUID(keys.pop()).version == 4


def test_checkout_gives_up_after_its_retries(
    serve: Callable[[Responder], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "CHECKOUT_BACKOFF_S", 0.001)
    server = serve(lambda *_: None)
    with AisleClient(server.url, "t") as client, pytest.raises(AisleConnectionError):
        client.checkout("c1", [{"method": "card", "amount": 1}])
    assert len(server.seen) == client_module.CHECKOUT_RETRIES + 1


def test_http_errors_and_other_writes_are_not_retried(
    serve: Callable[[Responder], _Server],
) -> None:
    declined = {"error": {"code": "payment_declined", "message": "no", "details": {}}}
    server = serve(lambda m, p, h, b: (402, declined) if p.endswith("/checkout") else None)
    with AisleClient(server.url, "t") as client:
        with pytest.raises(AisleHTTPError) as caught:
            client.checkout("c1", [{"method": "card", "amount": 1}])
        assert caught.value.code == "payment_declined"
        with pytest.raises(AisleConnectionError):
            client.add_line("c1", "6901234567892")
    assert [p.rsplit("/", 1)[-1] for _, p, _, _ in server.seen] == ["checkout", "lines"]


# -- simulators against a fake device API ---------------------------------------------------------

_AGE_CODE = "6900000000014"
_PRICE = 1234  # every packaged item; weighed items carry their price in the code


class FakeEdge:
    """Just enough of the device API to shop, with the server's rules the simulators rely on."""

    def __init__(self, attendant_token: str = "tablet") -> None:
        self.attendant_token = attendant_token
        self.lock = threading.Lock()
        self.carts: dict[str, dict[str, Any]] = {}
        self.sales: dict[str, dict[str, Any]] = {}  # by idempotency key
        self.checkouts: list[tuple[str, str]] = []  # (cart id, idempotency key)
        self.payments: list[tuple[int, dict[str, Any]]] = []  # (cart total, payment)
        self.verified: list[str] = []
        self.patched: list[dict[str, Any]] = []  # lines as they were when a PATCH arrived

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        data = json.loads(body) if body else {}
        parts = path.strip("/").split("/")[2:]  # drop "api", "v1"
        with self.lock:
            if parts == ["carts"] and method == "POST":
                cart_id = f"cart-{len(self.carts) + 1}"
                self.carts[cart_id] = {
                    "id": cart_id,
                    "channel": data["channel"],
                    "status": "open",
                    "currency": "CNY",
                    "lines": [],
                    "approved": False,
                }
                return 201, self._view(cart_id)
            if parts[0] == "carts":
                return self._cart_route(method, parts, headers, data)
            if parts == ["exit-passes", "verify"]:
                sale_id = data["token"].removeprefix("pass-")
                self.verified.append(sale_id)
                return 200, {"valid": True, "sale_id": sale_id, "audit": len(self.verified) == 1}
        return 404, {"error": {"code": "not_found", "message": path, "details": {}}}

    def _cart_route(
        self, method: str, parts: list[str], headers: dict[str, str], data: dict[str, Any]
    ) -> Answer:
        cart = self.carts[parts[1]]
        action = parts[2]
        if action == "lines" and method == "POST":
            code = data["barcode"]
            weighed = code.startswith("2")
            cart["lines"].append(
                {
                    "id": f"line-{len(cart['lines']) + 1}",
                    "quantity": 1 if weighed else data.get("quantity", 1),
                    "weight_g": 500 if weighed else None,
                    "unit_price": int(code[7:12]) if weighed else _PRICE,
                    "age_restricted": code == _AGE_CODE,
                }
            )
        elif action == "lines" and method == "PATCH":
            line = next(x for x in cart["lines"] if x["id"] == parts[3])
            self.patched.append(dict(line))
            line["quantity"] = data["quantity"]
        elif action == "lines" and method == "DELETE":
            cart["lines"] = [x for x in cart["lines"] if x["id"] != parts[3]]
        elif action == "approvals":
            if headers.get("authorization") != f"Bearer {self.attendant_token}":
                return 403, {"error": {"code": "forbidden", "message": "", "details": {}}}
            cart["approved"] = True
        elif action == "checkout":
            return self._checkout(cart, headers["idempotency-key"], data["payments"])
        return 200, self._view(cart["id"])

    def _checkout(self, cart: dict[str, Any], key: str, payments: list[dict[str, Any]]) -> Answer:
        self.checkouts.append((cart["id"], key))
        if key in self.sales:  # a retry returns the first result
            return 201, self.sales[key]
        if any(x["age_restricted"] for x in cart["lines"]) and not cart["approved"]:
            return 409, {"error": {"code": "approval_required", "message": "", "details": {}}}
        total = self._view(cart["id"])["totals"]["total"]
        self.payments.extend((total, p) for p in payments)
        sale_id = f"sale-{len(self.sales) + 1}"
        result = {
            "sale": {"id": sale_id, "number": sale_id, "total": total, "lines": []},
            "receipt": {"text": "thanks"},
            "exit_pass": {"token": f"pass-{sale_id}", "qr_svg": "<svg/>"}
            if cart["channel"] == "scan_to_buy"
            else None,
        }
        self.sales[key] = result
        cart["status"] = "checked_out"
        return 201, result

    def _view(self, cart_id: str) -> dict[str, Any]:
        cart = self.carts[cart_id]
        lines = [
            {**x, "total": x["unit_price"] * x["quantity"], "subtotal": 0, "discount": 0, "tax": 0}
            for x in cart["lines"]
        ]
        total = sum(x["total"] for x in lines)
        return {
            **{k: v for k, v in cart.items() if k != "approved"},
            "lines": lines,
            "totals": {"subtotal": total, "discount": 0, "tax": 0, "total": total},
            "approval": {
                "required": any(x["age_restricted"] for x in lines),
                "approved": cart["approved"],
            },
        }


def test_phone_trip_gets_approval_retries_with_same_key_and_exits(
    serve: Callable[[Responder], _Server],
) -> None:
    edge = FakeEdge()
    server = serve(edge)
    profile = ShopperProfile(
        items_per_basket=(2, 2),
        weighed_item_chance=0.0,
        change_quantity_chance=0.0,
        remove_line_chance=0.0,
        payment_mix=(("cash", 1.0),),
    )
    with (
        AisleClient(server.url, "phone") as phone,
        AisleClient(server.url, "tablet") as tablet,
        AisleClient(server.url, "exit") as gate,
    ):
        shopper = PhoneSimulator(
            phone, tablet, gate, barcodes=[_AGE_CODE], profile=profile, rng=random.Random(1)
        )
        trip = shopper.run_trip()
    assert trip is not None
    assert trip.approved and trip.exit_verified
    assert trip.total == 2 * _PRICE
    (first, key1), (second, key2) = edge.checkouts
    assert first == second and key1 == key2, "the retry after approval must reuse the key"
    # Cash hands over the next whole 100 minor units: 2468 -> 2500.
    assert edge.payments == [(2468, {"method": "cash", "amount": 2500})]
    assert edge.verified == [trip.sale_id]
    stats = shopper.stats
    assert (stats.sales, stats.revenue, stats.approvals, stats.exit_passes_verified) == (
        1,
        2 * _PRICE,
        1,
        1,
    )
    assert stats.audits == 1
    assert stats.errors == {}, "approval_required is part of the flow, not an error"


def test_kiosk_trips_scan_weighed_codes_edit_lines_and_pay_exactly(
    serve: Callable[[Responder], _Server],
) -> None:
    edge = FakeEdge()
    server = serve(edge)
    profile = ShopperProfile(
        items_per_basket=(4, 4),
        weighed_item_chance=0.7,
        change_quantity_chance=1.0,
        remove_line_chance=1.0,
        payment_mix=(("card", 1.0),),
    )
    with AisleClient(server.url, "kiosk") as kiosk, AisleClient(server.url, "tablet") as tablet:
        shopper = KioskSimulator(
            kiosk,
            tablet,
            barcodes=["6901234567892"],
            weighed=[("100023", 1999)],
            profile=profile,
            rng=random.Random(5),
        )
        trips = [shopper.run_trip() for _ in range(10)]
    assert all(t is not None and not t.approved for t in trips)
    stats = shopper.stats
    assert stats.sales == 10 and stats.errors == {}
    assert 10 < stats.weighed_scans < stats.scans
    assert stats.line_removals == 10
    scanned = [
        json.loads(b)["barcode"]
        for m, p, _, b in server.seen
        if p.endswith("/lines") and m == "POST"
    ]
    assert all(Gtin.parse(c).value == c for c in scanned)
    assert any(c.startswith("2100023") for c in scanned)
    # Quantity changes only ever target packaged lines: a weighed line's quantity is its weight.
    assert len(edge.patched) == stats.line_changes > 0
    assert all(line["weight_g"] is None for line in edge.patched)
    assert [p for _, p in edge.payments] == [
        {"method": "card", "amount": t.total}
        for t in trips
        if t is not None  # card pays exactly
    ]


def test_run_fleet_shops_until_the_deadline(serve: Callable[[Responder], _Server]) -> None:
    edge = FakeEdge()
    server = serve(edge)
    seen: list[int] = []
    started = time.monotonic()
    stats = run_fleet(
        server.url,
        kiosk_tokens=["k1", "k2"],
        phone_tokens=["p1"],
        attendant_token="tablet",
        exit_token="exit",
        barcodes=["6901234567892", _AGE_CODE],
        weighed=[("100023", 1999)],
        duration_s=0.6,
        seed=1,
        on_progress=lambda s: seen.append(s.sales),
        progress_interval_s=0.1,
    )
    assert time.monotonic() - started < 10
    assert stats.sales == len(edge.sales) > 0
    assert stats.revenue == sum(r["sale"]["total"] for r in edge.sales.values())
    assert stats.unexpected_errors() == {}
    assert stats.exit_passes_verified == len(edge.verified) > 0
    assert stats.scan_p50() is not None and stats.scan_p50() <= stats.scan_p99()  # type: ignore[operator]
    assert stats.stuck_devices == 0
    assert len(seen) >= 2 and seen[-1] == stats.sales


def test_run_fleet_against_a_dead_server_is_bounded_and_visible() -> None:
    started = time.monotonic()
    stats = run_fleet(
        _dead_url(),
        kiosk_tokens=["k1"],
        phone_tokens=["p1"],
        attendant_token="tablet",
        exit_token="exit",
        barcodes=["6901234567892"],
        weighed=[],
        duration_s=0.5,
        seed=1,
        on_progress=None,
        timeout=1.0,
    )
    assert time.monotonic() - started < 10
    assert stats.sales == 0
    assert stats.all_failed
    assert stats.errors["connection_error"] == stats.requests > 0
    assert stats.unexpected_errors()
    assert not stats.ok
