"""Serve the store app (or the floor app) with waitress: one process, N threads.

Only for the server comparison in ``bench/run_checkout_bench.py``; production uses
``aisle edge serve`` (gunicorn). ``--app edge`` builds the app exactly as a gunicorn worker does
(``load_settings`` with the ``AISLE_*`` environment, then ``create_app``); ``--app floor`` serves
``bench/floor_app.py`` (needs ``FLOOR_DB``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import waitress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app", choices=("edge", "floor"), default="edge")
    parser.add_argument("--config", help="the store's edge.toml (for --app edge)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    if args.app == "edge":
        from edge.app import create_app
        from edge.settings import load_settings

        app = create_app(load_settings(args.config))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from floor_app import app
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=256,
        channel_timeout=75,
        ident="aisle-bench",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
