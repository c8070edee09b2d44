"""A store full of devices: open-loop scans over hundreds of connections, with hostile clients.

``make bench-open-loop`` runs this. It builds the same store as ``run_checkout_bench.py``
(``aisle edge init``, the 2,400-product demo catalog, a paired kiosk), serves a fresh copy of it
with each serving model, and drives it with ``bench/open_loop.py``: requests on a fixed schedule
(latency counted from the scheduled send time), each device scanning 10-line carts.

Scenarios (each a row of the tables), for each server:

* ``conns``: 8, 32, 64, 256 and 500 device connections at 400 scans/s in all;
* ``flood``: 500 devices at 400 scans/s while 500 idle TCP connections (no bytes), 50 slowloris
  clients (one header byte every 5 s) and 50 slow bodies (whole headers, then a body byte every
  5 s) sit beside them, each reopened as soon as the server drops it.

The servers compared: the store's own ``aisle edge serve`` (granian + ``edge/http_gateway.py``)
and the bare Flask + sqlite3 floor (``bench/floor_app.py``) under it; and, for the record of how
the serving model was chosen, gunicorn gthread as the store ran before (16 connections a
worker) and with a large connection cap, granian's own WSGI mode without the gateway, and
waitress in two forked processes. Every server runs the same app on a fresh copy of the same
store. Prints markdown; writes JSON to ``bench/results/open-loop-*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import open_loop  # noqa: E402
from processes import Sampler, Server, free_port, log, machine, workdir  # noqa: E402
from servers import FLOOR_VARIANTS, Fixture, edge_serve_cmd  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = BENCH / "results"
RATE = 400.0
CONNS = (8, 32, 64, 256, 500)
FLOOD = {"connections": 500, "idle": 500, "slowloris": 50, "slowbody": 50}


def _store_env(d: Path, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        AISLE_PAYMENTS__LATENCY_MS="0",
        AISLE_CONFIG=str(d / "store" / "edge.toml"),
        FLOOR_DB=str(d / "floor.db"),
        **extra,
    )


def gunicorn_gthread(connections: int) -> Callable[[Path, int], Server]:
    """The store app under gunicorn's gthread worker, as ``aisle edge serve`` ran it before
    (2 workers x 8 threads, keep-alive 75 s), with ``connections`` a worker."""

    def make(d: Path, port: int) -> Server:
        cmd = [
            str(BIN / "gunicorn"),
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            "--threads",
            "8",
            "--keep-alive",
            "75",
            "--worker-connections",
            str(connections),
            "--timeout",
            "60",
            "--log-level",
            "warning",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(BENCH),
            "edge_wsgi:app()",
        ]
        name = f"gunicorn gthread 2x8, {connections} connections a worker"
        return Server(name, cmd, _store_env(d), port)

    return make


def granian_wsgi(d: Path, port: int) -> Server:
    """granian's own WSGI mode (2 workers x 8 blocking threads), without the store's gateway:
    headers are bounded, but the app reads the body on a request thread."""
    cmd = [
        str(BIN / "granian"),
        "--interface",
        "wsgi",
        "--workers",
        "2",
        "--blocking-threads",
        "8",
        "--http",
        "1",
        "--no-ws",
        "--http1-header-read-timeout",
        "10000",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--working-dir",
        str(BENCH),
        "--factory",
        "edge_wsgi:app",
    ]
    return Server("granian WSGI 2x8, no gateway", cmd, _store_env(d), port)


def waitress_prefork(d: Path, port: int) -> Server:
    """waitress (asyncore I/O, whole requests to 8 threads) in 2 forked processes."""
    cmd = [sys.executable, str(BENCH / "serve_waitress.py"), "--port", str(port), "--workers", "2"]
    return Server("waitress 2 processes x 8 threads", cmd, _store_env(d), port)


def aisle_serve(d: Path, port: int) -> Server:
    """The store as ``aisle edge serve`` runs it from the work tree."""
    return Server("aisle edge serve", edge_serve_cmd(d, port), _store_env(d), port)


def floor_serve(d: Path, port: int) -> Server:
    """The bare Flask + sqlite3 floor under the store's own server."""
    cmd = [sys.executable, str(BENCH / "serve_floor.py"), "--port", str(port)]
    env = _store_env(d, **FLOOR_VARIANTS["queue"])
    return Server("floor under aisle's server", cmd, env, port)


