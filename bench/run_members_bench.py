"""Member lookups at the cloud: a million members on PostgreSQL, looked up by phone under load.

1. Creates a database of its own on the PostgreSQL server (``--pg-url``, by default the one at
   127.0.0.1:5432), migrates it, and dropped it at the end (the server itself is left alone).
2. Writes ``--members`` members (default 1,000,000) as the registry writes them: the phone
   normalised to E.164, sealed with AES-GCM under the cloud's keyring, found by its HMAC blind
   index; each with one sale's earned points (an entry and its lot), by ``COPY``, then
   ``ANALYZE`` as autovacuum would.
3. Serves the cloud (``aisle cloud serve``, ``--workers`` processes) on that database and keyring.
4. ``wrk``, closed loop, ``--connections`` connections for ``--duration`` seconds after a warm-up:
   ``GET /api/v1/members?phone=<a random member's phone, typed as a cashier would>`` with an HQ
   token. Each answer is the member, its phone masked, its balance (the sum of its entries) and
   what is free (less live holds): the work of a store's online lookup at checkout.

Reports lookups/s, latency percentiles and non-2xx answers; the result JSON goes to
``bench/results/``. The target (DESIGN.md): at least 1,000 lookups/s with 1,000,000 members.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from processes import Server, cpu_probe, free_port  # noqa: E402
from run_ingest_scale_bench import DEFAULT_PG, own_database  # noqa: E402

WRK_LUA = """
local token, count = nil, 0
function init(args)
  token = args[1]
  count = tonumber(args[2])
  math.randomseed(os.time() + tonumber(string.sub(tostring({}), -6), 16))
end
function request()
  local i = math.random(0, count - 1)
  local phone = string.format("139%08d", i)
  return wrk.format("GET", "/api/v1/members?phone=" .. phone,
                    {["Authorization"] = "Bearer " .. token})
end
"""


def log(msg: str) -> None:
    print(f"[members-bench {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def phone_of(i: int) -> str:
    return f"+86139{i:08d}"


def load_members(url: str, keyring_path: Path, count: int) -> None:
    """``count`` members and one lot each, written as the registry and the ledger write them."""
    import psycopg
    from sqlalchemy.engine import make_url

    from shared.ids import new_id
    from shared.member_codes import new_member_code
    from shared.pii import Keyring

    keyring = Keyring.load_or_create(keyring_path)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    now = datetime.now(UTC)
    began = time.monotonic()
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY members (id, code, phone_index, phone_sealed, status, tier, store_id, channel, "
            "created_at, registered_at, updated_at) FROM STDIN"
        ) as copy:
            ids = []
            for i in range(count):
                member_id = new_id()
                ids.append(member_id)
                phone = phone_of(i)
                copy.write_row(
                    (
                        member_id,
                        new_member_code(),
                        keyring.blind_index("phone", phone),
                        keyring.seal(phone, context=f"member:{member_id}:phone"),
                        "active",
                        "basic",
                        "S001",
                        "store",
                        now,
                        now,
                        now,
                    )
                )
        log(f"{count:,} members written in {time.monotonic() - began:.0f} s")
        with cur.copy(
            "COPY points_entries (id, member_id, recorded_member_id, kind, points, spend, "
            "origin_kind, origin_id, store_id, created_at, recorded_at) FROM STDIN"
        ) as copy:
            for n, member_id in enumerate(ids, start=1):
                copy.write_row(
                    (
                        n,
                        member_id,
                        member_id,
                        "earn",
                        100,
                        10_000,
                        "sale",
                        str(uuid.uuid4()),
                        "S001",
                        now,
                        now,
                    )
                )
        with cur.copy(
            "COPY points_lots (id, member_id, entry_id, points, remaining, created_at, "
            "expires_at) FROM STDIN"
        ) as copy:
            expires = now + timedelta(days=365)
            for n, member_id in enumerate(ids, start=1):
                copy.write_row((n, member_id, n, 100, 100, now, expires))
        cur.execute("SELECT setval('points_entries_id_seq', %s)", (count,))
        cur.execute("SELECT setval('points_lots_id_seq', %s)", (count,))
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE")
    log(f"{count:,} members with their points loaded in {time.monotonic() - began:.0f} s")


def run_wrk(url: str, token: str, count: int, connections: int, duration: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "lookup.lua"
    script.write_text(WRK_LUA)
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "-s",
            str(script),
            url,
            "--",
            token,
            str(count),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shutil.rmtree(script.parent, ignore_errors=True)

    def ms(text: str) -> float:
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    percentiles = {
        p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
        "raw": out,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pg-url", default=os.environ.get("AISLE_TEST_POSTGRES_URL", DEFAULT_PG))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    from cloud.db import Database
    from cloud.migrations import upgrade
    from cloud.stores.service import issue_token

    aisle = [sys.executable, "-m", "aisle"]
    results: dict = {"machine_cpu_probe_ms": cpu_probe(), "members": args.members, "runs": []}
    with own_database(args.pg_url) as url, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hq"
        subprocess.run(
            [*aisle, "cloud", "init", str(root), "--database-url", url],
            check=True,
            capture_output=True,
        )
        db = Database.open(url)
        upgrade(db.writer)
        load_members(url, root / "members.keys", args.members)
        token = issue_token(db, role="hq", name="bench", now=datetime.now(UTC))
        db.dispose()
        port = free_port()
        cmd = [
            *aisle,
            "cloud",
            "serve",
            "--config",
            str(root / "cloud.toml"),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        with Server("cloud", cmd, dict(os.environ), port):
            base = f"http://127.0.0.1:{port}"
            run_wrk(base, token, args.members, max(args.connections), args.warmup)
            for connections in args.connections:
                run = run_wrk(base, token, args.members, connections, args.duration)
                log(
                    f"{connections} connections: {run['requests_per_s']:,.0f} lookups/s, "
                    f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, non-2xx {run['non_2xx']}"
                    f"{', socket errors ' + run['socket_errors'] if run['socket_errors'] else ''}"
                )
                results["runs"].append({k: v for k, v in run.items() if k != "raw"})
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"members-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(results, indent=1))
    log(f"results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
