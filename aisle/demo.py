"""``aisle demo``: a whole store on this machine, shopped by simulated kiosks and phones.

Everything goes through the real command line and the real HTTP API, in separate processes, so the
demo shows what an installer would do: create the store, import the catalog, pair the devices,
start the production server, then let the devices shop and read the day's report. Nothing is
faked; the data directory stays behind to be inspected.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from aisle.demo_catalog import write_demo_catalog
from devices.client import AisleClient, AisleClientError
from devices.simulators import EXPECTED_ERROR_CODES, FleetStats, run_fleet
from sync.money import format_amount

STORE_ID = "S001"
STORE_NAME = "Demo Store"
HEALTH_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 120.0
#: Longer than the payment simulator's own timeout (10 s by default), so a slow payment answers
#: with its 402 instead of the device giving up first.
DEVICE_TIMEOUT_S = 15.0
# The checkout this file lives in, so the subprocesses run this code whatever the working directory.
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


class DemoError(Exception):
    """A setup step failed; the message says which and shows what the command printed."""


def run_demo(
    *,
    duration_s: float = 30.0,
    kiosks: int = 4,
    phones: int = 4,
    seed: int = 7,
    workdir: Path | None = None,
) -> int:
    """Set up a store, serve it, let ``kiosks`` + ``phones`` devices shop for ``duration_s``.

    Prints a summary and returns 0 when there were sales and no unexpected error, 1 otherwise.
    The server is always stopped, also on Ctrl-C.
    """
    if kiosks < 0 or phones < 0 or kiosks + phones == 0:
        raise ValueError("the demo needs at least one kiosk or phone")
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="aisle-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    config = root / "edge.toml"
    log_path = root / "edge-serve.log"
    server: subprocess.Popen[bytes] | None = None
    log: TextIO | None = None
    try:
        print(f"Aisle demo: store {STORE_ID} in {root}")
        _aisle("edge", "init", str(root), "--store-id", STORE_ID, "--name", STORE_NAME)
        catalog = write_demo_catalog(root / "catalog.csv", seed=seed)
        print(
            "  " + _aisle("edge", "import-catalog", str(catalog.path), "--config", str(config))[0]
        )
        roles = ["kiosk"] * kiosks + ["phone"] * phones + ["tablet", "manager", "exit"]
        print(f"  pairing {len(roles)} devices ...")
        tokens: dict[str, list[str]] = {}
        for role in roles:
            name = f"{role} {len(tokens.get(role, [])) + 1}"
            lines = _aisle("edge", "pair", "--role", role, "--name", name, "--config", str(config))
            tokens.setdefault(role, []).append(lines[-1].strip())

        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = log_path.open("w", encoding="utf-8")
        serve = ["edge", "serve", "--config", str(config), "--host", "127.0.0.1"]
        server = subprocess.Popen(
            [*_aisle_cmd(), *serve, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            # Its own session: Ctrl-C reaches only the demo, which then stops the server in order.
            start_new_session=True,
        )
        _wait_healthy(base_url, server, log_path)
        print(f"  serving on {base_url} (log: {log_path})")

        stats = _shop(base_url, tokens, catalog.barcodes, catalog.weighed, duration_s, seed)
        with AisleClient(base_url, tokens["manager"][0], timeout=DEVICE_TIMEOUT_S) as manager:
            report = manager.day_report()
            sync = manager.sync_status()
        return _summarise(
            stats, report, sync, root=root, log_path=log_path, kiosks=kiosks, phones=phones
        )
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except AisleClientError as exc:
        print(
            f"demo failed: the server did not answer as the contract says: {exc}", file=sys.stderr
        )
        print(_tail(log_path), file=sys.stderr)
        return 1
    finally:
        if server is not None:
            _stop(server)
        if log is not None:
            log.close()


# -- setup -----------------------------------------------------------------------------------


def _aisle_cmd() -> list[str]:
    return [sys.executable, "-m", "aisle"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # the server log is read while it runs
    return env


def _aisle(*args: str) -> list[str]:
    """Run ``aisle ARGS`` to completion; returns its stdout lines, or raises DemoError."""
    cmd = [*_aisle_cmd(), *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, env=_env(), timeout=CLI_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"`aisle {' '.join(args)}` took longer than {CLI_TIMEOUT_S:.0f} s"
        ) from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise DemoError(f"`aisle {' '.join(args)}` exited with {done.returncode}:\n{output}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise DemoError(f"`aisle {' '.join(args)}` printed nothing")
    return lines


def _free_port() -> int:
    # The port could be taken again before the server binds it; on this machine that is rare and
    # the health check then reports the server's own error.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last = "no answer yet"
    with AisleClient(base_url, None, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise DemoError(
                    f"the server exited with {server.returncode} while starting:\n{_tail(log_path)}"
                )
            try:
                client.health()
                return
            except AisleClientError as exc:
                last = str(exc)
            time.sleep(0.2)
    raise DemoError(
        f"the server was not healthy after {HEALTH_TIMEOUT_S:.0f} s ({last}):\n{_tail(log_path)}"
    )


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM for a graceful stop; after STOP_TIMEOUT_S, SIGKILL the server's process group."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # The group holds only what this server started (its session is its own).
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            server.kill()
        server.wait()


# -- shopping --------------------------------------------------------------------------------


def _shop(
    base_url: str,
    tokens: dict[str, list[str]],
    barcodes: list[str],
    weighed: list[tuple[str, int]],
    duration_s: float,
    seed: int,
) -> FleetStats:
    started = time.monotonic()
    with tqdm(
        total=duration_s,
        desc="  shopping",
        unit="s",
        bar_format="{desc} {bar} {n:.0f}/{total:.0f} s{postfix}",
    ) as bar:

        def progress(stats: FleetStats) -> None:
            elapsed = min(time.monotonic() - started, duration_s)
            bar.update(elapsed - bar.n)
            bar.set_postfix_str(f"sales {stats.sales}, failed requests {stats.failed_requests}")

        return run_fleet(
            base_url,
            kiosk_tokens=tokens.get("kiosk", []),
            phone_tokens=tokens.get("phone", []),
            attendant_token=tokens["tablet"][0],
            exit_token=tokens["exit"][0],
            barcodes=barcodes,
            weighed=weighed,
            duration_s=duration_s,
            seed=seed,
            on_progress=progress,
            timeout=DEVICE_TIMEOUT_S,
        )


# -- report ----------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _money(amount: Any, currency: str) -> str:
    try:
        return f"{format_amount(int(amount), currency)} {currency}"
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def _summarise(
    stats: FleetStats,
    report: dict[str, Any],
    sync: dict[str, Any],
    *,
    root: Path,
    log_path: Path,
    kiosks: int,
    phones: int,
) -> int:
    """Print what the store did and return the exit status (0 = sales and nothing unexpected)."""
    currency = str(report.get("currency", "CNY"))
    problems: list[str] = []
    # The server's books and the devices' receipts must agree: every 201 the fleet saw is a sale.
    for key, fleet_value in (("sales", stats.sales), ("revenue", stats.revenue)):
        if report.get(key) != fleet_value:
            problems.append(f"day report {key} {report.get(key)} != devices' {fleet_value}")
    if stats.stuck_devices:
        problems.append(f"{stats.stuck_devices} device(s) still busy after the run")
    unexpected = stats.unexpected_errors()
    verified = stats.exit_passes_verified
    audit_share = f" ({stats.audits / verified:.1%})" if verified else ""
    pending = sync.get("outbox_pending", report.get("outbox_pending"))
    link = "online" if sync.get("online") else "no cloud connected, they wait for it"
    rows: Sequence[tuple[str, str]] = (
        ("devices", f"{kiosks} kiosks, {phones} phones for {stats.elapsed_s:.0f} s"),
        ("sales", f"{report.get('sales')} (devices counted {stats.sales})"),
        ("items", f"{report.get('items')} (devices counted {stats.items})"),
        ("revenue", _money(report.get("revenue"), currency)),
        (
            "scans",
            f"{stats.scans} ({stats.weighed_scans} weighed); "
            f"p50 {_ms(stats.scan_p50())}, p99 {_ms(stats.scan_p99())}",
        ),
        ("approvals", f"{stats.approvals} age checks approved by an attendant"),
        ("exit passes", f"{verified} verified, {stats.audits} picked for audit{audit_share}"),
        ("returns", f"{report.get('returns')}"),
        ("stock movements", f"{report.get('stock_movements')}"),
        ("outbox", f"{pending} events pending for the cloud ({link})"),
        ("requests", f"{stats.requests} ({stats.failed_requests} failed)"),
        ("data directory", f"{root} (server log {log_path.name})"),
    )
    print()
    print(f"Aisle demo summary, store {STORE_ID} ({STORE_NAME})")
    for label, value in rows:
        print(f"  {label:<16} {value}")
    if stats.errors:
        print("  errors by code:")
        for code, count in stats.errors.most_common():
            tag = "expected" if code in EXPECTED_ERROR_CODES else "UNEXPECTED"
            print(f"    {code:<24} {count:>6}  {tag}: {stats.error_samples.get(code, '')[:120]}")
    else:
        print(f"  {'errors':<16} none")
    for problem in problems:
        print(f"  MISMATCH: {problem}")
    if stats.all_failed:
        print("  every request failed: is the server answering? see the log above")
    ok = stats.sales > 0 and not unexpected and not problems
    print(f"  result           {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
