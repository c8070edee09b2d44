"""Load generators for the store API: ``wrk`` for scans, a raw asyncio client for checkouts.

Both are closed-loop: N connections (one per device), each sends its next request as soon as the
previous answer arrives, over one keep-alive HTTP/1.1 connection.

* ``wrk`` (C, epoll; Debian package ``wrk``) drives the scan test with the Lua script below:
  each wrk thread keeps one open cart per connection it owns, POSTs scans round-robin over its
  carts and over the barcode list, and retires a cart after ``scans_per_cart`` scans, opening a
  new one with ``POST /api/v1/carts`` (the new id is read from the 201 answer). So about 1 request
  in ``scans_per_cart + 1`` is a cart creation, as on a real device.
* The asyncio client (stdlib only: ``asyncio.open_connection``, hand-written HTTP/1.1) drives the
  checkout flow, which needs each answer to build the next request: create a cart, scan
  ``--items`` items, read ``totals.total`` from the last answer, then pay it in cash with a
  unique ``Idempotency-Key``. It can also run the scan flow when wrk is not installed.

Each test has a warm-up (requests not counted) followed by the measured window. Latency is
per request (send to last byte of the answer), in milliseconds; an error is any answer that is
not 2xx, plus socket errors and timeouts.

Used by ``bench/run_checkout_bench.py``; also runnable alone, e.g.::

    python bench/loadgen.py flow --mode checkout --url http://127.0.0.1:8080 \\
        --token TOKEN --barcodes-file codes.txt --connections 32 --warmup 3 --duration 20
    python bench/loadgen.py wrk --url http://127.0.0.1:8080 --token TOKEN \\
        --barcodes-file codes.txt --connections 32 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devices.statistics import percentile

# --- wrk -----------------------------------------------------------------------------------------

WRK_LUA = r"""
-- Scan-to-cart load for wrk: see bench/loadgen.py. Arguments (after --):
--   token  barcodes_file  scans_per_cart  carts_per_thread
local registry = {}
local count = 0

function setup(thread)
  count = count + 1
  thread:set("thread_no", count)
  table.insert(registry, thread)
end

local barcodes = {}
local active = {}
local per_cart = 20
local target = 16
local rr = 1
local bi = 1
local create_req = nil
local headers = nil
pending = 0
sent_create = 0
sent_scan = 0
n200 = 0
n201 = 0
nerr = 0

function init(args)
  local token = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then barcodes[#barcodes + 1] = line end
  end
  per_cart = tonumber(args[3])
  target = tonumber(args[4])
  bi = ((thread_no or 1) * 7919) % #barcodes + 1
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  create_req = wrk.format("POST", "/api/v1/carts", headers, '{"channel":"kiosk"}')
end

function request()
  if #active == 0 or #active + pending < target then
    pending = pending + 1
    sent_create = sent_create + 1
    return create_req
  end
  if rr > #active then rr = 1 end
  local cart = active[rr]
  cart.n = cart.n + 1
  if cart.n >= per_cart then
    table.remove(active, rr)
  else
    rr = rr + 1
  end
  local code = barcodes[bi]
  bi = bi % #barcodes + 1
  sent_scan = sent_scan + 1
  return wrk.format("POST", "/api/v1/carts/" .. cart.id .. "/lines", headers,
                    '{"barcode":"' .. code .. '"}')
end

function response(status, hdrs, body)
  if status == 200 then
    n200 = n200 + 1
  elseif status == 201 then
    n201 = n201 + 1
    local id = string.match(body, '"id"%s*:%s*"([^"]+)"')
    if id then
      pending = pending - 1
      active[#active + 1] = {id = id, n = 0}
    end
  else
    nerr = nerr + 1
  end
end

function done(summary, latency, requests)
  local t = {sent_create = 0, sent_scan = 0, n200 = 0, n201 = 0, nerr = 0}
  for _, th in ipairs(registry) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"scans_ok":%d,"creates_ok":%d,"non_2xx":%d,"sent_scan":%d,"sent_create":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    t.n200, t.n201, t.nerr, t.sent_scan, t.sent_create,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def wrk_available() -> str | None:
    return shutil.which("wrk")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk_scans(
    url: str,
    token: str,
    barcodes_file: Path,
    *,
    connections: int = 32,
    threads: int = 2,
    warmup: float = 3.0,
    duration: float = 20.0,
    scans_per_cart: int = 20,
) -> dict[str, Any]:
    """Scan-to-cart with wrk: a warm-up run (discarded), then the measured run."""
    wrk = wrk_available()
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    per_thread = math.ceil(connections / threads)
    with tempfile.TemporaryDirectory(prefix="aisle-wrk-") as tmp:
        script = Path(tmp) / "scan.lua"
        script.write_text(WRK_LUA, encoding="utf-8")
        out: dict[str, Any] = {}
        for phase, seconds in (("warmup", warmup), ("measure", duration)):
            if seconds <= 0:
                continue
            cmd = [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
                "--",
                token,
                str(barcodes_file),
                str(scans_per_cart),
                str(per_thread),
            ]
            cpu0 = _children_cpu()
            proc = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=seconds + 60
            )
            cpu = _children_cpu() - cpu0
            match = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.M)
            if proc.returncode != 0 or match is None:
                raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
            out[phase] = json.loads(match.group(1))
            out[phase]["client_cpu_s"] = cpu
    m = out["measure"]
    secs = m["duration_us"] / 1e6
    errors = m["non_2xx"] + sum(v for k, v in m["errors"].items() if k != "status")
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": secs,
        "requests": m["requests"],
        "requests_per_s": m["requests"] / secs,
        "scans": m["scans_ok"],
        "scans_per_s": m["scans_ok"] / secs,
        "carts_created": m["creates_ok"],
        "p50_ms": m["p50_us"] / 1000,
        "p90_ms": m["p90_us"] / 1000,
        "p99_ms": m["p99_us"] / 1000,
        "max_ms": m["max_us"] / 1000,
        "errors": errors,
        "socket_errors": m["errors"],
        "client_cpu_share": m["client_cpu_s"] / secs,
        "latency_note": "all requests (scans and the 1-in-21 cart creations)",
    }


