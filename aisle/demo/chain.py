"""The demo's steps: a cloud, two enrolled stores, shoppers at both, an outage, the reckoning.

Everything goes through the real command line and the real HTTP APIs, in separate processes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from tqdm import tqdm

from aisle.demo.catalog import DemoCatalog
from aisle.demo.processes import DemoError, aisle, aisle_cmd, child_env, free_port, wait_healthy
from aisle.demo.relay import Relay
from devices.client import AisleClient
from devices.fleet import run_fleet
from devices.statistics import EXPECTED_ERROR_CODES, FleetStats
from shared.money import format_amount

if TYPE_CHECKING:
    from aisle.demo.members import MemberOutcome

#: Longer than the payment simulator's own timeout (10 s by default), so a slow payment answers
#: with its 402 instead of the device giving up first.
DEVICE_TIMEOUT_S = 15.0
#: How long the stores get to push their last sales once shopping stops.
CATCH_UP_TIMEOUT_S = 60.0
#: The stores' sync timing for the demo: push every 2 s, retry quickly after the outage.
SYNC_ENV = {
    "AISLE_SYNC__PUSH_INTERVAL_S": "2",
    "AISLE_SYNC__PULL_INTERVAL_S": "10",
    "AISLE_SYNC__BACKOFF_INITIAL_S": "0.5",
    "AISLE_SYNC__BACKOFF_MAX_S": "3",
}


@dataclass
class DemoCloud:
    url: str
    port: int
    hq_token: str
    codes: dict[str, str]


@dataclass
class DemoStore:
    """One store of the demo: its files, its server and its paired devices."""

    store_id: str
    name: str
    root: Path
    cloud_url: str
    base_url: str = ""
    log_path: Path = field(default_factory=Path)
    tokens: dict[str, list[str]] = field(default_factory=dict)

    @property
    def config(self) -> str:
        return str(self.root / "edge.toml")


def _serve(
    args: Sequence[str], log_path: Path, servers: list[subprocess.Popen[bytes]], env: dict[str, str]
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*aisle_cmd(), *args, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**child_env(), **env},
            # Its own session: Ctrl-C reaches only the demo, which then stops it in order.
            start_new_session=True,
        )
    servers.append(server)
    base_url = f"http://127.0.0.1:{port}"
    wait_healthy(base_url, server, log_path)
    return base_url, server


def start_cloud(
    root: Path, catalog: Path, store_ids: Sequence[str], servers: list[subprocess.Popen[bytes]]
) -> DemoCloud:
    """``aisle cloud init``, the chain catalog, the stores, an HQ token, and the server."""
    aisle("cloud", "init", str(root))
    config = str(root / "cloud.toml")
    print("  cloud: " + aisle("cloud", "import-catalog", str(catalog), "--config", config)[-1])
    codes = {s: aisle("cloud", "add-store", s, "--config", config)[-1] for s in store_ids}
    hq = aisle("cloud", "token", "--role", "hq", "--config", config)[-1].strip()
    url, _ = _serve(["cloud", "serve", "--config", config], root / "serve.log", servers, {})
    print(f"  cloud serving on {url}")
    return DemoCloud(url, int(url.rsplit(":", 1)[1]), hq, codes)


def start_store(
    store: DemoStore,
    code: str,
    kiosks: int,
    phones: int,
    servers: list[subprocess.Popen[bytes]],
) -> None:
    """Create the store, enroll it, pull the chain's catalog, pair devices, serve it."""
    aisle("edge", "init", str(store.root), "--store-id", store.store_id, "--name", store.name)
    aisle("edge", "enroll", "--cloud", store.cloud_url, "--code", code, "--config", store.config)
    pulled = aisle("edge", "sync-now", "--config", store.config)[0]
    print(f"  store {store.store_id}: enrolled; {pulled}")
    roles = ["kiosk"] * kiosks + ["phone"] * phones + ["tablet", "manager", "exit"]
    for role in roles:
        name = f"{role} {len(store.tokens.get(role, [])) + 1}"
        lines = aisle("edge", "pair", "--role", role, "--name", name, "--config", store.config)
        store.tokens.setdefault(role, []).append(lines[-1].strip())
    store.log_path = store.root / "edge-serve.log"
    store.base_url, _ = _serve(
        ["edge", "serve", "--config", store.config], store.log_path, servers, SYNC_ENV
    )
    print(f"  store {store.store_id} ({store.name}) serving on {store.base_url}")


@dataclass
class Outage:
    """What the cut-off store lived through."""

    cut_at_s: float = 0.0
    restored_at_s: float = 0.0
    max_pending: int = 0
    seen_offline: bool = False


