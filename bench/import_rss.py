"""Where a server process's memory comes from: VmRSS after each step of building the app.

Starts from a bare interpreter and imports, one step at a time, what a worker of ``aisle edge
serve`` ends up holding (web stack, SQLAlchemy, pydantic, the rest of the dependencies, the
edge package, then ``create_app`` on a real store), printing VmRSS after each step. Steps are
cumulative, so each delta is what that step added on top of the previous ones.

Usage: ``python bench/import_rss.py --config STORE/edge.toml`` (prints JSON).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

STEPS: list[tuple[str, list[str]]] = [
    ("python + stdlib used by the server", ["json", "sqlite3", "threading", "logging"]),
    ("granian (the server) + asyncio", ["granian.server", "asyncio"]),
    ("flask + werkzeug", ["flask"]),
    ("sqlalchemy (engine + orm)", ["sqlalchemy", "sqlalchemy.orm"]),
    ("pydantic", ["pydantic"]),
    ("cryptography (ed25519)", ["cryptography.hazmat.primitives.asymmetric.ed25519"]),
    ("biip", ["biip"]),
    ("segno (QR)", ["segno"]),
    ("alembic", ["alembic"]),
    ("edge package (all modules the app imports)", ["edge.app", "edge.server"]),
]


def vmrss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = [{"step": "bare interpreter", "rss_mb": vmrss_kb() / 1024}]
    for name, modules in STEPS:
        label = name
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:  # a dependency the code under test no longer has
                label = f"{name} (not importable: {exc.name})"
        rows.append({"step": label, "rss_mb": vmrss_kb() / 1024})
    from edge.app import create_app
    from edge.settings import load_settings

    app = create_app(load_settings(args.config))
    rows.append({"step": "create_app(settings) on the store", "rss_mb": vmrss_kb() / 1024})
    client = app.test_client()
    client.get("/healthz")
    rows.append({"step": "first request served", "rss_mb": vmrss_kb() / 1024})
    previous = 0.0
    for row in rows:
        row["added_mb"] = row["rss_mb"] - previous
        previous = row["rss_mb"]
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
