"""What a member at the checkout adds to a sale: open-loop sales with and without a member.

``make bench-member-checkout``. Builds a cloud on a database of its own on the PostgreSQL server
(``--pg-url``; the server itself is left alone) and a store enrolled with it, with the real
command line (``aisle cloud init``, ``add-store``, ``aisle edge init``, ``import-catalog`` of the
2,400-product demo catalog, ``pair``, ``enroll``), both served as in production. ``--members``
members are signed up at the store while the cloud answers, so the store keeps each of them.

Then ``--devices`` kiosk connections run sales open loop: each device starts a sale on its own
fixed schedule (``--rate`` sales a second in all, phases spread at random) whatever the
server's speed, and every latency counts from the sale's scheduled start. A sale is: open a
cart, scan ``--items`` items, pay cash. Each sale is, at random, one of three kinds: no member
(``none``); a member by the code their app shows given when the cart opens (``open``:
``POST /carts {"member_code"}``); or attached after the scans (``attach``:
``PUT /carts/{id}/member``, one request more). The kinds are mixed within every row so that each
meets the same moments of the machine: rows run one after the other differ by more than the
5 ms sought (a shared VM's neighbours come and go), mixed sales do not. Rows, each
``--duration`` seconds measured, on the same store:

* ``cloud up``: each lookup asks the cloud first (within the store's 0.3 s member timeout), as
  a store online does; the store pushes its sales meanwhile;
* ``cloud stopped 1..--rows``: the store answers every lookup from its own copy (the cached
  lookup).

Reports for each row and kind the whole sale's and each request's p50, p99 and max, and what a
member adds to the sale's p50 and p99, row by row and over the rows with the cloud stopped
pooled, with a 90% bootstrap interval for the pooled p99's difference. Sales with a member earn
points. Writes JSON to ``bench/results/``. The target (DESIGN.md section 7): a cached member
lookup adds under 5 ms at p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from loadgen import Connection, summarize  # noqa: E402
from processes import Server, free_port, machine  # noqa: E402
from run_ingest_scale_bench import DEFAULT_PG, own_database  # noqa: E402
from run_sync_bench import aisle, serve_cmd  # noqa: E402

from devices.statistics import percentile  # noqa: E402

PHONES = "139%08d"


def log(msg: str) -> None:
    print(f"[member-checkout-bench {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


async def _sale(
    conn: Connection,
    codes: list[str],
    member: str | None,
    rng: random.Random,
    reconnects: list[int],
    member_at: str = "attach",
) -> tuple[dict[str, float], str | None]:
    """One sale; the time each request took, and a failure if any. ``member_at``: ``open``
    gives the member with the cart's opening, ``attach`` attaches them after the scans."""
    took: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def call(
        kind: str, method: str, path: str, body: dict[str, Any], want: int, extra: bytes = b""
    ) -> Any:
        t0 = loop.time()
        status, data = await conn.request(method, path, json.dumps(body).encode(), extra)
        took[kind] = took.get(kind, 0.0) + loop.time() - t0
        if status != want:
            raise RuntimeError(f"{kind}: {status} {data[:200]!r}")
        return json.loads(data)

    opening: dict[str, Any] = {"channel": "kiosk"}
    if member is not None and member_at == "open":
        opening["member_code"] = member
    try:
        try:
            cart = await call("cart", "POST", "/api/v1/carts", opening, 201)
        except (ConnectionResetError, asyncio.IncompleteReadError):
            # The store closes a kept-alive connection quiet for longer than its header
            # timeout; a device reconnects at its next request (the wait counts in the sale).
            await conn.close()
            reconnects[0] += 1
            cart = await call("cart", "POST", "/api/v1/carts", opening, 201)
        if "member_code" in opening and cart["member"] is None:
            raise RuntimeError("the cart did not open for the member")
        for code in rng.sample(codes, len(codes)):
            cart = await call(
                "scan", "POST", f"/api/v1/carts/{cart['id']}/lines", {"barcode": code}, 200
            )
        if member is not None and member_at == "attach":
            cart = await call(
                "member", "PUT", f"/api/v1/carts/{cart['id']}/member", {"member_code": member}, 200
            )
            if cart["member"] is None:
                raise RuntimeError("the member did not attach")
        payment = {"payments": [{"method": "cash", "amount": cart["totals"]["total"]}]}
        key = f"Idempotency-Key: {uuid.uuid4().hex}\r\n".encode()
        sale = await call("pay", "POST", f"/api/v1/carts/{cart['id']}/checkout", payment, 201, key)
        if member is not None and sale["sale"]["points"] is None:
            raise RuntimeError("the sale earned no points entry")
    except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
        await conn.close()
        return took, repr(exc)[:300]
    return took, None


#: How a sale gives its member: none, with the cart's opening, or attached after the scans.
KINDS = ("none", "open", "attach")


