"""``aisle edge serve`` with timers, for diagnosis: where a request's time goes under load.

Runs the production server class (``edge.server.EdgeServer``: granian with the store's gateway,
same options) and, in each worker, after ``create_app``:

* wraps ``db.write_lock.held`` (where the database has one) to time, per request, how long it
  waited for the store's write lock and how long it held it;
* wraps the WSGI app to time each request inside the worker (service time: from the gateway
  handing it to the app to the app returning its body) and the CPU its thread used
  (``time.thread_time``), by kind (scan, create, checkout, other).

Nothing in ``edge/`` is changed; the wrappers live on this process's objects. Each worker writes
its samples (``[unix time, kind, service s, cpu s, lock wait s, lock held s, writes]``) to
``$BENCH_STATS_DIR/stats-<pid>.json`` every second. ``BENCH_SWITCH_INTERVAL`` (seconds), when
set, overrides the GIL switch interval after the app is built, for experiments.

Usage: ``python bench/instrumented_edge.py --config edge.toml --port P --workers N``
(``AISLE_SERVER__THREADS`` and ``AISLE_PAYMENTS__LATENCY_MS`` as for ``aisle edge serve``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.server import EdgeServer
from edge.settings import load_settings

_local = threading.local()


def kind_of(method: str, path: str) -> str:
    if method == "POST" and path.endswith("/lines"):
        return "scan"
    if method == "POST" and path.endswith("/checkout"):
        return "checkout"
    if method == "POST" and path.rstrip("/").endswith("/carts"):
        return "create"
    return "other"


class Recorder:
    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir / f"stats-{os.getpid()}.json"
        self.samples: list[list[Any]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._dump_loop, daemon=True).start()

    def add(self, row: list[Any]) -> None:
        with self.lock:
            self.samples.append(row)

    def dump(self) -> None:
        with self.lock:
            data = json.dumps(self.samples)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(data)
        tmp.replace(self.out)

    def _dump_loop(self) -> None:
        while True:
            time.sleep(1.0)
            self.dump()


def timed_lock(original: Callable[[], Any]) -> Callable[[], Any]:
    @contextmanager
    def held() -> Iterator[None]:
        t0 = time.perf_counter()
        with original():
            t1 = time.perf_counter()
            try:
                yield
            finally:
                acc = getattr(_local, "acc", None)
                if acc is not None:
                    acc[0] += t1 - t0
                    acc[1] += time.perf_counter() - t1
                    acc[2] += 1

    return held


def timed_app(wsgi: Callable[..., Any], rec: Recorder) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        kind = kind_of(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        _local.acc = [0.0, 0.0, 0]
        c0, t0 = time.thread_time(), time.perf_counter()
        try:
            body = list(wsgi(environ, start_response))
        finally:
            service = time.perf_counter() - t0
            wait, held, writes = _local.acc
            _local.acc = None
            rec.add([time.time(), kind, service, time.thread_time() - c0, wait, held, writes])
        return body

    return app


class InstrumentedServer(EdgeServer):
    def worker_app(self) -> Any:
        app = super().worker_app()
        rec = Recorder(Path(os.environ["BENCH_STATS_DIR"]))
        db = app.extensions["aisle"].db
        lock = getattr(db, "write_lock", None)
        if lock is not None and hasattr(lock, "held"):
            lock.held = timed_lock(lock.held)
        app.wsgi_app = timed_app(app.wsgi_app, rec)
        interval = os.environ.get("BENCH_SWITCH_INTERVAL")
        if interval:
            sys.setswitchinterval(float(interval))
        return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    InstrumentedServer(settings, host=args.host, port=args.port, workers=args.workers).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
