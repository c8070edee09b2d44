"""Scan-to-cart and checkout benchmarks at 32 devices, with a bare Flask + sqlite3 floor.

``make bench`` runs this (about 4.5 minutes). It builds a store in a temporary directory with the
real command line (``aisle edge init``, ``import-catalog`` of the 2,400-product demo catalog,
``pair --role kiosk``), serves it with ``aisle edge serve`` (granian and the store's gateway, the
defaults of 2 workers x 8 threads, payment latency 0) on 127.0.0.1, and measures:

a. scan-to-cart: 32 devices, each with an open cart, POST scans into it; a new cart every 20
   scans (``wrk`` + Lua when installed, else the asyncio client; see ``bench/loadgen.py``);
b. checkout: 32 devices, each looping create cart, scan 5 items, pay cash (asyncio client);
c. server RSS: VmRSS summed over the server's master and workers, sampled every 0.25 s during
   load (max), with PSS beside it; server CPU (cores) in the measured window; and the CPU other
   processes on the machine used meanwhile, so a disturbed run shows;
d. the floor: ``bench/floor_app.py`` (Flask + stdlib sqlite3, WAL, synchronous=FULL, the same
   statements, writers queued like edge/db.py) under the same server (``serve_floor.py``);
   our ratio to it.

Then a quick sweep of the scan test over workers x threads, waitress, and two floor
variants (SQLite's own busy handler; cart edits at synchronous=NORMAL); an in-process cost
breakdown (``bench/profile_inprocess.py``: CPU and write-lock hold per request, cProfile); the
same tests against ``bench/instrumented_edge.py`` (lock wait / lock held / service time inside
the workers); and, when ``py-spy`` is installed in the venv, a sampling profile of one worker.
Every server run starts from a fresh copy of the same store. Prints markdown tables and writes
JSON (and the markdown) to ``bench/results/``.

Options worth knowing: ``--code HEAD`` benchmarks a commit (extracted read-only with ``git
archive``) instead of the work tree; ``--wait-quiet 60`` waits for other processes to go quiet
before each test; ``--no-main --repeat 3 --sweep-duration 10`` for a steadier sweep;
``--no-sweep``, ``--no-profile``, ``--no-pyspy``, ``--duration``, ``--warmup``.

This file is the entry point; ``processes.py`` starts, samples and stops the servers,
``servers.py`` builds the store and names the servers compared, ``workloads.py`` runs the tests
and profiles, ``report.py`` writes the headlines and tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
from processes import (  # noqa: E402
    FINGERPRINTS,
    code_fingerprint,
    log,
    machine,
    use_code_snapshot,
    workdir,
)
from report import TARGETS, report  # noqa: E402
from servers import (  # noqa: E402
    PROD_THREADS,
    PROD_WORKERS,
    SWEEP_KINDS,
    Fixture,
    edge_server,
    floor_server,
    sweep_server,
)
from workloads import (  # noqa: E402
    diagnose,
    import_rss,
    inprocess_profile,
    one_server,
    pyspy_profiles,
)

RESULTS = BENCH / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--sweep-duration", type=float, default=5)
    parser.add_argument("--sweep-warmup", type=float, default=2)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument(
        "--promotions",
        type=int,
        default=0,
        help="promotions of every kind the store holds (bench/promotion_mix.py); 0: none",
    )
    parser.add_argument("--no-main", action="store_true", help="skip the 20 s main tests")
    parser.add_argument("--repeat", type=int, default=1, help="run the sweep N times")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each test wait up to S seconds for other processes to use < 0.25 cores",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip both profiles")
    parser.add_argument("--no-pyspy", action="store_true", help="skip the py-spy profiles")
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio client for scans")
    parser.add_argument(
        "--code",
        metavar="REV",
        help="benchmark the committed code of git revision REV (e.g. HEAD), extracted with "
        "git archive, instead of the work tree (which may change during a run)",
    )
    parser.add_argument(
        "--sweep",
        default="aisle:2x4,aisle:2x8,aisle:3x4,aisle:3x8,aisle:4x8,aisle:1x8,waitress:1x8,"
        "floor-busy:2x8,floor-normal:2x8",
        help="comma list of SERVER:WORKERSxTHREADS; SERVER is one of " + ", ".join(SWEEP_KINDS),
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    if not loadgen.wrk_available() and not args.no_wrk:
        log("wrk not found (Debian: apt-get install -y wrk); scans use the asyncio client")

    with workdir() as tmp:
        if args.code:
            log(f"benchmarking git {args.code} = {use_code_snapshot(args.code, tmp)} (archive)")
        FINGERPRINTS.append(code_fingerprint())
        res: dict[str, Any] = {
            "machine": machine(),
            "connections": args.connections,
            "duration": args.duration,
            "warmup": args.warmup,
            "promotions": args.promotions,
            "targets": TARGETS,
        }
        log(f"setting up the store in {tmp}")
        fx = Fixture(tmp, promotions=args.promotions)
        res["fixture"] = {
            "import": fx.import_line,
            "scan_codes": fx.n_scan_codes,
            "age_restricted_in_scan_codes": fx.n_restricted,
        }
        w, t = PROD_WORKERS, PROD_THREADS
        if not args.no_main:
            res["edge"] = one_server(
                fx,
                lambda d, p: edge_server(d, p, w, t),
                ["scan", "checkout", "pay"],
                args,
                args.warmup,
                args.duration,
            )
            res["floor"] = one_server(
                fx,
                lambda d, p: floor_server(d, p, w, t),
                ["scan", "checkout", "pay"],
                args,
                args.warmup,
                args.duration,
            )
        if not args.no_sweep:
            res["sweep_duration"], res["sweep_warmup"] = args.sweep_duration, args.sweep_warmup
            res["sweep"] = []
            items = [i for i in args.sweep.split(",") if i]
            if importlib.util.find_spec("waitress") is None:
                skipped = [i for i in items if "waitress" in i]
                if skipped:
                    log(f"waitress is not installed (pip install waitress): skipping {skipped}")
                items = [i for i in items if "waitress" not in i]
            for rep in range(args.repeat):  # interleaved, so drift hits every setting alike
                for item in items:
                    kind, shape = item.split(":")
                    sw, st = (int(x) for x in shape.split("x"))
                    make, name = sweep_server(kind, sw, st)
                    r = one_server(fx, make, ["scan"], args, args.sweep_warmup, args.sweep_duration)
                    res["sweep"].append(
                        {
                            "kind": kind,
                            "server": name,
                            "shape": f"{sw} x {st}",
                            "repeat": rep,
                            "result": r["scan"],
                        }
                    )
        if not args.no_profile:
            log("in-process cost breakdown (profile_inprocess.py)")
            res["inprocess"] = inprocess_profile(fx)
            res["import_rss"] = import_rss(fx)
            res["diagnosis"] = diagnose(fx, args)
            if not args.no_pyspy:
                res["pyspy"] = pyspy_profiles(fx, args)
        FINGERPRINTS.append(code_fingerprint())
    res["code_fingerprints"] = sorted(set(FINGERPRINTS))
    res["edge_changed_during_run"] = len(set(FINGERPRINTS)) > 1
    res["elapsed_s"] = time.monotonic() - started
    text = report(res)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"checkout-bench-{stamp}.json"
    path.write_text(json.dumps(res, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(res, indent=2))
    (RESULTS / "latest.md").write_text(text + "\n")
    log(f"done in {res['elapsed_s']:.0f} s; results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
