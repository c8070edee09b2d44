"""Serve the store app (or the floor app) with waitress: N forked processes x T threads.

Only for the server comparisons in ``bench/run_checkout_bench.py`` and
``bench/run_open_loop_bench.py``; production uses ``aisle edge serve``. ``--app edge`` builds
the app as a store worker does (``load_settings`` with the ``AISLE_*`` environment and
``--config`` or ``AISLE_CONFIG``, then ``create_app``); ``--app floor`` serves
``bench/floor_app.py`` (needs ``FLOOR_DB``). With ``--workers`` above 1 the listening socket is
bound once and each forked process runs its own waitress loop on it.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from waitress.server import create_server


def build(app_kind: str, config: str | None) -> Any:
    if app_kind == "edge":
        from edge.app import create_app
        from edge.settings import load_settings

        return create_app(load_settings(config or os.environ.get("AISLE_CONFIG")))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from floor_app import app

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app", choices=("edge", "floor"), default="edge")
    parser.add_argument("--config", help="the store's edge.toml (for --app edge)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(2048)
    listener.setblocking(False)
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    server = create_server(
        build(args.app, args.config),
        sockets=[listener],
        threads=args.threads,
        connection_limit=4000,
        channel_timeout=10,
        asyncore_use_poll=True,  # select() stops at 1,024 descriptors
        ident="aisle-bench",
    )
    try:
        server.run()
    finally:
        for pid in children:
            os.kill(pid, 15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