async def _device(
    conn: Connection,
    out: dict[str, Any],
    *,
    first: float,
    interval: float,
    measure_from: float,
    stop: float,
    codes: list[str],
    items: int,
    members: list[str],
    seed: int,
) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    due = first
    while due < stop:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        how = rng.choice(KINDS)
        member = None if how == "none" else rng.choice(members)
        took, failure = await _sale(
            conn, rng.sample(codes, items), member, rng, out["reconnects"], how
        )
        done = loop.time()
        if due >= measure_from:
            if failure is not None:
                out["failures"].append(failure)
            else:
                out["sale"][how].append(done - due)
                for kind, seconds in took.items():
                    out["requests"][how].setdefault(kind, []).append(seconds)
        due += interval
        while due < loop.time() - interval:  # a sale that ran over its slot skips the missed
            out["skipped"] += due >= measure_from
            due += interval


async def run_sales(
    url: str,
    token: str,
    codes: list[str],
    *,
    members: list[str],
    devices: int,
    rate: float,
    warmup: float,
    duration: float,
    items: int,
) -> dict[str, Any]:
    """One row: sales of the three kinds mixed at random (a third each), so that each kind
    meets the same moments of the machine."""
    host, port = url.removeprefix("http://").split(":")
    conns = [Connection(host, int(port), token) for _ in range(devices)]
    for start in range(0, devices, 50):
        await asyncio.gather(*(c.open() for c in conns[start : start + 50]))
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    interval = devices / rate
    out: dict[str, Any] = {
        "sale": {how: [] for how in KINDS},
        "requests": {how: {} for how in KINDS},
        "failures": [],
        "skipped": 0,
        "reconnects": [0],
    }
    rng = random.Random(7)
    await asyncio.gather(
        *(
            _device(
                c,
                out,
                first=t0 + rng.random() * interval,
                interval=interval,
                measure_from=t0 + warmup,
                stop=t0 + warmup + duration,
                codes=codes,
                items=items,
                members=members,
                seed=i,
            )
            for i, c in enumerate(conns)
        )
    )
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {
        "sale_seconds": out["sale"],
        "sales_per_s": sum(len(v) for v in out["sale"].values()) / duration,
        "failures": len(out["failures"]),
        "failure_samples": out["failures"][:3],
        "skipped": out["skipped"],
        "reconnects": out["reconnects"][0],
        "kinds": {
            how: {
                "sale": summarize(out["sale"][how]),
                **{kind: summarize(v) for kind, v in out["requests"][how].items()},
            }
            for how in KINDS
        },
    }


def _setup(tmp: Path, pg_url: str, members: int) -> dict[str, Any]:
    """The cloud's and the store's directories, a kiosk token and the members' codes."""
    import requests

    from aisle.demo.catalog import write_demo_catalog

    cenv = {"AISLE_DATABASE_URL": pg_url}
    catalog = write_demo_catalog(tmp / "catalog.csv", count=2400, seed=7)
    aisle("cloud", "init", str(tmp / "cloud"), env=cenv)
    ccfg = str(tmp / "cloud" / "cloud.toml")
    aisle("cloud", "import-catalog", str(catalog.path), "--config", ccfg, env=cenv)
    code = aisle("cloud", "add-store", "S001", "--config", ccfg, env=cenv).split()[-1]
    store = tmp / "store"
    aisle("edge", "init", str(store), "--store-id", "S001")
    ecfg = str(store / "edge.toml")
    aisle("edge", "import-catalog", str(catalog.path), "--config", ecfg)
    token = aisle("edge", "pair", "--role", "kiosk", "--config", ecfg).split()[-1]
    restricted = set(catalog.age_restricted_barcodes)
    codes = [c for c in catalog.barcodes if c not in restricted]
    cport = free_port()
    with Server("cloud", _serve("cloud", ccfg, cport), {**os.environ, **cenv}, cport):
        aisle(
            "edge",
            "enroll",
            "--cloud",
            f"http://127.0.0.1:{cport}",
            "--code",
            code,
            "--config",
            ecfg,
        )
        eport = free_port()
        with Server("store", _serve("edge", ecfg, eport), _edge_env(), eport):
            member_codes = []
            with requests.Session() as http:
                http.headers["Authorization"] = f"Bearer {token}"
                for i in range(members):
                    r = http.post(
                        f"http://127.0.0.1:{eport}/api/v1/members",
                        json={"phone": PHONES % i},
                        timeout=10,
                    )
                    r.raise_for_status()
                    assert r.json()["provisional"] is False, "the cloud did not register them"
                    member_codes.append(r.json()["code"])
    return {
        "ccfg": ccfg,
        "ecfg": ecfg,
        "token": token,
        "codes": codes,
        "members": member_codes,
        "cenv": cenv,
        "cport": cport,  # the store is enrolled with the cloud on this port
    }


def _serve(side: str, config: str, port: int) -> list[str]:
    return [*serve_cmd(side, config), "--port", str(port)]