# --- the asyncio client --------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; answers need Content-Length or chunked encoding."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.prefix = (
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = None

    async def request(
        self, method: str, path: str, body: bytes, extra: bytes = b""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nContent-Length: {len(body)}\r\n".encode()
        self.writer.write(head + self.prefix + extra + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        data = b""
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if m is not None:
            data = await self.reader.readexactly(int(m.group(1)))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(parts)
        else:
            raise HttpError(f"answer without length: {raw[:200]!r}")
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, data


@dataclass
class Recorder:
    start: float
    end: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ok: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def add(self, kind: str, t0: float, t1: float, good: bool, note: str = "") -> None:
        if not self.start <= t1 <= self.end:
            return
        self.latencies.setdefault(kind, []).append(t1 - t0)
        if good:
            self.ok[kind] = self.ok.get(kind, 0) + 1
        else:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{kind}: {note[:300]}")


def summarize(values: list[float]) -> dict[str, float]:
    """Count, p50 / p90 / p99 (nearest rank) and max in ms; NaN for each without values."""
    s = sorted(values)
    if not s:
        nan = float("nan")
        return {"count": 0, "p50_ms": nan, "p90_ms": nan, "p99_ms": nan, "max_ms": nan}
    return {
        "count": len(s),
        "p50_ms": percentile(s, 50) * 1000,
        "p90_ms": percentile(s, 90) * 1000,
        "p99_ms": percentile(s, 99) * 1000,
        "max_ms": s[-1] * 1000,
    }


async def _device(
    index: int,
    conn: Connection,
    rec: Recorder,
    mode: str,
    barcodes: list[str],
    items: int,
    scans_per_cart: int,
) -> None:
    clock = time.perf_counter
    bi = (index * 7919) % len(barcodes)
    create_body = b'{"channel":"kiosk"}'
    while clock() < rec.end:
        t0 = clock()
        try:
            status, data = await conn.request("POST", "/api/v1/carts", create_body)
        except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
            rec.add("create", t0, clock(), False, repr(exc))
            await conn.close()
            continue
        rec.add("create", t0, clock(), status == 201, f"{status} {data[:200]!r}")
        if status != 201:
            continue
        cart_id = json.loads(data)["id"]
        path = f"/api/v1/carts/{cart_id}/lines"
        n = items if mode == "checkout" else scans_per_cart
        last = b""
        scanned = 0
        for _ in range(n):
            if clock() >= rec.end:
                return
            body = b'{"barcode":"%s"}' % barcodes[bi].encode()
            bi = (bi + 1) % len(barcodes)
            t0 = clock()
            try:
                status, data = await conn.request("POST", path, body)
            except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
                rec.add("scan", t0, clock(), False, repr(exc))
                await conn.close()
                continue
            good = status == 200
            rec.add("scan", t0, clock(), good, f"{status} {data[:200]!r}")
            if good:
                last = data
                scanned += 1
        if mode != "checkout" or not scanned:
            continue
        if clock() >= rec.end:
            return
        total = json.loads(last)["totals"]["total"]
        pay = json.dumps({"payments": [{"method": "cash", "amount": total}]}).encode()
        key = b"Idempotency-Key: %s\r\n" % uuid.uuid4().hex.encode()
        t0 = clock()
        try:
            status, data = await conn.request("POST", f"/api/v1/carts/{cart_id}/checkout", pay, key)
        except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
            rec.add("checkout", t0, clock(), False, repr(exc))
            await conn.close()
            continue
        rec.add("checkout", t0, clock(), status == 201, f"{status} {data[:200]!r}")


async def _payer(index: int, conn: Connection, rec: Recorder, carts: list[str]) -> None:
    """Pay for ready-made carts ("cart_id total" each), one after another, until time is up."""
    clock = time.perf_counter
    for entry in carts:
        if clock() >= rec.end:
            return
        cart_id, total = entry.split(":")
        pay = b'{"payments":[{"method":"cash","amount":%s}]}' % total.encode()
        key = b"Idempotency-Key: %s\r\n" % uuid.uuid4().hex.encode()
        t0 = clock()
        try:
            status, data = await conn.request("POST", f"/api/v1/carts/{cart_id}/checkout", pay, key)
        except (OSError, asyncio.IncompleteReadError, HttpError) as exc:
            rec.add("checkout", t0, clock(), False, repr(exc))
            await conn.close()
            continue
        rec.add("checkout", t0, clock(), status == 201, f"{status} {data[:200]!r}")
    if clock() < rec.end:  # the seeded carts were too few for this run: the result undercounts
        rec.errors["ran_out_of_carts"] = rec.errors.get("ran_out_of_carts", 0) + 1


async def run_flow_async(
    url: str,
    token: str,
    barcodes: list[str],
    *,
    mode: str,
    connections: int,
    warmup: float,
    duration: float,
    items: int = 5,
    scans_per_cart: int = 20,
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conns = [Connection(host, port, token) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    now = time.perf_counter()
    rec = Recorder(start=now + warmup, end=now + warmup + duration)
    cpu0 = time.process_time()
    if mode == "pay":
        # ``barcodes`` holds "cart_id:total" entries here; each device pays its own share.
        await asyncio.gather(
            *(_payer(i, c, rec, barcodes[i :: len(conns)]) for i, c in enumerate(conns))
        )
    else:
        await asyncio.gather(
            *(
                _device(i, c, rec, mode, barcodes, items, scans_per_cart)
                for i, c in enumerate(conns)
            )
        )
    cpu = time.process_time() - cpu0
    for c in conns:
        await c.close()
    kinds = {k: summarize(v) for k, v in rec.latencies.items()}
    all_lat: list[float] = [x for v in rec.latencies.values() for x in v]
    total = summarize(all_lat)
    errors = sum(rec.errors.values())
    out: dict[str, Any] = {
        "tool": "asyncio",
        "mode": mode,
        "connections": connections,
        "duration_s": duration,
        "requests": total["count"],
        "requests_per_s": total["count"] / duration,
        "p50_ms": total["p50_ms"],
        "p90_ms": total["p90_ms"],
        "p99_ms": total["p99_ms"],
        "max_ms": total["max_ms"],
        "errors": errors,
        "errors_by_kind": rec.errors,
        "error_samples": rec.error_samples,
        "by_kind": kinds,
        "client_cpu_share": cpu / (warmup + duration),
        "latency_note": "all requests of the flow; see by_kind for each request type",
    }
    if mode in ("checkout", "pay"):
        out["sales"] = rec.ok.get("checkout", 0)
        out["sales_per_s"] = out["sales"] / duration
        out["checkout_p99_ms"] = kinds.get("checkout", {}).get("p99_ms", float("nan"))
    out["scans"] = rec.ok.get("scan", 0)
    out["scans_per_s"] = out["scans"] / duration
    return out


def run_flow(
    url: str,
    token: str,
    barcodes_file: Path,
    *,
    mode: str,
    connections: int = 32,
    warmup: float = 3.0,
    duration: float = 20.0,
    items: int = 5,
) -> dict[str, Any]:
    """Run the asyncio client in its own process (so it never shares a GIL with anything)."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "flow",
        "--mode",
        mode,
        "--url",
        url,
        "--token",
        token,
        "--barcodes-file",
        str(barcodes_file),
        "--connections",
        str(connections),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
        "--items",
        str(items),
    ]
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, timeout=warmup + duration + 60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("flow", "wrk"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--token", required=True)
        p.add_argument("--barcodes-file", required=True, type=Path)
        p.add_argument("--connections", type=int, default=32)
        p.add_argument("--warmup", type=float, default=3.0)
        p.add_argument("--duration", type=float, default=20.0)
        if name == "flow":
            p.add_argument("--mode", choices=("scan", "checkout", "pay"), default="checkout")
            p.add_argument("--items", type=int, default=5)
    args = parser.parse_args(argv)
    if args.cmd == "wrk":
        result = run_wrk_scans(
            args.url,
            args.token,
            args.barcodes_file,
            connections=args.connections,
            warmup=args.warmup,
            duration=args.duration,
        )
    else:
        codes = [c for c in args.barcodes_file.read_text().split() if c]
        result = asyncio.run(
            run_flow_async(
                args.url,
                args.token,
                codes,
                mode=args.mode,
                connections=args.connections,
                warmup=args.warmup,
                duration=args.duration,
                items=args.items,
            )
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
