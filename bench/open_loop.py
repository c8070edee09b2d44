"""Open-loop load at a fixed rate over many device connections, with hostile clients beside it.

What a store sees is not 32 devices scanning as fast as they can (the saturation test in
``loadgen.py``) but hundreds of devices, each holding a keep-alive connection and scanning now
and then. So this client:

* opens ``connections`` device connections up front (each a kiosk or phone with its own cart);
* gives every device a fixed schedule (one request every ``connections / rate`` seconds, phases
  spread at random) so the store receives ``rate`` requests a second in all, whatever the
  server's speed: a slow answer does not slow the schedule down (no coordinated omission);
* counts each request's latency from its *scheduled* send time, so a request that waited for the
  device's previous answer, or for a reconnect, carries that wait;
* scans ``lines_per_cart`` distinct items into a cart, then opens a new cart (that request is
  counted as ``cart``);
* beside the devices, keeps ``idle`` TCP connections open that never send a byte,
  ``slowloris`` connections that send a request's headers one byte every ``drip_s`` seconds and
  ``slowbody`` ones that send whole headers, then the body a byte every ``drip_s`` seconds,
  reopening each as soon as the server closes it; the lifetimes of the connections the server
  closed are reported, which shows how long the server lets such a client sit.

Stdlib only (asyncio streams, hand-written HTTP/1.1, like ``loadgen.py``). Runnable alone::

    python bench/open_loop.py --url http://127.0.0.1:8080 --token TOKEN \\
        --barcodes-file codes.txt --connections 500 --rate 400 --duration 30 --idle 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadgen import Connection

from devices.statistics import percentile


@dataclass
class OpenLoopResult:
    """Everything one open-loop run measured; ``to_dict`` is what the reports print."""

    rate: float
    connections: int
    duration: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    connect_failures: int = 0
    late_sends: int = 0  # requests that went out more than 10 ms after their scheduled time
    hostile_closed: dict[str, list[float]] = field(default_factory=dict)
    hostile_open_max: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    def record(self, kind: str, latency: float, status: int | None, note: str = "") -> None:
        self.latencies.setdefault(kind, []).append(latency)
        if status is None or not 200 <= status < 300:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if len(self.error_samples) < 8:
                self.error_samples.append(f"{kind} {status}: {note[:200]}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rate": self.rate,
            "connections": self.connections,
            "duration_s": self.duration,
            "sent": self.sent,
            "achieved_per_s": round(
                sum(len(v) for v in self.latencies.values()) / self.duration, 1
            ),
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "late_sends": self.late_sends,
        }
        everything: list[float] = []
        for kind, values in sorted(self.latencies.items()):
            out[kind] = _summary(values)
            everything.extend(values)
        out["all"] = _summary(everything)
        hostile: dict[str, Any] = {}
        for kind, lifetimes in self.hostile_closed.items():
            s = sorted(lifetimes)
            hostile[kind] = {
                "closed_by_server": len(s),
                "lifetime_p50_s": round(percentile(s, 50), 2) if s else None,
                "lifetime_max_s": round(s[-1], 2) if s else None,
                "open_max": self.hostile_open_max.get(kind, 0),
            }
        out["hostile"] = hostile
        return out


def _summary(values: list[float]) -> dict[str, float | int]:
    s = sorted(values)
    if not s:
        return {"count": 0}
    return {
        "count": len(s),
        "p50_ms": round(percentile(s, 50) * 1000, 2),
        "p90_ms": round(percentile(s, 90) * 1000, 2),
        "p99_ms": round(percentile(s, 99) * 1000, 2),
        "p999_ms": round(percentile(s, 99.9) * 1000, 2),
        "max_ms": round(s[-1] * 1000, 2),
    }


class _Device:
    """One device: a keep-alive connection, an open cart, and its own fixed schedule."""

    def __init__(
        self, host: str, port: int, token: str, channel: str, barcodes: list[str], seed: int
    ) -> None:
        self.conn = Connection(host, port, token)
        self.channel = json.dumps({"channel": channel}).encode()
        self.barcodes = barcodes
        self.rng = random.Random(seed)
        self.cart: str | None = None
        self.lines = 0

    def next_request(self, lines_per_cart: int) -> tuple[str, str, bytes]:
        if self.cart is None or self.lines >= lines_per_cart:
            return "cart", "/api/v1/carts", self.channel
        code = self.barcodes[self.rng.randrange(len(self.barcodes))]
        body = json.dumps({"barcode": code}).encode()
        return "scan", f"/api/v1/carts/{self.cart}/lines", body

    def took(self, kind: str, status: int, data: bytes) -> None:
        if kind == "cart" and status == 201:
            self.cart = json.loads(data)["id"]
            self.lines = 0
        elif kind == "scan" and status == 200:
            self.lines += 1
        elif kind == "scan" and status in (404, 409):
            self.cart = None  # a cart that is gone or full: open another


async def _drive_device(
    dev: _Device,
    res: OpenLoopResult,
    *,
    first: float,
    interval: float,
    measure_from: float,
    stop: float,
    lines_per_cart: int,
    timeout: float,
) -> None:
    loop = asyncio.get_running_loop()
    due = first
    while due < stop:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay > 0.010 and due >= measure_from:
            res.late_sends += 1
        kind, path, body = dev.next_request(lines_per_cart)
        status: int | None = None
        note = ""
        if due >= measure_from:
            res.sent += 1
        try:
            if dev.conn.writer is None:
                res.reconnects += due >= measure_from
            status, data = await asyncio.wait_for(dev.conn.request("POST", path, body), timeout)
            dev.took(kind, status, data)
            if status >= 300:
                note = data.decode(errors="replace")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            note = f"{type(exc).__name__}: {exc}"
            await dev.conn.close()
        except TimeoutError:
            note = f"no answer in {timeout} s"
            await dev.conn.close()
        done = loop.time()
        if due >= measure_from:
            res.record(kind, done - due, status, note)
        due += interval


async def _hostile(
    kind: str,
    host: str,
    port: int,
    token: str,
    res: OpenLoopResult,
    stop: float,
    drip_s: float,
    counter: dict[str, int],
) -> None:
    """An idle or slowloris client that reopens its connection whenever the server drops it."""
    loop = asyncio.get_running_loop()
    head = f"POST /api/v1/carts HTTP/1.1\r\nHost: {host}:{port}\r\nX-Padding: ".encode()
    # A slow body comes from a paired device (a shopper's phone is the attacker's device), so it
    # gets past authentication to wherever the server reads bodies.
    body_head = (
        f"POST /api/v1/carts HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    while loop.time() < stop:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        opened = loop.time()
        counter[kind] = counter.get(kind, 0) + 1
        res.hostile_open_max[kind] = max(res.hostile_open_max.get(kind, 0), counter[kind])
        closed_by_server = False
        try:
            i = 0
            while loop.time() < stop:
                if kind == "slowloris":
                    writer.write(head[i : i + 1] if i < len(head) else b"a")
                    i += 1
                    await writer.drain()
                elif kind == "slowbody":
                    writer.write(body_head if i == 0 else b" ")
                    i += 1
                    await writer.drain()
                # The server closing shows as EOF (or a reset) on a read.
                try:
                    got = await asyncio.wait_for(reader.read(4096), drip_s)
                except TimeoutError:
                    continue
                if not got:
                    closed_by_server = True
                    break
        except OSError:
            closed_by_server = True
        finally:
            counter[kind] -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if closed_by_server:
            res.hostile_closed.setdefault(kind, []).append(loop.time() - opened)


async def run_open_loop_async(
    url: str,
    token: str,
    barcodes: list[str],
    *,
    connections: int,
    rate: float,
    duration: float,
    warmup: float = 3.0,
    lines_per_cart: int = 10,
    channel: str = "kiosk",
    idle: int = 0,
    slowloris: int = 0,
    slowbody: int = 0,
    drip_s: float = 5.0,
    timeout: float = 120.0,
    seed: int = 1,
) -> OpenLoopResult:
    """Run the schedule; see the module docstring."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    res = OpenLoopResult(rate=rate, connections=connections, duration=duration)
    rng = random.Random(seed)
    devices = [
        _Device(host, port, token, channel, barcodes, seed * 100_003 + i)
        for i in range(connections)
    ]
    # Connect every device before the clock starts, a few at a time (a store's devices are
    # already connected when the rush begins).
    for start in range(0, connections, 50):
        batch = devices[start : start + 50]
        outcome = await asyncio.gather(*(d.conn.open() for d in batch), return_exceptions=True)
        res.connect_failures += sum(isinstance(o, BaseException) for o in outcome)
    counter: dict[str, int] = {}
    t0 = loop.time() + 0.5
    measure_from = t0 + warmup
    stop = measure_from + duration
    hostile = [
        asyncio.create_task(_hostile("idle", host, port, token, res, stop, drip_s, counter))
        for _ in range(idle)
    ]
    hostile += [
        asyncio.create_task(_hostile("slowloris", host, port, token, res, stop, drip_s, counter))
        for _ in range(slowloris)
    ]
    hostile += [
        asyncio.create_task(_hostile("slowbody", host, port, token, res, stop, drip_s, counter))
        for _ in range(slowbody)
    ]
    if hostile:
        await asyncio.sleep(1.0)  # the flood is there before the devices start
        t0 += 1.0
        measure_from += 1.0
        stop += 1.0
    interval = connections / rate
    tasks = [
        asyncio.create_task(
            _drive_device(
                dev,
                res,
                first=t0 + rng.random() * interval,
                interval=interval,
                measure_from=measure_from,
                stop=stop,
                lines_per_cart=lines_per_cart,
                timeout=timeout,
            )
        )
        for dev in devices
    ]
    await asyncio.gather(*tasks)
    for task in hostile:
        task.cancel()
    await asyncio.gather(*hostile, return_exceptions=True)
    await asyncio.gather(*(d.conn.close() for d in devices), return_exceptions=True)
    return res


def raise_nofile(want: int) -> None:
    """Thousands of sockets need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def run_open_loop(url: str, token: str, barcodes: list[str], **kw: Any) -> dict[str, Any]:
    """Synchronous entry: run one open-loop test and return its summary."""
    hostile = kw.get("idle", 0) + kw.get("slowloris", 0) + kw.get("slowbody", 0)
    raise_nofile(kw.get("connections", 0) + hostile + 512)
    started = time.time()
    res = asyncio.run(run_open_loop_async(url, token, barcodes, **kw))
    out = res.to_dict()
    out["wall_s"] = round(time.time() - started, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--barcodes-file", required=True, type=Path)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--lines-per-cart", type=int, default=10)
    parser.add_argument("--channel", default="kiosk")
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--slowloris", type=int, default=0)
    parser.add_argument("--slowbody", type=int, default=0)
    parser.add_argument("--drip-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    barcodes = [c for c in args.barcodes_file.read_text().split() if c]
    out = run_open_loop(
        args.url,
        args.token,
        barcodes,
        connections=args.connections,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        lines_per_cart=args.lines_per_cart,
        channel=args.channel,
        idle=args.idle,
        slowloris=args.slowloris,
        slowbody=args.slowbody,
        drip_s=args.drip_s,
    )
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
