"""The checkout benchmark's report: one-line headlines while it runs, markdown tables at the end.

Everything here reads the results dictionary the benchmark writes to JSON; nothing measures.
"""

from __future__ import annotations

from typing import Any

from servers import PROD_THREADS, PROD_WORKERS

TARGETS = {"scans_per_s": 800, "scan_p99_ms": 50, "sales_per_s": 200, "rss_mb": 150}


def headline(r: dict[str, Any]) -> str:
    if "sales_per_s" in r:
        return (
            f"{r['sales_per_s']:.1f} sales/s, checkout p99 {r['checkout_p99_ms']:.1f} ms, "
            f"errors {r['errors']}, server CPU {fmt(r['server']['cpu_cores'], 2)} cores, "
            f"other load {fmt(other_load(r), 2)} cores"
        )
    return (
        f"{r['scans_per_s']:.1f} scans/s, p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f} ms, "
        f"connections per process {split_text(r)}, "
        f"errors {r['errors']}, server CPU {fmt(r['server']['cpu_cores'], 2)} cores, "
        f"other load {fmt(other_load(r), 2)} cores"
    )


def split_text(r: dict[str, Any]) -> str:
    split = r.get("server", {}).get("connections_by_process")
    return "/".join(str(n) for n in split) if split else "n/a"


def other_load(r: dict[str, Any]) -> float | None:
    return r.get("machine", {}).get("other_cores")


def headline_plain(r: dict[str, Any]) -> str:
    if "sales_per_s" in r:
        return f"{r['sales_per_s']:.1f} sales/s, {r['errors']} errors (profiler attached)"
    return f"{r['scans_per_s']:.1f} scans/s, {r['errors']} errors (profiler attached)"


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}; Python {m['python']}; "
        f"HEAD {m['commit']} (work tree edge/sync/aisle: {m['worktree_edge_sync_aisle']}); "
        f"code under test: {m['code_under_test']}; {m['date_utc']}; load average at start "
        f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}; elapsed "
        f"{res['elapsed_s']:.0f} s",
    ]
    if "edge" in res:
        lines += main_tables(res)
    if res.get("sweep"):
        lines += sweep_table(res)
    if res.get("inprocess"):
        lines += inprocess_tables(res["inprocess"])
    if res.get("diagnosis"):
        lines += diagnosis_table(res["diagnosis"])
    if res.get("import_rss"):
        lines += [
            "",
            "Memory of one process building the app step by step (bench/import_rss.py):",
            "",
            "| step | VmRSS MB | added MB |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['step']} | {r['rss_mb']:.1f} | {r['added_mb']:+.1f} |" for r in res["import_rss"]
        ]
    if res.get("pyspy"):
        lines += pyspy_tables(res["pyspy"])
    if res.get("edge_changed_during_run"):
        lines += [
            "",
            "**Warning: files under edge/, sync/ or aisle/ changed while this ran** "
            "(edits during the run); servers started at different times ran different code. "
            "Use --code HEAD to benchmark a fixed commit.",
        ]
    return "\n".join(lines)