def shop_at_all(
    stores: Sequence[DemoStore],
    catalog: DemoCatalog,
    duration_s: float,
    seed: int,
    relay: Relay,
) -> tuple[dict[str, FleetStats], Outage]:
    """Devices shop at every store; the last store's link is cut for the middle third."""
    results: dict[str, FleetStats] = {}
    live: dict[str, FleetStats] = {}

    def shop(index: int, store: DemoStore) -> None:
        def progress(stats: FleetStats) -> None:
            live[store.store_id] = stats

        results[store.store_id] = run_fleet(
            store.base_url,
            kiosk_tokens=store.tokens.get("kiosk", []),
            phone_tokens=store.tokens.get("phone", []),
            attendant_token=store.tokens["tablet"][0],
            exit_token=store.tokens["exit"][0],
            barcodes=catalog.barcodes,
            weighed=catalog.weighed,
            duration_s=duration_s,
            seed=seed + index,
            on_progress=progress,
            timeout=DEVICE_TIMEOUT_S,
        )

    threads = [
        threading.Thread(target=shop, args=(i, s), daemon=True) for i, s in enumerate(stores)
    ]
    cut_off = stores[-1]
    outage = Outage(cut_at_s=duration_s / 3, restored_at_s=2 * duration_s / 3)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    with (
        AisleClient(cut_off.base_url, cut_off.tokens["manager"][0], timeout=5) as manager,
        tqdm(
            total=duration_s,
            desc="  shopping",
            unit="s",
            bar_format="{desc} {bar} {n:.0f}/{total:.0f} s{postfix}",
        ) as bar,
    ):
        while any(t.is_alive() for t in threads):
            elapsed = time.monotonic() - started
            if outage.cut_at_s <= elapsed < outage.restored_at_s and not relay.is_cut:
                relay.cut()
            elif elapsed >= outage.restored_at_s and relay.is_cut:
                relay.restore()
            if relay.is_cut:
                status = manager.sync_status()
                outage.max_pending = max(outage.max_pending, int(status["outbox_pending"]))
                outage.seen_offline |= not status["online"]
            bar.update(min(elapsed, duration_s) - bar.n)
            sales = ", ".join(f"{k} {v.sales}" for k, v in sorted(live.items()))
            link = f"; {cut_off.store_id} OFFLINE" if relay.is_cut else ""
            bar.set_postfix_str(f"sales {sales}{link}")
            time.sleep(0.5)
    relay.restore()
    return results, outage


def pay_cash(kiosk: AisleClient, cart: dict[str, Any]) -> dict[str, Any]:
    """Pay what the cart still owes in cash (nothing when points or offers paid it all)."""
    due = int(cart["due"])
    return dict(kiosk.checkout(cart["id"], [{"method": "cash", "amount": due}] if due else []))


def wait_until_synced(stores: Sequence[DemoStore]) -> dict[str, float | None]:
    """Seconds until each store's outbox is empty once shopping ended (None: not in time)."""
    started = time.monotonic()
    done: dict[str, float | None] = {s.store_id: None for s in stores}
    while time.monotonic() - started < CATCH_UP_TIMEOUT_S:
        for store in stores:
            if done[store.store_id] is None:
                with AisleClient(store.base_url, store.tokens["manager"][0], timeout=5) as m:
                    if m.sync_status()["outbox_pending"] == 0:
                        done[store.store_id] = time.monotonic() - started
        if all(v is not None for v in done.values()):
            break
        time.sleep(0.5)
    return done


