"""The store app for servers started by the benchmarks directly (``edge_wsgi:app()``)."""

from __future__ import annotations

import os
from typing import Any


def app() -> Any:
    from edge.app import create_app
    from edge.settings import load_settings

    return create_app(load_settings(os.environ["AISLE_CONFIG"]))