def main_tables(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    edge, floor = res["edge"], res["floor"]
    es, ec, fs, fc = edge["scan"], edge["checkout"], floor["scan"], floor["checkout"]
    ep, fp = edge["pay"], floor["pay"]
    rss = max(r["server"]["rss_max_mb"] or 0 for r in (es, ec, ep))
    frss = max(r["server"]["rss_max_mb"] or 0 for r in (fs, fc, fp))
    pss = max(r["server"]["pss_max_mb"] or 0 for r in (es, ec, ep))
    fpss = max(r["server"]["pss_max_mb"] or 0 for r in (fs, fc, fp))
    per_proc = max(max(r["server"].get("rss_mb_by_process_at_max") or [0]) for r in (es, ec, ep))
    ek, fk = ec["by_kind"].get("checkout", {}), fc["by_kind"].get("checkout", {})
    by_proc = " + ".join(f"{x:.1f}" for x in es["server"].get("rss_mb_by_process_at_max", []))
    lines = [
        f"Config: aisle edge serve (granian + gateway), {PROD_WORKERS} workers x "
        f"{PROD_THREADS} threads "
        f"(edge.toml defaults), {res['connections']} connections, "
        f"{res['warmup']:g} s warm-up + {res['duration']:g} s measured; scan load: "
        f"{es['tool']}; checkout load: asyncio client.",
        "",
        "| test | target | Aisle | floor (Flask + sqlite3, writers queued, all FULL) "
        "| Aisle / floor | verdict |",
        "|---|---|---|---|---|---|",
        f"| scans/s | >= {TARGETS['scans_per_s']} | {es['scans_per_s']:.1f} | "
        f"{fs['scans_per_s']:.1f} | {es['scans_per_s'] / fs['scans_per_s']:.2f} | "
        f"{verdict(es['scans_per_s'] >= TARGETS['scans_per_s'])} |",
        f"| scan p50 / p90 / p99 ms | p99 < {TARGETS['scan_p99_ms']} | "
        f"{es['p50_ms']:.1f} / {es['p90_ms']:.1f} / {es['p99_ms']:.1f} | "
        f"{fs['p50_ms']:.1f} / {fs['p90_ms']:.1f} / {fs['p99_ms']:.1f} | "
        f"p99 x{es['p99_ms'] / fs['p99_ms']:.2f} | "
        f"{verdict(es['p99_ms'] < TARGETS['scan_p99_ms'])} |",
        f"| scan errors (non-2xx + socket) | 0 | {es['errors']} | {fs['errors']} | | "
        f"{verdict(es['errors'] == 0)} |",
        f"| sales/s (create + 5 scans + checkout) | >= {TARGETS['sales_per_s']} | "
        f"{ec['sales_per_s']:.1f} | {fc['sales_per_s']:.1f} | "
        f"{ec['sales_per_s'] / fc['sales_per_s']:.2f} | "
        f"{verdict(ec['sales_per_s'] >= TARGETS['sales_per_s'])} |",
        f"| checkouts/s (paying ready 5-item carts) | >= {TARGETS['sales_per_s']} | "
        f"{ep['sales_per_s']:.1f} | {fp['sales_per_s']:.1f} | "
        f"{ep['sales_per_s'] / fp['sales_per_s']:.2f} | "
        f"{verdict(ep['sales_per_s'] >= TARGETS['sales_per_s'])} |",
        f"| checkout p50 / p90 / p99 ms (paying ready carts) | | "
        f"{ep['p50_ms']:.1f} / {ep['p90_ms']:.1f} / {ep['p99_ms']:.1f} | "
        f"{fp['p50_ms']:.1f} / {fp['p90_ms']:.1f} / {fp['p99_ms']:.1f} | | |",
        f"| checkout errors (paying ready carts) | 0 | {ep['errors']} | {fp['errors']} | | "
        f"{verdict(ep['errors'] == 0)} |",
        f"| checkout request p50 / p99 ms (in the loop) | | "
        f"{fmt(ek.get('p50_ms'))} / {fmt(ec['checkout_p99_ms'])} | "
        f"{fmt(fk.get('p50_ms'))} / {fmt(fc['checkout_p99_ms'])} | | |",
        f"| checkout-flow requests/s (all kinds) | | {ec['requests_per_s']:.1f} | "
        f"{fc['requests_per_s']:.1f} | {ec['requests_per_s'] / fc['requests_per_s']:.2f} | |",
        f"| checkout-flow errors | 0 | {ec['errors']} | {fc['errors']} | | "
        f"{verdict(ec['errors'] == 0)} |",
        f"| server RSS max MB (sum of master + workers) | | {rss:.1f} | {frss:.1f} | | |",
        f"| largest single process RSS MB | < {TARGETS['rss_mb']} | {per_proc:.1f} | | | "
        f"{verdict(per_proc < TARGETS['rss_mb'])} |",
        f"| server RSS at the scan peak, master + workers MB | | {by_proc} | | | |",
        f"| client connections per worker, mid-test, scans / checkouts | | "
        f"{split_text(es)} / {split_text(ec)} | {split_text(fs)} / {split_text(fc)} | | |",
        f"| server PSS max MB (shared pages counted once) | < {TARGETS['rss_mb']} | {pss:.1f} | "
        f"{fpss:.1f} | | {verdict(pss < TARGETS['rss_mb'])} |",
        f"| server CPU during scans / checkouts (cores of {m['nproc']}) | | "
        f"{fmt(es['server']['cpu_cores'], 2)} / {fmt(ec['server']['cpu_cores'], 2)} | "
        f"{fmt(fs['server']['cpu_cores'], 2)} / {fmt(fc['server']['cpu_cores'], 2)} | | |",
        f"| load generator CPU, scans / checkouts (cores) | | "
        f"{es['client_cpu_share']:.2f} / {ec['client_cpu_share']:.2f} | "
        f"{fs['client_cpu_share']:.2f} / {fc['client_cpu_share']:.2f} | | |",
        f"| CPU probe before the test, scans / checkouts (ms, lower = faster host) | | "
        f"{fmt(es.get('cpu_probe_ms'))} / {fmt(ec.get('cpu_probe_ms'))} | "
        f"{fmt(fs.get('cpu_probe_ms'))} / {fmt(fc.get('cpu_probe_ms'))} | | |",
        f"| other processes on the machine, scans / checkouts (cores) | 0 | "
        f"{fmt(other_load(es), 2)} / {fmt(other_load(ec), 2)} | "
        f"{fmt(other_load(fs), 2)} / {fmt(other_load(fc), 2)} | | |",
        "",
        "Checkout flow, per request type:",
        "",
        "| app | request | count | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for app, r in (("Aisle", ec), ("floor", fc)):
        for kind in ("create", "scan", "checkout"):
            k = r["by_kind"].get(kind)
            if k:
                lines.append(
                    f"| {app} | {kind} | {k['count']} | {k['p50_ms']:.1f} | {k['p90_ms']:.1f} | "
                    f"{k['p99_ms']:.1f} | {k['max_ms']:.1f} |"
                )
    return lines


def sweep_table(res: dict[str, Any]) -> list[str]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    names: dict[tuple[str, str], str] = {}
    for row in res["sweep"]:
        key = (row["kind"], row["shape"])
        groups.setdefault(key, []).append(row["result"])
        names[key] = row["server"]
    reps = max(len(v) for v in groups.values())
    lines = [
        "",
        f"Scan test by server and settings ({res['sweep_warmup']:g} s warm-up + "
        f"{res['sweep_duration']:g} s each, fresh store each"
        + (f"; {reps} interleaved runs each, mean [min - max]" if reps > 1 else "")
        + "):",
        "",
        "| server | workers x threads | scans/s | p50 ms | p99 ms | errors | server CPU cores "
        "| other load cores | RSS max MB | connections per worker | CPU probe ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def span(values: list[float], digits: int = 1) -> str:
        mean = sum(values) / len(values)
        if len(values) == 1:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} [{min(values):.{digits}f} - {max(values):.{digits}f}]"

    for key, rs in groups.items():
        lines.append(
            f"| {names[key]} | {key[1]} | {span([r['scans_per_s'] for r in rs])} | "
            f"{span([r['p50_ms'] for r in rs])} | {span([r['p99_ms'] for r in rs])} | "
            f"{sum(r['errors'] for r in rs)} | "
            f"{span([r['server']['cpu_cores'] or 0 for r in rs], 2)} | "
            f"{span([other_load(r) or 0 for r in rs], 2)} | "
            f"{max(r['server']['rss_max_mb'] or 0 for r in rs):.1f} | "
            f"{', '.join(split_text(r) for r in rs)} | "
            f"{span([r.get('cpu_probe_ms', 0) for r in rs])} |"
        )
    same = groups.get(("aisle", f"{PROD_WORKERS} x {PROD_THREADS}"))
    normal = groups.get(("floor-normal", f"{PROD_WORKERS} x {PROD_THREADS}"))
    if same and normal:
        a = sum(r["scans_per_s"] for r in same) / len(same)
        b = sum(r["scans_per_s"] for r in normal) / len(normal)
        lines += [
            "",
            f"Aisle / floor with cart edits at synchronous=NORMAL (as Aisle commits them), "
            f"{PROD_WORKERS} x {PROD_THREADS}, same sweep settings: {a / b:.2f} "
            f"(scans/s {a:.1f} vs {b:.1f}).",
        ]
    return lines


def inprocess_tables(ip: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "One request at a time, in process (Flask test client, no server, no contention):",
        "",
        "| app | request | wall ms | CPU ms | write lock held ms | cap = 1 / lock held "
        "| cap from CPU on 2 cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for app in ("edge", "floor"):
        for kind in ("scan", "checkout"):
            r = ip[app][kind]
            held, cap = r.get("lock_ms_per_request"), r.get("lock_cap_per_s")
            note = ""
            if held is None:  # no write lock in this version: the SQLAlchemy transaction
                held, cap, note = r.get("txn_ms_per_request"), r.get("txn_cap_per_s"), " (txn)"
            lines.append(
                f"| {'Aisle' if app == 'edge' else 'floor'} | {kind} | "
                f"{r['wall_ms_mean']:.2f} | {r['cpu_ms_mean']:.2f} | {fmt(held, 2)}{note} | "
                f"{fmt(cap, 0)}/s | {2 * r['max_rate_one_core_per_s']:.0f}/s |"
            )
    for kind in ("scan", "checkout"):
        prof = ip["edge"][kind].get("profile")
        if not prof:
            continue
        layers = ", ".join(f"{k} {v}%" for k, v in list(prof["by_layer_pct"].items())[:8])
        lines += [
            "",
            f"cProfile of Aisle {kind} (times inflated by the profiler), own time by "
            f"layer: {layers}",
            "",
            "| edge/sync function | cumulative us/request | % |",
            "|---|---|---|",
        ]
        for row in prof["top_edge_cumulative"][:12]:
            lines.append(
                f"| `{row['function']}` | {row['cum_us_per_req']:.0f} | {row['cum_pct']} |"
            )
        lines += ["", "| any function, own time | us/request | % | calls/request |"]
        lines += ["|---|---|---|---|"]
        for row in prof["top_self"][:12]:
            lines.append(
                f"| `{row['function']}` | {row['self_us_per_req']:.0f} | "
                f"{row['self_pct']} | {row['calls_per_req']} |"
            )
    return lines


def diagnosis_table(diag: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Inside the server under load (bench/instrumented_edge.py, {PROD_WORKERS} x "
        f"{PROD_THREADS}, same tests; service = time inside the app; lock = the store's "
        "write lock):",
        "",
        "| test | request | count | client p50 ms | service p50 / p99 ms | CPU ms/request "
        "| lock wait p50 / p99 ms | lock held mean / p99 ms | lock busy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for test, dres in diag.items():
        for kind, k in dres["kinds"].items():
            if kind == "other":
                continue
            lines.append(
                f"| {test} | {kind} | {k['count']} | {fmt(k['client_p50_ms'])} | "
                f"{fmt(k['service_p50_ms'])} / {fmt(k['service_p99_ms'])} | "
                f"{k['cpu_ms_mean']:.2f} | {fmt(k['lock_wait_p50_ms'])} / "
                f"{fmt(k['lock_wait_p99_ms'])} | {fmt(k['lock_held_mean_ms'], 2)} / "
                f"{fmt(k['lock_held_p99_ms'])} | {dres['lock_busy_share'] * 100:.0f}% |"
            )
    return lines


def pyspy_tables(spy: dict[str, Any]) -> list[str]:
    if "skipped" in spy:
        return ["", f"py-spy: {spy['skipped']}"]
    lines: list[str] = []
    for name, prof in spy.items():
        if "error" in prof:
            lines += ["", f"py-spy {name}: error {prof['error']}"]
            continue
        lines += [
            "",
            f"py-spy `{name}` (one worker, {prof['samples']} samples at 100 Hz, "
            f"{prof['load_during_profile']}):",
            "",
            "| where threads were (leaf frame) | % | edge/sync function, inclusive | % |",
            "|---|---|---|---|",
        ]
        for (k1, v1), (k2, v2) in zip(
            prof["leaf_with_line"][:12], prof["inclusive_edge"][:12], strict=False
        ):
            lines.append(f"| `{k1}` | {v1} | `{k2}` | {v2} |")
    return lines