def _edge_env() -> dict[str, str]:
    return {**os.environ, "AISLE_PAYMENTS__LATENCY_MS": "0"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="sales a second in all")
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--duration", type=float, default=150.0, help="seconds measured a row")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rows", type=int, default=3, help="rows with the cloud stopped")
    parser.add_argument("--pg-url", default=os.environ.get("AISLE_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "devices": args.devices,
        "rate": args.rate,
        "items": args.items,
        "members": args.members,
        "runs": {},
    }
    with own_database(args.pg_url) as url, tempfile.TemporaryDirectory() as tmp_name:
        began = time.monotonic()
        fx = _setup(Path(tmp_name), url, args.members)
        log(
            f"cloud and store ready, {args.members} members signed up "
            f"({time.monotonic() - began:.0f} s)"
        )
        cport = fx["cport"]
        eport = free_port()
        cloud = Server(
            "cloud", _serve("cloud", fx["ccfg"], cport), {**os.environ, **fx["cenv"]}, cport
        )
        with Server("store", _serve("edge", fx["ecfg"], eport), _edge_env(), eport):
            # The cloud answers for the first row (each lookup asks it first; the store pushes
            # its sales meanwhile, as in trading) and is stopped for the others, where the
            # store answers every lookup from its own copy: the cached lookup.
            cloud.__enter__()
            try:
                result["runs"]["cloud up"] = _one("cloud up", eport, fx, args)
            finally:
                cloud.__exit__(None, None, None)
            for n in range(1, args.rows + 1):
                result["runs"][f"cloud stopped {n}"] = _one(f"cloud stopped {n}", eport, fx, args)
    runs = result["runs"]
    sales = {name: run.pop("sale_seconds") for name, run in runs.items()}
    cached = [f"cloud stopped {n}" for n in range(1, args.rows + 1)]
    pooled = {how: summarize([x for row in cached for x in sales[row][how]]) for how in KINDS}
    result["cached_lookup"] = {
        "rows": len(cached),
        "pooled": pooled,
        **{
            f"{how}_adds_to_sale_p99_ms": pooled[how]["p99_ms"] - pooled["none"]["p99_ms"]
            for how in KINDS[1:]
        },
        **{
            f"{how}_adds_to_sale_p50_ms": pooled[how]["p50_ms"] - pooled["none"]["p50_ms"]
            for how in KINDS[1:]
        },
        **{
            f"{how}_adds_to_sale_p99_ms_by_row": [
                runs[row]["kinds"][how]["sale"]["p99_ms"]
                - runs[row]["kinds"]["none"]["sale"]["p99_ms"]
                for row in cached
            ]
            for how in KINDS[1:]
        },
    }
    pooled_sales = {how: [x for row in cached for x in sales[row][how]] for how in KINDS}
    for how in KINDS[1:]:
        low, high = bootstrap_interval(pooled_sales[how], pooled_sales["none"], 99)
        result["cached_lookup"][f"{how}_adds_to_sale_p99_ms_90pct_interval"] = [low, high]
    log(f"cached lookup over {len(cached)} rows: {result['cached_lookup']}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"member-checkout-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=1))
    log(f"results in {path}")
    return 0


def bootstrap_interval(
    a: list[float], b: list[float], q: float, *, rounds: int = 1000, seed: int = 11
) -> tuple[float, float]:
    """The 90% bootstrap interval (ms) of the ``q``-th percentile of ``a`` less that of ``b``:
    how far the difference measured could move with other sales drawn from the same run."""
    rng = random.Random(seed)
    diffs = sorted(
        percentile(sorted(rng.choices(a, k=len(a))), q)
        - percentile(sorted(rng.choices(b, k=len(b))), q)
        for _ in range(rounds)
    )
    return diffs[int(rounds * 0.05)] * 1000, diffs[int(rounds * 0.95)] * 1000


def _one(name: str, port: int, fx: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    run = asyncio.run(
        run_sales(
            f"http://127.0.0.1:{port}",
            fx["token"],
            fx["codes"],
            members=fx["members"],
            devices=args.devices,
            rate=args.rate,
            warmup=args.warmup,
            duration=args.duration,
            items=args.items,
        )
    )
    for how in KINDS:
        kind = run["kinds"][how]
        log(
            f"{name}, member {how}: sale p50 {kind['sale']['p50_ms']:.1f} "
            f"p99 {kind['sale']['p99_ms']:.1f} ms ({kind['sale']['count']} sales); "
            + ", ".join(
                f"{k} p50 {kind[k]['p50_ms']:.1f} p99 {kind[k]['p99_ms']:.1f} ms"
                for k in ("cart", "scan", "member", "pay")
                if k in kind
            )
        )
    log(
        f"{name}: {run['sales_per_s']:.1f} sales/s; failures {run['failures']}, "
        f"skipped {run['skipped']}, reconnects {run['reconnects']}"
    )
    return run


if __name__ == "__main__":
    raise SystemExit(main())
