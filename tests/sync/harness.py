"""Real processes for sync tests: a cloud served by ``aisle cloud serve`` on a real socket, on
SQLite or PostgreSQL, and edge stores on real SQLite files that sell through the services."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from edge.auth.service import Principal
from edge.checkout import carts, sales
from edge.checkout.models import Sale
from edge.checkout.payment_rules import PaymentRequest
from edge.outbox.models import OutboxEvent
from edge.sync_client import service
from edge.sync_client.scheduler import SyncRunner
from shared.catalog_csv import CATALOG_COLUMNS
from shared.clock import SystemClock
from tests.builders import MILK, RICE, SOAP, Store, make_store

AISLE = str(Path(sys.executable).parent / "aisle")
ROOT = Path(__file__).resolve().parents[2]
PG_ENV = "AISLE_TEST_POSTGRES_URL"
CODES = [p["barcodes"].split("|")[0] for p in (MILK, RICE, SOAP)]


def now() -> datetime:
    """The real time, in UTC: the cloud checks the timestamps a store sends against its own."""
    return datetime.now(UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [AISLE, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"aisle {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


# --- a database for the cloud --------------------------------------------------------------------


@contextlib.contextmanager
def cloud_database(backend: str, directory: Path) -> Iterator[str]:
    """A SQLAlchemy URL of an empty database for one cloud: a SQLite file, or a fresh
    PostgreSQL database (dropped afterwards) when ``AISLE_TEST_POSTGRES_URL`` is set."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'cloud.sqlite3'}"
        return
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: the PostgreSQL sync suite must run")
        pytest.skip(f"PostgreSQL half skipped: set {PG_ENV} to run it")
    admin_info = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"aisle_sync_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(admin_info, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ENV} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {PG_ENV} is unreachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_info, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the cloud as a real server process -----------------------------------------------------------


