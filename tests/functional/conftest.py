"""A real store server for functional tests: built with the ``aisle`` CLI, served by gunicorn.

``live`` (one per test module) runs ``aisle edge init``, ``import-catalog`` and ``pair`` in
subprocesses, then ``aisle edge serve`` on a free port, and talks to it over HTTP only.
``declining`` is a second store, built the same way and served by its own process, whose card
provider declines every payment (``AISLE_PAYMENTS__DECLINE_RATE_BP=10000``). It cannot share
``live``'s files: a server holds ``server.lock`` on its store for its whole life.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.builders import write_catalog

ROLES = ("kiosk", "phone", "handheld", "tablet", "manager", "exit")
#: Routes whose writes require an Idempotency-Key.
KEYED_WRITES = re.compile(r"/api/v1/(sales/[^/]+/returns|stock/movements)$")
#: Paired devices: one per role, plus a second phone (another shopper).
DEVICES = {**{role: role for role in ROLES}, "phone2": "phone"}
STORE_ID = "S001"
STORE_NAME = "Functional Store"
START_TIMEOUT_S = 30.0
_NO_BODY = object()
AISLE = (sys.executable, "-m", "aisle")


def aisle(*args: str, env: dict[str, str] | None = None) -> str:
    """Run the real ``aisle`` command line; returns stdout, fails the test with stderr."""
    proc = subprocess.run(
        [*AISLE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _env(),
        check=False,
    )
    assert proc.returncode == 0, (
        f"aisle {' '.join(args)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.stdout


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    env["AISLE_PAYMENTS__LATENCY_MS"] = "0"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Store:
    """A store created with the CLI: its directory, config and paired devices."""

    data_dir: Path
    config: Path
    tokens: dict[str, str]
    device_ids: dict[str, str]


def create_store(root: Path) -> Store:
    """``aisle edge init``, ``import-catalog`` and one ``pair`` per device, as an operator would."""
    aisle("edge", "init", str(root), "--store-id", STORE_ID, "--name", STORE_NAME)
    config = root / "edge.toml"
    assert config.is_file()
    catalog = write_catalog(root / "catalog.csv")
    out = aisle("edge", "import-catalog", str(catalog), "--config", str(config))
    assert "imported 5 products" in out, out
    # One `aisle edge pair` per device, run side by side as several operators could.
    procs = {
        device: subprocess.Popen(
            [*AISLE, "edge", "pair", "--role", role, "--name", device, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for device, role in DEVICES.items()
    }
    tokens, device_ids = {}, {}
    for device, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"aisle edge pair ({device}) failed:\n{stdout}\n{stderr}"
        lines = stdout.splitlines()
        tokens[device] = lines[-1].strip()
        assert tokens[device].startswith(f"aisle_{DEVICES[device]}_"), lines
        # "paired <role> device <id>"
        device_ids[device] = lines[0].split()[-1]
    assert len(set(tokens.values())) == len(DEVICES)
    return Store(root, config, tokens, device_ids)


@dataclass
class Live:
    """A running store server and a device-like HTTP client for it."""

    base_url: str
    data_dir: Path
    tokens: dict[str, str]
    device_ids: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    http: requests.Session = field(default_factory=requests.Session)

    def headers(self, role: str | None = None, **extra: str) -> dict[str, str]:
        """Auth headers of a paired device (``role`` as in DEVICES), plus ``extra`` headers."""
        out = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        out.update({k.replace("_", "-"): v for k, v in extra.items()})
        return out

    def request(
        self,
        method: str,
        path: str,
        role: str | None = None,
        *,
        json: Any = _NO_BODY,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        hdrs = self.headers(role)
        hdrs.update(headers or {})
        if method == "POST" and KEYED_WRITES.search(path) and "Idempotency-Key" not in hdrs:
            # As a device does: a write it may retry carries a key of its own. A test that
            # wants none passes {"Idempotency-Key": None}.
            hdrs["Idempotency-Key"] = f"test-{uuid.uuid4()}"
        kwargs: dict[str, Any] = {"headers": hdrs, "params": params, "timeout": 30}
        if json is not _NO_BODY:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data
        return self.http.request(method, self.base_url + path, **kwargs)

    def get(self, path: str, role: str | None = None, **kw: Any) -> requests.Response:
        return self.request("GET", path, role, **kw)

    def post(self, path: str, role: str | None = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, role, **kw)

    def patch(self, path: str, role: str | None = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, role, **kw)

    def put(self, path: str, role: str | None = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, role, **kw)

    def delete(self, path: str, role: str | None = None, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, role, **kw)

    def ok(self, response: requests.Response, status: int = 200) -> Any:
        """The JSON body of a response that must have ``status``; fails with the body if not."""
        assert response.status_code == status, (
            f"{response.request.method} {response.request.path_url}: expected {status}, "
            f"got {response.status_code}: {response.text[:2000]}"
        )
        assert response.headers["Content-Type"].split(";")[0] == "application/json"
        body = response.json()
        assert_matches_contract(response.request.method or "", response.request.path_url, body)
        return body

    def outbox_pending(self) -> int:
        return int(self.ok(self.get("/api/v1/sync/status", "manager"))["outbox_pending"])

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def _route_patterns() -> list[tuple[str, re.Pattern[str], Any]]:
    from edge.route_table import all_specs

    out = []
    for spec in all_specs():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(spec.path))
        out.append((spec.method, re.compile(pattern + "$"), spec.response))
    return out


_ROUTES: list[tuple[str, re.Pattern[str], Any]] = []


def assert_matches_contract(method: str, path_url: str, body: Any) -> None:
    """A successful answer is exactly what its route's declared response model describes: the
    model validates it, and dumping the model gives the same document back (no field the
    contract does not name, none missing, none of another type)."""
    if not _ROUTES:
        _ROUTES.extend(_route_patterns())
    path = path_url.split("?", 1)[0]
    if "error" in body and set(body) == {"error"}:
        assert set(body["error"]) == {"code", "message", "details"}, body
        return
    for route_method, pattern, model in _ROUTES:
        if route_method == method and pattern.match(path):
            if model is None:
                return
            parsed = model.model_validate(body)
            dumped = parsed.model_dump(mode="json", by_alias=True)
            assert dumped == body, f"{method} {path}: the answer differs from {model.__name__}"
            return
    raise AssertionError(f"{method} {path}: no declared route")


def start_server(store: Store, log_path: Path, **env: str) -> Live:
    """``aisle edge serve`` on a free port; returns once ``/healthz`` answers 200."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *AISLE,
                "edge",
                "serve",
                "--config",
                str(store.config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(**env),
            start_new_session=True,  # its own process group: teardown reaches the workers too
        )
    live = Live(
        base_url=f"http://127.0.0.1:{port}",
        data_dir=store.data_dir,
        tokens=store.tokens,
        device_ids=store.device_ids,
        log_path=log_path,
        process=process,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            response = live.http.get(live.base_url + "/healthz", timeout=2)
            if response.status_code == 200:
                return live
            last_error = f"HTTP {response.status_code}: {response.text[:500]}"
        except requests.ConnectionError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    stop_server(live)
    pytest.fail(
        f"edge server did not become healthy within {START_TIMEOUT_S:g} s "
        f"(exit code {process.returncode}, last error: {last_error})\n"
        f"--- server log tail ---\n{live.log_tail()}",
        pytrace=False,
    )


def stop_server(live: Live) -> None:
    """SIGTERM to the gunicorn master, wait, then SIGKILL its process group if it lingers."""
    live.http.close()
    process = live.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Workers are in the master's process group; none may outlive the test run.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def served_store(root: Path, **env: str) -> Iterator[Live]:
    """A fresh store under ``root``, served by a real ``aisle edge serve`` process until the
    block ends; ``env`` adds settings overrides (``AISLE_...``)."""
    store = create_store(root / "S001")
    server = start_server(store, root / "server.log", **env)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A fresh store, served by a real ``aisle edge serve`` process, for one test module."""
    with served_store(tmp_path_factory.mktemp("store")) as server:
        yield server


@pytest.fixture(scope="module")
def declining(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A store of its own whose payment provider declines every card."""
    with served_store(
        tmp_path_factory.mktemp("declining"), AISLE_PAYMENTS__DECLINE_RATE_BP="10000"
    ) as server:
        yield server
