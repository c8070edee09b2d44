"""Scan throughput with and without promotions (``make bench-promotions-scan``).

Two copies of the ``make bench`` store (the 2,400-product demo catalog, ``aisle edge serve`` with
its default 2 workers x 8 threads): one with no promotions, one holding ``--promotions`` of
every kind over the catalog (``bench/promotion_mix.py``), as its pull would have written them.
The saturated scan test of ``make bench`` (32 devices scanning into open carts, a new cart every
20 scans) runs against each, alternating, ``--rounds`` times, so the host's drift falls on both
alike; each row starts from a fresh copy. Prints every row and the ratio of the medians.

Saturated throughput on a shared 2-core VM moves by a third from one minute to the next (the
load generator shares the cores, and the host lends them out), so each row also counts the CPU
time the server's processes spent per scan (their utime + stime over the measured window, from
``/proc``): what a scan costs the server, which bounds its throughput on a machine of its own.
Both ratios are printed: of the medians of the throughputs, and of the medians of the CPU per
scan (without / with: the throughput ratio a CPU-bound server would show).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import median

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from processes import log, machine, workdir  # noqa: E402
from servers import PROD_THREADS, PROD_WORKERS, Fixture, edge_server  # noqa: E402
from workloads import one_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--promotions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=0)
    args = parser.parse_args()
    rows: dict[int, list[float]] = {0: [], args.promotions: []}
    cpu: dict[int, list[float]] = {0: [], args.promotions: []}  # server CPU ms per scan
    with workdir() as tmp:
        fixtures = {
            count: Fixture(tmp / f"p{count}", promotions=count) if count else Fixture(tmp / "p0")
            for count in rows
        }
        for n in range(args.rounds):
            for count, fx in fixtures.items():
                out = one_server(
                    fx,
                    lambda d, p: edge_server(d, p, PROD_WORKERS, PROD_THREADS),
                    ["scan"],
                    args,
                    args.warmup,
                    args.duration,
                )["scan"]
                rows[count].append(float(out["scans_per_s"]))
                cores = out["server"]["cpu_cores"]
                if cores is not None and out["scans_per_s"]:
                    cpu[count].append(float(cores) * 1000 / float(out["scans_per_s"]))
                log(
                    f"round {n + 1}, {count} promotions: {out['scans_per_s']:.1f} scans/s, "
                    f"server CPU {cpu[count][-1] if cpu[count] else float('nan'):.3f} ms/scan"
                )
    without, with_ = median(rows[0]), median(rows[args.promotions])
    cost = {k: round(median(v), 4) if v else None for k, v in cpu.items()}
    cost_without, cost_with = cost[0], cost[args.promotions]
    print(
        json.dumps(
            {
                "machine": machine(),
                "promotions": args.promotions,
                "scans_per_s": {str(k): v for k, v in rows.items()},
                "median_without": without,
                "median_with": with_,
                "ratio": round(with_ / without, 3),
                "server_cpu_ms_per_scan": {
                    str(k): [round(x, 4) for x in v] for k, v in cpu.items()
                },
                "median_cpu_ms_per_scan": {str(k): v for k, v in cost.items()},
                "cpu_ratio": None
                if not (cost_without and cost_with)
                else round(cost_without / cost_with, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