def cloud_sales(cloud: DemoCloud, store_id: str) -> list[dict[str, Any]]:
    """Every sale HQ sees for a store, following the pages."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{cloud.url}/api/v1/stores/{store_id}/sales?limit=500"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {cloud.hq_token}"
        while url:
            answer = session.get(url, timeout=30)
            if answer.status_code != 200:
                raise DemoError(f"HQ API answered {answer.status_code}: {answer.text[:200]}")
            page = answer.json()
            found.extend(page["sales"])
            url = page["next"]
    return found


# -- report ----------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


def _money(amount: Any, currency: str) -> str:
    try:
        return f"{format_amount(int(amount), currency)} {currency}"
    except (TypeError, ValueError):
        return f"{amount} {currency}"


def summarise_store(
    store: DemoStore,
    stats: FleetStats,
    kiosks: int,
    phones: int,
    other_sales: Sequence[int] = (),
) -> tuple[dict[str, Any], list[str]]:
    """Print one store's day; returns its day report and the problems found. ``other_sales``:
    the totals of sales made outside the fleet (the demo's member), which the store counts."""
    with AisleClient(store.base_url, store.tokens["manager"][0], timeout=DEVICE_TIMEOUT_S) as m:
        report = m.day_report()
        sync = m.sync_status()
    currency = str(report.get("currency", "CNY"))
    problems: list[str] = []
    # The server's books and the devices' receipts must agree: every 201 the fleet saw is a sale.
    for key, fleet_value in (
        ("sales", stats.sales + len(other_sales)),
        ("revenue", stats.revenue + sum(other_sales)),
    ):
        if report.get(key) != fleet_value:
            problems.append(f"day report {key} {report.get(key)} != devices' {fleet_value}")
    if stats.stuck_devices:
        problems.append(f"{stats.stuck_devices} device(s) still busy after the run")
    if stats.unexpected_errors():
        problems.append(f"unexpected errors: {dict(stats.unexpected_errors())}")
    if stats.sales == 0:
        problems.append("no sales")
    verified = stats.exit_passes_verified
    audit_share = f" ({stats.audits / verified:.1%})" if verified else ""
    rows: Sequence[tuple[str, str]] = (
        ("devices", f"{kiosks} kiosks, {phones} phones for {stats.elapsed_s:.0f} s"),
        ("sales", f"{report.get('sales')} (devices counted {stats.sales + len(other_sales)})"),
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
        (
            "outbox",
            f"{sync.get('outbox_pending')} events pending, acked up to "
            f"{sync.get('acked_seq')} of {sync.get('outbox_last_seq')}",
        ),
        ("requests", f"{stats.requests} ({stats.failed_requests} failed)"),
        ("data directory", f"{store.root} (server log {store.log_path.name})"),
    )
    print()
    print(f"Store {store.store_id} ({store.name})")
    for label, value in rows:
        print(f"  {label:<16} {value}")
    for code, count in stats.errors.most_common():
        tag = "expected" if code in EXPECTED_ERROR_CODES else "UNEXPECTED"
        print(f"  error {code:<22} {count:>6}  {tag}: {stats.error_samples.get(code, '')[:100]}")
    return report, problems


def summarise_chain(
    stores: Sequence[DemoStore],
    outcome: tuple[dict[str, FleetStats], Outage],
    caught_up: dict[str, float | None],
    cloud: DemoCloud,
    *,
    kiosks: int,
    phones: int,
    root: Path,
    member: MemberOutcome | None = None,
    tour_sales: Mapping[str, Sequence[int]] | None = None,
    tour_problems: Sequence[str] = (),
) -> int:
    """Print every store's day and the cloud's view; 0 when all of it adds up. ``tour_sales``:
    the totals of the promotion tour's sales at each store, which the stores count too."""
    results, outage = outcome
    problems: list[str] = []
    reports = {}
    for store in stores:
        report, found = summarise_store(
            store,
            results[store.store_id],
            kiosks,
            phones,
            [
                *([] if member is None else member.sales.get(store.store_id, [])),
                *(tour_sales or {}).get(store.store_id, []),
            ],
        )
        reports[store.store_id] = report
        problems.extend(f"{store.store_id}: {p}" for p in found)
    print()
    print(f"Cloud {cloud.url} (HQ view; data in {root})")
    for store in stores:
        sid = store.store_id
        at_cloud = cloud_sales(cloud, sid)
        ids = [s["id"] for s in at_cloud]
        once = len(ids) == len(set(ids))
        edge_sales, edge_revenue = reports[sid].get("sales"), reports[sid].get("revenue")
        cloud_total = sum(int(s["total"]) for s in at_cloud)
        match = once and len(ids) == edge_sales and cloud_total == edge_revenue
        currency = str(reports[sid].get("currency", "CNY"))
        print(
            f"  {sid}  {len(ids)} sales of {edge_sales} arrived, "
            f"{'each once' if once else 'SOME TWICE'}; total {_money(cloud_total, currency)} "
            f"vs store {_money(edge_revenue, currency)}  {'OK' if match else 'MISMATCH'}"
        )
        if not match:
            problems.append(f"{sid}: the cloud's sales do not match the store's")
        late = caught_up.get(sid)
        if late is None:
            problems.append(f"{sid}: outbox not empty {CATCH_UP_TIMEOUT_S:.0f} s after shopping")
    cut = stores[-1].store_id
    late = caught_up.get(cut)
    caught = "never caught up" if late is None else f"all sent {late:.1f} s after shopping ended"
    print(
        f"  {cut}  lost the cloud from {outage.cut_at_s:.0f} s to {outage.restored_at_s:.0f} s: "
        f"kept selling, up to {outage.max_pending} events waited"
        f"{' (status showed offline)' if outage.seen_offline else ''}; {caught}"
    )
    if member is not None:
        stores_seen = ", ".join(f"{k} {v}" for k, v in sorted(member.store_balances.items()))
        print(
            f"  member {member.member_id}: {member.earned_offline} earned offline, "
            f"{member.spent_online} spent and {member.earned_online} earned online; balance "
            f"{member.cloud_balance} at the cloud (ledger adds up to {member.ledger_sum}), "
            f"{stores_seen} in the stores"
        )
        problems.extend(member.problems())
    problems.extend(tour_problems)
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    ok = not problems
    print(f"  result           {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1
