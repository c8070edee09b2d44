"""Serve the floor (``bench/floor_app.py``) with the store's own server: granian, the store's
HTTP gateway, the same workers, threads and timeouts as ``aisle edge serve``.

The floor measures what the framework and the server cost; served the store's way, the ratio of
Aisle to it isolates Aisle's own work. ``FLOOR_DB`` (and the floor's knobs) come from the
environment, as for the floor app itself.

Usage: ``python bench/serve_floor.py --port P [--workers N] [--threads T]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge.server import EdgeServer
from edge.settings import load_settings

BENCH = Path(__file__).resolve().parent


class FloorServer(EdgeServer):
    def worker_app(self) -> Any:
        sys.path.insert(0, str(BENCH))
        from floor_app import app

        return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    settings = load_settings(
        None,
        overrides={
            "data_dir": tempfile.gettempdir(),
            "store.id": "FLOOR",
            "sync.enabled": False,
            "server.threads": args.threads,
        },
    )
    FloorServer(settings, host=args.host, port=args.port, workers=args.workers).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