SERVERS: dict[str, Callable[[Path, int], Server]] = {
    "aisle": aisle_serve,
    "floor": floor_serve,
    "gthread-16": gunicorn_gthread(16),
    "gthread-2000": gunicorn_gthread(2000),
    "granian-wsgi": granian_wsgi,
    "waitress": waitress_prefork,
}


def one(
    fx: Fixture, make: Callable[[Path, int], Server], scenario: dict[str, Any], args: Any
) -> dict[str, Any]:
    d = fx.fresh()
    port = free_port()
    codes = [c for c in fx.scan_codes.read_text().split() if c]
    with make(d, port) as server:
        assert server.proc is not None
        sampler = Sampler(server.proc.pid, port)
        sampler.start()
        t0 = time.monotonic()
        out = open_loop.run_open_loop(
            f"http://127.0.0.1:{port}",
            fx.token,
            codes,
            rate=args.rate,
            duration=args.duration,
            warmup=args.warmup,
            timeout=args.timeout,
            **scenario,
        )
        t1 = time.monotonic()
        sampler.stop()
        out["server"] = sampler.window(t0, t1)
        out["server_name"] = server.name
    return out


def row(name: str, label: str, r: dict[str, Any]) -> str:
    a = r["all"]
    h = r.get("hostile", {})
    hostile = "; ".join(
        f"{k}: {v['closed_by_server']} dropped, kept up to {v['lifetime_max_s']} s"
        for k, v in sorted(h.items())
    )
    errs = sum(r["errors"].values())
    srv = r.get("server", {})
    return (
        f"| {name} | {label} | {r['achieved_per_s']} | {a.get('p50_ms')} | {a.get('p99_ms')} | "
        f"{a.get('max_ms')} | {errs} | {r['reconnects']} | {srv.get('rss_max_mb', 0):.0f} | "
        f"{hostile or '-'} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--conns", default=",".join(str(c) for c in CONNS))
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--no-flood", action="store_true")
    parser.add_argument(
        "--flood", default="", help="override the flood, e.g. idle=500,slowloris=50,slowbody=200"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    res: dict[str, Any] = {"machine": machine(), "rate": args.rate, "runs": []}
    lines = [
        "| server | scenario | answered/s | p50 ms | p99 ms | max ms | errors | reconnects | "
        "RSS MB | hostile clients |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with workdir() as tmp:
        log(f"setting up the store in {tmp}")
        fx = Fixture(tmp)
        scenarios: list[tuple[str, dict[str, Any]]] = [
            (f"{c} conns", {"connections": c}) for c in (int(x) for x in args.conns.split(",") if x)
        ]
        if not args.no_flood:
            flood = dict(FLOOD)
            for item in filter(None, args.flood.split(",")):
                key, _, value = item.partition("=")
                flood[key.strip()] = int(value)
            label = ", ".join(f"{v} {k}" for k, v in flood.items() if k != "connections")
            scenarios.append((f"{flood['connections']} conns + {label}", flood))
        for name in args.servers.split(","):
            for label, scenario in scenarios:
                log(f"{name}: {label} at {args.rate:.0f}/s")
                r = one(fx, SERVERS[name], scenario, args)
                res["runs"].append({"server": name, "scenario": label, "result": r})
                lines.append(row(name, label, r))
                log(lines[-1])
    res["elapsed_s"] = time.monotonic() - started
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"open-loop-{stamp}.json").write_text(json.dumps(res, indent=2))
    (RESULTS / "open-loop-latest.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