@dataclass
class CloudProcess:
    """``aisle cloud serve`` on a free port; the tests stop, kill and restart it at will."""

    root: Path
    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _hq: str | None = None

    @property
    def config(self) -> str:
        return str(self.root / "cloud.toml")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {"AISLE_DATABASE_URL": self.database_url, "AISLE_SERVER__WORKERS": "2"}

    def init(self) -> CloudProcess:
        run_cli("cloud", "init", str(self.root), env=self.env)
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("cloud", *args, "--config", self.config, env=self.env, check=check)

    def start(self, env: dict[str, str] | None = None) -> CloudProcess:
        log_path = self.root / "serve.log"
        command = [AISLE, "cloud", "serve", "--config", self.config, "--host", "127.0.0.1"]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env={**os.environ, **self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"cloud exited {self.proc.returncode}; see {log_path}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("cloud did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def __enter__(self) -> CloudProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_store(self, store_id: str) -> str:
        """Register a store; returns its one-time enrollment code."""
        return self.cli("add-store", store_id, "--name", f"Store {store_id}").stdout.split()[-1]

    def add_stores(self, store_ids: list[str]) -> dict[str, str]:
        """Register many stores at once, through the cloud's own service on its database (what
        ``add-store`` does, without a process per store); returns their enrollment codes."""
        from cloud.db import Database as CloudDatabase
        from cloud.stores.service import StoreInput, add_store

        db = CloudDatabase.open(self.database_url)
        try:
            return {
                store_id: add_store(
                    db,
                    StoreInput(
                        store_id, f"Store {store_id}", "supermarket", None, "Asia/Shanghai", "CNY"
                    ),
                    now=datetime.now(UTC),
                    code_ttl_s=3600,
                )
                for store_id in store_ids
            }
        finally:
            db.dispose()

    @property
    def hq_token(self) -> str:
        if self._hq is None:
            self._hq = self.cli("token", "--role", "hq").stdout.split()[-1]
        return self._hq

    def get(self, path: str) -> Any:
        response = requests.get(
            self.url + path, headers={"Authorization": f"Bearer {self.hq_token}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = requests.post(
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.hq_token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def sales_of(self, store_id: str) -> list[dict[str, Any]]:
        """Every sale HQ sees for the store, following the pages."""
        found: list[dict[str, Any]] = []
        path: str | None = f"/api/v1/stores/{store_id}/sales?limit=200"
        while path:
            page = self.get(path)
            found.extend(page["sales"])
            nxt = page["next"]
            path = nxt.removeprefix(self.url) if nxt else None
        return found

    def sync_state(self, store_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/stores/{store_id}/sync-state"))


# --- stores ---------------------------------------------------------------------------------------


def new_store(tmp: Path, store_id: str, **overrides: Any) -> Store:
    return make_store(tmp / store_id, **{"store.id": store_id, **overrides})


def enrolled(
    cloud: CloudProcess, tmp: Path, store_id: str, *, via: str | None = None, **overrides: Any
) -> Store:
    """A new store, added at ``cloud`` and enrolled with it; ``via`` is the address the store is
    given for the cloud (a fault proxy's), the cloud's own by default."""
    store = new_store(tmp, store_id, **overrides)
    service.enroll(
        store.settings,
        store.db,
        cloud_url=via or cloud.url,
        code=cloud.add_store(store_id),
        now=now(),
    )
    return store


def sell(store: Store, count: int = 1, *, items: int = 2) -> list[str]:
    """Ring up ``count`` card sales at a kiosk; returns their sale ids."""
    kiosk = Principal(store.devices["kiosk"], "kiosk")
    ids = []
    for n in range(count):
        now = store.clock.now()
        view = carts.create_cart(store.db, kiosk, channel="kiosk", currency="CNY", now=now)
        for i in range(items):
            view = carts.add_line(
                store.db,
                kiosk,
                view.cart.id,
                barcode=CODES[(n + i) % len(CODES)],
                quantity=None,
                rules=store.ctx.scan_rules,
                shop=store.ctx.shop,
                now=now,
            )
        done = sales.checkout(
            store.ctx,
            kiosk,
            view.cart.id,
            payments=[PaymentRequest("card", view.totals.total)],
            idempotency_key=uuid.uuid4().hex,
        )
        ids.append(done.sale["id"])
    return ids


def runner(store: Store, **kw: Any) -> SyncRunner:
    """A sync runner on the store's files with the real clock (the cloud checks timestamps)."""
    return SyncRunner(store.settings, store.db, SystemClock(), **kw)


def edge_sales(store: Store) -> dict[str, int]:
    """sale id -> total, as the store recorded them."""
    with store.db.read() as session:
        return dict(session.execute(select(Sale.id, Sale.total)).all())


def outbox_count(store: Store) -> int:
    with store.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def assert_exactly_once(cloud: CloudProcess, store: Store) -> None:
    """Every sale of the store is at the cloud once with its total, and every outbox event
    was applied once (safety); nothing is left to send (liveness, once faults heal)."""
    at_cloud = cloud.sales_of(store.settings.store.id)
    ids = [s["id"] for s in at_cloud]
    assert len(ids) == len(set(ids)), "a sale arrived twice"
    assert {s["id"]: s["total"] for s in at_cloud} == edge_sales(store)
    state = cloud.sync_state(store.settings.store.id)
    events = outbox_count(store)
    assert state["high_water_seq"] == events
    assert state["events_applied"] + state["quarantined"] == events


def write_config(store: Store) -> str:
    """An edge.toml for the store's files, for the command line (`aisle edge ...`)."""
    path = store.settings.data_dir / "edge.toml"
    path.write_text(
        'data_dir = "."\n'
        f'[store]\nid = "{store.settings.store.id}"\n'
        "[payments]\nlatency_ms = 0\n"
        f"[sync]\nbatch_events = {store.settings.sync.batch_events}\n"
    )
    return str(path)


def chain_catalog(directory: Path, count: int, *, prefix: str = "CH") -> Path:
    """A cloud catalog CSV of ``count`` products with their own barcodes."""
    import hashlib

    from tests.builders import ean13

    family = int(hashlib.sha1(prefix.encode()).hexdigest(), 16) % 1000
    path = directory / f"chain-{prefix}.csv"
    rows = [",".join(CATALOG_COLUMNS)]
    for i in range(count):
        code = ean13(f"69{family:03d}{i:07d}")
        rows.append(f"{prefix}-{i:05d},Chain product {i},{code},{100 + i},13,grocery,each,false,")
    path.write_text("\n".join(rows) + "\n")
    return path


@dataclass
class EdgeProcess:
    """``aisle edge serve`` on a store's files (its background sync included)."""

    store: Store
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EdgeProcess:
        config = write_config(self.store)
        log_path = self.store.settings.data_dir / "serve.log"
        command = [AISLE, "edge", "serve", "--config", config, "--host", "127.0.0.1"]
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env={**os.environ, "AISLE_PAYMENTS__LATENCY_MS": "0", **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"edge exited {self.proc.returncode}; see {log_path}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("edge did not come up")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.store.tokens['kiosk']}", **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def open_cart(self, items: int = 2) -> dict[str, Any]:
        cart = self.call("POST", "/api/v1/carts", json={"channel": "kiosk"}).json()
        for i in range(items):
            cart = self.call(
                "POST", f"/api/v1/carts/{cart['id']}/lines", json={"barcode": CODES[i % 3]}
            ).json()
        return dict(cart)

    def pay(
        self, cart: dict[str, Any], key: str, timeout: float = 10, method: str = "cash"
    ) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/carts/{cart['id']}/checkout",
            json={"payments": [{"method": method, "amount": cart["totals"]["total"]}]},
            headers={
                "Authorization": f"Bearer {self.store.tokens['kiosk']}",
                "Idempotency-Key": key,
            },
            timeout=timeout,
        )

    def pay_retrying(
        self, cart: dict[str, Any], key: str, attempts: int = 4, method: str = "cash"
    ) -> requests.Response:
        """Pay as ``devices.client`` does: a connection error is retried with the same key."""
        for attempt in range(attempts):
            try:
                return self.pay(cart, key, method=method)
            except requests.ConnectionError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


def wait_for(predicate: Any, *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (a liveness bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")
